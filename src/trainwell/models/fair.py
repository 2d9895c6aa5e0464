"""A binary classifier mitigated with Fairlearn, saved without pickle.

`fairness.mitigation` picks how: `exponentiated_gradient` replaces the model by Fairlearn's randomised mix
of models trained under the fairness constraint; `threshold_optimizer` keeps the model and adds per-group
thresholds fitted on held-out (validation) rows, so it needs the sensitive column(s) at prediction time
too. Fairlearn's fitted objects cannot be written by skops, so what defines their predictions is saved
instead: the mix's estimators (skops) and weights, or the per-group threshold rules (JSON), from which
the Fairlearn objects are rebuilt on load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils import get_tags

from trainwell.artifacts import load_skops, save_skops
from trainwell.config import Constraint, Mitigation
from trainwell.errors import UserError
from trainwell.files import write_json
from trainwell.models.classical import SklearnModel
from trainwell.models.registry import Model, ModelTags, TrainwellTags, register_loader, with_trainwell_tags


class FairModel(BaseEstimator):
    """A base model mitigated with Fairlearn; the same contract as every model (fit returns self, parameters in,
    learned state in `_` attributes), with the groups given as `sensitive_features` (scikit-learn's metadata
    name): `fit` needs them; `predict`/`predict_proba` need them when the `needs_groups` tag says so
    (threshold_optimizer decides per group). A binary classifier with probabilities.
    """

    family = "fair"

    def __init__(self, base: Model | None = None, method: Mitigation = "exponentiated_gradient",
                 constraint: Constraint = "demographic_parity", difference_bound: float = 0.01,
                 seed: int = 0) -> None:  # fmt: skip
        self.base, self.method, self.constraint, self.difference_bound = base, method, constraint, difference_bound
        self.seed = seed

    @property
    def name(self) -> str:
        return str(getattr(self.base, "name", "model"))

    @property
    def history(self) -> list[dict[str, float]]:
        return list(getattr(getattr(self, "base_", None), "history", []) or [])

    def __sklearn_tags__(self) -> ModelTags:
        abilities = TrainwellTags(probabilities=True, needs_groups=self.method == "threshold_optimizer")
        return with_trainwell_tags(get_tags(self.base) if self.base is not None else super().__sklearn_tags__(),
                                   "classification", abilities)  # fmt: skip

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mitigator_")

    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            sample_weight: np.ndarray | None = None, *, callbacks: Any = (),
            sensitive_features: pd.DataFrame | None = None,
            sensitive_val: pd.DataFrame | None = None) -> FairModel:  # fmt: skip
        """Fit (a clone of) the base model, then the mitigation: exponentiated gradient on the training rows,
        the threshold optimizer on the held-out rows (`X_val`, `y_val`, `sensitive_val`) when given."""
        from trainwell.models.mitigation import fit_exponentiated_gradient, fit_threshold_optimizer

        if sensitive_features is None:
            raise UserError(f"fairness.mitigation {self.method} learns per group: pass sensitive_features")
        if not isinstance(self.base, SklearnModel):  # Fairlearn refits and thresholds scikit-learn estimators
            raise UserError(f"fairness.mitigation {self.method} needs a scikit-learn-family model "
                            f"(e.g. logistic_regression, lightgbm), not {self.name}; "
                            "reweighing works with every model")  # fmt: skip
        base = clone(self.base).fit(X, y, X_val, y_val, sample_weight, callbacks=callbacks)
        estimator = base.estimator_  # the trained scikit-learn estimator inside the wrapper
        if self.method == "exponentiated_gradient":
            fitted = fit_exponentiated_gradient(estimator, X, y, sensitive_features, constraint=self.constraint,
                                                difference_bound=self.difference_bound, seed=self.seed)  # fmt: skip
        else:
            held = (X_val, y_val, sensitive_val) if X_val is not None and sensitive_val is not None and len(X_val) \
                else (X, y, sensitive_features)  # fmt: skip
            fitted = fit_threshold_optimizer(estimator, *held, constraint=self.constraint, seed=self.seed)
        self.base_, self.mitigator_ = base, fitted.fitted
        self.sensitive_ = [str(c) for c in sensitive_features.columns]
        return self

    def predict(self, X: np.ndarray, sensitive_features: pd.DataFrame | None = None) -> np.ndarray:
        """Class indices; the randomised choice is seeded, so the same rows always get the same answer."""
        proba = self.predict_proba(X, sensitive_features)
        draw = np.random.default_rng(self.seed).random(len(proba))
        return (draw < proba[:, 1]).astype(np.int64)

    def predict_proba(self, X: np.ndarray, sensitive_features: pd.DataFrame | None = None) -> np.ndarray:
        """(N, 2): the probability that the mitigated (randomised) classifier predicts each class.

        Exponentiated gradient: the weighted vote of its predictors (Fairlearn's public `predictors_` and
        `weights_`); threshold optimizer: Fairlearn's per-group interpolated thresholds.
        """
        sensitive = sensitive_features
        if self.method == "exponentiated_gradient":
            mix = zip(self.mitigator_.predictors_, self.mitigator_.weights_, strict=True)
            votes = [w * (np.asarray(p.predict(X)) == 1) for p, w in mix if w > 0]
            positive = np.sum(votes, axis=0) / float(np.sum(self.mitigator_.weights_))
            return np.column_stack([1 - positive, positive]).astype(np.float64)
        if sensitive is None:
            raise UserError("this model was mitigated with threshold_optimizer: it needs the sensitive column(s) "
                            f"{', '.join(self.sensitive_)} with the rows to predict")  # fmt: skip
        groups = _groups(sensitive, self.sensitive_)
        # float64: Fairlearn writes float64 probabilities into an array of the estimator's output dtype
        X = np.asarray(X, dtype=np.float64)
        # Fairlearn's per-group interpolated thresholds (their mix has no public probability method)
        return np.asarray(self.mitigator_._pmf_predict(X, sensitive_features=groups), dtype=np.float64)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.base_.save(directory / "base")
        meta: dict[str, Any] = {"family": self.family, "method": self.method, "sensitive": self.sensitive_,
                                "seed": self.seed, "name": self.name, "constraint": self.constraint,
                                "difference_bound": self.difference_bound}  # fmt: skip
        if self.method == "exponentiated_gradient":
            kept = [(i, float(w)) for i, w in enumerate(self.mitigator_.weights_) if w > 0]
            for i, _ in kept:
                save_skops(self.mitigator_.predictors_.iloc[i], directory / f"predictor_{i}.skops")
            meta["weights"] = {str(i): w for i, w in kept}
        else:
            meta["thresholds"] = {
                json.dumps(_plain(group)): {key: _rule(value) for key, value in rule.items()}
                for group, rule in self.mitigator_.interpolated_thresholder_.interpolation_dict.items()
            }  # fmt: skip
        write_json(directory / "model.json", meta)

    @classmethod
    def load(cls, directory: Path) -> FairModel:
        from trainwell.models.registry import load_model

        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        base = load_model(directory / "base")
        if meta["method"] == "exponentiated_gradient":
            if not all(str(i).isdigit() for i in meta["weights"]):  # indices name files: no other paths
                raise UserError(f"{directory / 'model.json'} is damaged (weights keys are not indices); train again")
            mitigator = _mix([load_skops(directory / f"predictor_{i}.skops") for i in meta["weights"]],
                             list(meta["weights"].values()))  # fmt: skip
        else:
            mitigator = _thresholds(base, meta["thresholds"], meta["constraint"])
        model = cls(clone(base), meta["method"], meta["constraint"], meta.get("difference_bound", 0.01), meta["seed"])
        model.base_, model.mitigator_, model.sensitive_ = base, mitigator, list(meta["sensitive"])
        return model


register_loader("fair", FairModel.load)


def _groups(sensitive: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in sensitive.columns]
    if missing:
        raise UserError(f"the rows to predict lack the sensitive column(s) {', '.join(missing)} that this "
                        "threshold_optimizer model decides by")  # fmt: skip
    frame = sensitive[columns].reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), "missing")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _rule(value: Any) -> Any:
    """A ThresholdOperation as {operator, threshold}; numbers as floats."""
    if hasattr(value, "threshold"):
        return {"operator": value.operator, "threshold": float(value.threshold)}
    return float(value) if isinstance(value, (np.generic, float, int)) else value


def _mix(predictors: list[Any], weights: list[float]) -> Any:
    """An ExponentiatedGradient holding a saved mix; only its prediction attributes are set."""
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient

    mix = ExponentiatedGradient(predictors[0], constraints=DemographicParity())
    mix.predictors_ = pd.Series(predictors)
    mix.weights_ = pd.Series(weights, dtype=float)
    return mix


def _thresholds(base: Model, rules: dict[str, dict[str, Any]], constraint: Constraint) -> Any:
    """A prefit ThresholdOptimizer around the base estimator with the saved per-group rules."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.postprocessing._interpolated_thresholder import InterpolatedThresholder
    from fairlearn.postprocessing._threshold_operation import ThresholdOperation
    from sklearn.utils import Bunch

    def group(key: str) -> Any:
        value = json.loads(key)
        return tuple(value) if isinstance(value, list) else value

    def rule(values: dict[str, Any]) -> Bunch:
        return Bunch(**{k: ThresholdOperation(v["operator"], v["threshold"]) if isinstance(v, dict) else v
                        for k, v in values.items()})  # fmt: skip

    estimator = base.estimator_  # type: ignore[attr-defined]
    optimizer = ThresholdOptimizer(estimator=estimator, constraints=constraint, prefit=True, predict_method="auto")
    optimizer.estimator_ = estimator
    optimizer.interpolated_thresholder_ = InterpolatedThresholder(
        estimator, {group(k): rule(v) for k, v in rules.items()}, prefit=True, predict_method="auto"
    ).fit(np.zeros((1, 1)), np.zeros(1))  # prefit: fit only records the estimator
    return optimizer
