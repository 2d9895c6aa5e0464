"""Classical models: scikit-learn and LightGBM estimators behind the common Model API, saved with skops.

Each entry is a params class (every field described, unknown keys rejected) and a builder that turns it
into a real scikit-learn estimator: `.estimator` is the unfitted template (a parameter), `fit` trains a clone of
it into `.estimator_`, so `clone`, pipelines and grid search work on the wrapper as on any estimator.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.base import BaseEstimator, clone
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from trainwell.artifacts import load_skops, save_skops
from trainwell.errors import UserError, first_line
from trainwell.files import write_json
from trainwell.models.registry import (
    BuildContext,
    ModelTags,
    TrainwellTags,
    model_tags,
    register_loader,
    register_model,
    score_model,
    with_trainwell_tags,
)

BOTH = ("classification", "regression")


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SklearnModel(BaseEstimator):
    """A scikit-learn-compatible estimator wrapped in the Model protocol; itself an estimator, so `clone` works."""

    family = "classical"

    def __init__(self, name: str, params: dict[str, Any], estimator: Any, task: str) -> None:
        self.name, self.params, self.estimator, self.task = name, params, estimator, task

    @property
    def history(self) -> list[dict[str, float]]:
        """Classical models train in one call: no epochs to report."""
        return []

    def __sklearn_tags__(self) -> ModelTags:
        from sklearn.utils.validation import has_fit_parameter

        classifier = self.task == "classification"
        abilities = TrainwellTags(
            probabilities=classifier and hasattr(self.estimator, "predict_proba"),  # hard voting has none
            boosting_rounds=has_fit_parameter(self.estimator, "callbacks"),  # LightGBM's per-round hooks
            sample_weight=has_fit_parameter(self.estimator, "sample_weight"),
            incremental=hasattr(self.estimator, "partial_fit"),  # SGD, naive Bayes: learn on from new rows
        )  # fmt: skip
        return with_trainwell_tags(get_tags(self.estimator), self.task, abilities)

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None, *, callbacks: Sequence[Any] = (),
    ) -> SklearnModel:
        """Fit the estimator; boosting models stop early on the validation rows and call `callbacks` each round."""
        abilities = model_tags(self)
        kwargs: dict[str, Any] = {}
        if sample_weight is not None:
            if not abilities.sample_weight:
                raise UserError(f"model {self.name} cannot weight training rows (fairness.mitigation reweighing); "
                                "choose another model or mitigation")  # fmt: skip
            kwargs["sample_weight"] = sample_weight
        X, y = validate_data(self, X, y, ensure_all_finite=False)  # the estimator itself decides about NaN
        if abilities.boosting_rounds and X_val is not None and len(X_val):
            import lightgbm

            stop = self.params.get("early_stopping_rounds")
            early = [lightgbm.early_stopping(stop, verbose=False)] if stop else []
            # per-round curves on both sets for the report; "training" is the name LightGBM's early stopping
            # skips, and passing the very training array lets LightGBM reuse its own scores for it
            kwargs |= {"eval_X": (X, X_val), "eval_y": (y, y_val), "eval_names": ["training", "validation"],
                       "callbacks": early + list(callbacks)}  # fmt: skip
        estimator = clone(self.estimator)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(converge|feature names).*")
            estimator.fit(X, y, **kwargs)
        self.estimator_ = estimator
        self._learned_from(estimator)
        return self

    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """Accuracy (classification) or R² (regression), as scikit-learn's mixins define `score`."""
        return score_model(self, X, y, sample_weight)

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once `fit` (or `load`) has set the trained estimator."""
        return hasattr(self, "estimator_")

    @available_if(lambda self: hasattr(self.estimator, "partial_fit"))  # only where the estimator learns on
    def partial_fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None, *, classes: Any = None, epochs: int | None = None,
        callbacks: Sequence[Any] = (),
    ) -> SklearnModel:
        """Learn on from new rows with the estimator's own `partial_fit`, `epochs` passes (default 1); starts the
        estimator on the first call. How `trainwell update` keeps an incremental model current."""
        fitted = self.__sklearn_is_fitted__()
        X, y = validate_data(self, X, y, reset=not fitted)
        estimator = self.estimator_ if fitted else clone(self.estimator)
        kwargs: dict[str, Any] = {} if sample_weight is None else {"sample_weight": sample_weight}
        if self.task == "classification":
            kwargs["classes"] = self.classes_ if fitted else (np.unique(y) if classes is None else classes)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(converge|feature names).*")
            for _ in range(epochs or 1):
                estimator.partial_fit(X, y, **kwargs)
        self.estimator_ = estimator
        self._learned_from(estimator)
        return self

    def _learned_from(self, estimator: Any) -> None:
        """The fitted state scikit-learn looks for on the wrapper, read from the fitted estimator."""
        self.n_features_in_ = int(estimator.n_features_in_)
        if self.task == "classification":
            self.classes_ = estimator.classes_

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, ensure_all_finite=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = self._inputs(X)  # NotFittedError before fit, not an AttributeError
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*feature names.*")
            pred = self.estimator_.predict(X)
        return pred.astype(np.int64) if self.task == "classification" else pred.astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        X = self._inputs(X)  # checked even for regression, whose answer is None
        if not model_tags(self).probabilities:
            return None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*feature names.*")
            return np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        check_is_fitted(self)
        save_skops(self.estimator_, directory / "estimator.skops")
        write_json(
            directory / "model.json",
            {"family": self.family, "name": self.name, "params": self.params, "task": self.task},
        )

    @classmethod
    def load(cls, directory: Path) -> SklearnModel:
        """Read model.json and the estimator back; a damaged or missing file is a UserError naming it."""
        path = Path(directory) / "model.json"
        try:
            meta = json.loads(path.read_text())
            name, params, task = meta["name"], meta["params"], meta["task"]
        except FileNotFoundError:
            raise UserError(f"{path} not found; the run folder is incomplete, train it again") from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{path} is damaged ({type(exc).__name__}: {first_line(exc)}); train again") from None
        fitted = load_skops(Path(directory) / "estimator.skops")
        model = cls(name, params, clone(fitted), task)
        model.estimator_ = fitted
        model._learned_from(fitted)
        return model


register_loader("classical", SklearnModel.load)


def _wrap(name: str, params: BaseModel, ctx: BuildContext, estimator: Any) -> SklearnModel:
    return SklearnModel(name, params.model_dump(mode="json"), estimator, ctx.task)


# ------------------------------------------------------------------ linear models


class LogisticParams(Params):
    C: float = Field(1.0, gt=0, description="Inverse regularisation strength: smaller means stronger.")
    penalty: Literal["l2", "l1", "elasticnet", "none"] = Field("l2", description="Regularisation type.")
    l1_ratio: float = Field(0.5, ge=0, le=1, description="L1 share of the penalty (elasticnet only).")
    max_iter: int = Field(1000, ge=1, description="Solver iterations.")
    class_weight: Literal["balanced"] | None = Field(None, description="balanced reweights rare classes.")


@register_model(
    "logistic_regression", family="classical", tasks=("classification",), params=LogisticParams,
    description="Logistic regression with L1, L2 or elastic-net penalty (scikit-learn).",
)  # fmt: skip
def _logistic(p: LogisticParams, ctx: BuildContext) -> SklearnModel:
    from sklearn.linear_model import LogisticRegression

    l1_ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": p.l1_ratio, "none": 0.0}[p.penalty]
    est = LogisticRegression(
        C=np.inf if p.penalty == "none" else p.C, l1_ratio=l1_ratio, max_iter=p.max_iter,
        solver="lbfgs" if l1_ratio == 0 else "saga", class_weight=p.class_weight, random_state=ctx.seed,
    )  # fmt: skip
    return _wrap("logistic_regression", p, ctx, est)


class LinearParams(Params):
    penalty: Literal["none", "l2", "l1", "elasticnet"] = Field(
        "l2", description="none: ordinary least squares; l2: ridge; l1: lasso; elasticnet: both."
    )
    alpha: float = Field(1.0, gt=0, description="Regularisation strength (ignored for penalty none).")
    l1_ratio: float = Field(0.5, ge=0, le=1, description="L1 share of the penalty (elasticnet only).")


@register_model(
    "linear_regression", family="classical", tasks=("regression",), params=LinearParams,
    description="Linear regression: ordinary, ridge (L2), lasso (L1) or elastic net (scikit-learn).",
)  # fmt: skip
def _linear(p: LinearParams, ctx: BuildContext) -> SklearnModel:
    from sklearn import linear_model as lm

    est = {
        "none": lambda: lm.LinearRegression(),
        "l2": lambda: lm.Ridge(alpha=p.alpha, random_state=ctx.seed),
        "l1": lambda: lm.Lasso(alpha=p.alpha, random_state=ctx.seed, max_iter=10_000),
        "elasticnet": lambda: lm.ElasticNet(alpha=p.alpha, l1_ratio=p.l1_ratio, random_state=ctx.seed),
    }[p.penalty]()
    return _wrap("linear_regression", p, ctx, est)


class SGDParams(Params):
    loss: Literal["auto", "log_loss", "modified_huber", "hinge", "squared_error", "huber"] = Field(
        "auto", description="auto: log_loss for classification (gives probabilities), squared_error for regression."
    )
    penalty: Literal["l2", "l1", "elasticnet"] = Field("l2", description="Regularisation type.")
    alpha: float = Field(1e-4, gt=0, description="Regularisation strength; also sets the optimal learning rate.")
    l1_ratio: float = Field(0.15, ge=0, le=1, description="L1 share of the penalty (elasticnet only).")
    max_iter: int = Field(1000, ge=1, description="Passes over the training rows at most (fit).")


INCREMENTAL = TrainwellTags(incremental=True)


@register_model(
    "sgd", family="classical", tasks=BOTH, params=SGDParams, abilities=INCREMENTAL,
    description="Linear model trained by stochastic gradient descent; learns on incrementally (partial_fit).",
)  # fmt: skip
def _sgd(p: SGDParams, ctx: BuildContext) -> SklearnModel:
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    common = {"penalty": p.penalty, "alpha": p.alpha, "l1_ratio": p.l1_ratio, "max_iter": p.max_iter,
              "random_state": ctx.seed}  # fmt: skip
    if ctx.task == "classification":
        loss = "log_loss" if p.loss == "auto" else p.loss
        if loss in ("squared_error", "huber"):
            raise UserError(f"model.loss {loss} is for regression; for classification use log_loss, "
                            "modified_huber or hinge")  # fmt: skip
        return _wrap("sgd", p, ctx, SGDClassifier(loss=loss, **common))
    loss = "squared_error" if p.loss == "auto" else p.loss
    if loss not in ("squared_error", "huber"):
        raise UserError(f"model.loss {loss} is for classification; for regression use squared_error or huber")
    return _wrap("sgd", p, ctx, SGDRegressor(loss=loss, **common))


class NaiveBayesParams(Params):
    var_smoothing: float = Field(1e-9, gt=0, description="Share of the largest variance added to all, for stability.")


@register_model(
    "naive_bayes", family="classical", tasks=("classification",), params=NaiveBayesParams, abilities=INCREMENTAL,
    description="Gaussian naive Bayes: fast, a strong baseline for few rows; learns on incrementally.",
)  # fmt: skip
def _naive_bayes(p: NaiveBayesParams, ctx: BuildContext) -> SklearnModel:
    from sklearn.naive_bayes import GaussianNB

    return _wrap("naive_bayes", p, ctx, GaussianNB(var_smoothing=p.var_smoothing))


# ------------------------------------------------------------------ trees and boosting


class TreeParams(Params):
    max_depth: int | None = Field(None, ge=1, description="Maximum depth; None grows until leaves are pure.")
    min_samples_leaf: int = Field(1, ge=1, description="Minimum rows in a leaf; larger smooths the model.")
    class_weight: Literal["balanced"] | None = Field(None, description="balanced reweights rare classes.")


@register_model(
    "decision_tree", family="classical", tasks=BOTH, params=TreeParams,
    description="A single decision tree (scikit-learn CART).",
)  # fmt: skip
def _tree(p: TreeParams, ctx: BuildContext) -> SklearnModel:
    from sklearn import tree

    if ctx.task == "classification":
        est: Any = tree.DecisionTreeClassifier(
            max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf, class_weight=p.class_weight,
            random_state=ctx.seed,
        )  # fmt: skip
    else:
        est = tree.DecisionTreeRegressor(
            max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf, random_state=ctx.seed
        )
    return _wrap("decision_tree", p, ctx, est)


class ForestParams(TreeParams):
    n_estimators: int = Field(300, ge=1, description="Number of trees.")
    max_features: Literal["sqrt", "log2"] | float | None = Field(
        "sqrt", description="Features tried per split: sqrt, log2, a fraction, or None for all."
    )
    n_jobs: int = Field(
        1, description="Parallel jobs (-1: every core); above 1, regression predictions may differ in the last bits."
    )


@register_model(
    "random_forest", family="classical", tasks=BOTH, params=ForestParams,
    description="Random forest of decision trees (scikit-learn).",
)  # fmt: skip
def _forest(p: ForestParams, ctx: BuildContext) -> SklearnModel:
    from sklearn import ensemble

    common = dict(
        n_estimators=p.n_estimators, max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf,
        max_features=p.max_features, n_jobs=p.n_jobs, random_state=ctx.seed,
    )  # fmt: skip
    if ctx.task == "classification":
        est: Any = ensemble.RandomForestClassifier(class_weight=p.class_weight, **common)
    else:
        est = ensemble.RandomForestRegressor(**common)
    return _wrap("random_forest", p, ctx, est)


class LightGBMParams(Params):
    n_estimators: int = Field(500, ge=1, description="Boosting rounds (an upper bound with early stopping).")
    learning_rate: float = Field(0.05, gt=0, description="Shrinkage per round.")
    num_leaves: int = Field(31, ge=2, description="Leaves per tree: the main capacity control.")
    max_depth: int = Field(-1, description="Maximum tree depth; -1 for no limit.")
    min_child_samples: int = Field(20, ge=1, description="Minimum rows in a leaf.")
    subsample: float = Field(1.0, gt=0, le=1, description="Row fraction sampled per round.")
    colsample_bytree: float = Field(1.0, gt=0, le=1, description="Feature fraction sampled per tree.")
    reg_alpha: float = Field(0.0, ge=0, description="L1 penalty on leaf weights.")
    reg_lambda: float = Field(0.0, ge=0, description="L2 penalty on leaf weights.")
    early_stopping_rounds: int | None = Field(
        50, ge=1, description="Stop when the validation loss has not improved for this many rounds."
    )
    class_weight: Literal["balanced"] | None = Field(None, description="balanced reweights rare classes.")


@register_model(
    "lightgbm", family="classical", tasks=BOTH, params=LightGBMParams, abilities=TrainwellTags(boosting_rounds=True),
    description="Gradient-boosted trees (LightGBM), with early stopping on the validation split.",
)  # fmt: skip
def _lightgbm(p: LightGBMParams, ctx: BuildContext) -> SklearnModel:
    import lightgbm

    kwargs = p.model_dump(exclude={"early_stopping_rounds", "class_weight"})
    # subsample only takes effect with bagging enabled; deterministic + one thread keeps runs reproducible.
    kwargs.update(subsample_freq=1 if p.subsample < 1 else 0, random_state=ctx.seed, verbose=-1,
                  deterministic=True, force_row_wise=True, n_jobs=1)  # fmt: skip
    if ctx.task == "classification":
        est: Any = lightgbm.LGBMClassifier(class_weight=p.class_weight, **kwargs)
    else:
        est = lightgbm.LGBMRegressor(**kwargs)
    return _wrap("lightgbm", p, ctx, est)


# ------------------------------------------------------------------ kernels and neighbours


class SVMParams(Params):
    C: float = Field(1.0, gt=0, description="Inverse regularisation strength.")
    kernel: Literal["rbf", "linear", "poly", "sigmoid"] = Field("rbf", description="Kernel function.")
    gamma: Literal["scale", "auto"] | float = Field("scale", description="Kernel coefficient.")
    epsilon: float = Field(
        0.1, ge=0, description="Width of the no-penalty tube, in standard deviations of the target (regression)."
    )


@register_model(
    "svm", family="classical", tasks=BOTH, params=SVMParams,
    description="Support vector machine (scikit-learn SVC with calibrated probabilities / SVR).",
)  # fmt: skip
def _svm(p: SVMParams, ctx: BuildContext) -> SklearnModel:
    from sklearn import svm

    if ctx.task == "classification":
        from sklearn.calibration import CalibratedClassifierCV

        # Platt-calibrated probabilities from cross-validation; the final SVC is fitted on all rows.
        svc = svm.SVC(C=p.C, kernel=p.kernel, gamma=p.gamma, random_state=ctx.seed)
        est: Any = CalibratedClassifierCV(svc, method="sigmoid", ensemble=False)
    else:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        # SVR's C and epsilon only mean the same thing across datasets on a standardised target.
        svr = svm.SVR(C=p.C, kernel=p.kernel, gamma=p.gamma, epsilon=p.epsilon)
        est = TransformedTargetRegressor(regressor=svr, transformer=StandardScaler())
    return _wrap("svm", p, ctx, est)


class KNNParams(Params):
    n_neighbors: int = Field(5, ge=1, description="Neighbours that vote.")
    weights: Literal["uniform", "distance"] = Field("uniform", description="distance: closer votes count more.")
    metric: Literal["minkowski", "euclidean", "manhattan", "cosine"] = Field(
        "minkowski", description="Distance metric."
    )


@register_model(
    "knn", family="classical", tasks=BOTH, params=KNNParams,
    description="k-nearest neighbours (scikit-learn).",
)  # fmt: skip
def _knn(p: KNNParams, ctx: BuildContext) -> SklearnModel:
    from sklearn import neighbors

    cls = neighbors.KNeighborsClassifier if ctx.task == "classification" else neighbors.KNeighborsRegressor
    # brute force: a fitted KD-tree or distance object saved by skops can crash Python when its file is crafted
    est = cls(n_neighbors=p.n_neighbors, weights=p.weights, metric=p.metric, algorithm="brute")
    return _wrap("knn", p, ctx, est)
