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

from trainwell.artifacts import load_skops, save_skops
from trainwell.config import Constraint, FairnessConfig
from trainwell.errors import UserError
from trainwell.files import write_json
from trainwell.models.classical import SklearnModel
from trainwell.models.registry import Model, register_loader


class FairModel:
    """A fitted base model plus its Fairlearn mitigation; `sensitive` rows are needed by threshold_optimizer."""

    family = "fair"

    def __init__(self, base: Model, method: str, sensitive: list[str], mitigator: Any, seed: int) -> None:
        self.base, self.method, self.sensitive, self.mitigator, self.seed = base, method, sensitive, mitigator, seed
        self.name = getattr(base, "name", "model")
        self.history = base.history

    @property
    def needs_sensitive(self) -> bool:
        return self.method == "threshold_optimizer"

    @classmethod
    def mitigate(cls, base: Model, settings: FairnessConfig, train: tuple[np.ndarray, np.ndarray, pd.DataFrame],
                 held_out: tuple[np.ndarray, np.ndarray, pd.DataFrame] | None, seed: int) -> FairModel:  # fmt: skip
        """Apply `settings.mitigation` to the fitted `base`; the threshold optimizer learns on `held_out` rows."""
        from trainwell.models.mitigation import fit_exponentiated_gradient, fit_threshold_optimizer

        estimator = getattr(base, "estimator", None)
        if not isinstance(base, SklearnModel) or estimator is None:
            raise UserError(f"fairness.mitigation {settings.mitigation} needs a scikit-learn-family model "
                            f"(e.g. logistic_regression, lightgbm), not {getattr(base, 'name', base)}; "
                            "reweighing works with every model")  # fmt: skip
        if settings.mitigation == "exponentiated_gradient":
            fitted = fit_exponentiated_gradient(estimator, *train, constraint=settings.constraint,
                                                difference_bound=settings.difference_bound, seed=seed)  # fmt: skip
        else:
            fitted = fit_threshold_optimizer(estimator, *(held_out or train), constraint=settings.constraint, seed=seed)
        return cls(base, settings.mitigation, [str(c) for c in train[2].columns], fitted.fitted, seed)

    def predict(self, X: np.ndarray, sensitive: pd.DataFrame | None = None) -> np.ndarray:
        """Class indices; the randomised choice is seeded, so the same rows always get the same answer."""
        proba = self.predict_proba(X, sensitive)
        draw = np.random.default_rng(self.seed).random(len(proba))
        return (draw < proba[:, 1]).astype(np.int64)

    def predict_proba(self, X: np.ndarray, sensitive: pd.DataFrame | None = None) -> np.ndarray:
        """(N, 2): the probability that the mitigated (randomised) classifier predicts each class."""
        if self.method == "exponentiated_gradient":
            return np.asarray(self.mitigator._pmf_predict(X), dtype=np.float64)
        if sensitive is None:
            raise UserError("this model was mitigated with threshold_optimizer: it needs the sensitive column(s) "
                            f"{', '.join(self.sensitive)} with the rows to predict")  # fmt: skip
        groups = _groups(sensitive, self.sensitive)
        # float64: Fairlearn writes float64 probabilities into an array of the estimator's output dtype
        X = np.asarray(X, dtype=np.float64)
        return np.asarray(self.mitigator._pmf_predict(X, sensitive_features=groups), dtype=np.float64)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.base.save(directory / "base")
        meta: dict[str, Any] = {"family": self.family, "method": self.method, "sensitive": self.sensitive,
                                "seed": self.seed, "name": self.name}  # fmt: skip
        if self.method == "exponentiated_gradient":
            kept = [(i, float(w)) for i, w in enumerate(self.mitigator.weights_) if w > 0]
            for i, _ in kept:
                save_skops(self.mitigator.predictors_.iloc[i], directory / f"predictor_{i}.skops")
            meta["weights"] = {str(i): w for i, w in kept}
        else:
            meta["constraint"] = self.mitigator.constraints
            meta["thresholds"] = {
                json.dumps(_plain(group)): {key: _rule(value) for key, value in rule.items()}
                for group, rule in self.mitigator.interpolated_thresholder_.interpolation_dict.items()
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
        return cls(base, meta["method"], meta["sensitive"], mitigator, meta["seed"])


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
    mix._hs = pd.Series([p.predict for p in predictors])  # what _pmf_predict calls: each predictor's labels
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

    estimator = base.estimator  # type: ignore[attr-defined]
    optimizer = ThresholdOptimizer(estimator=estimator, constraints=constraint, prefit=True, predict_method="auto")
    optimizer.estimator_ = estimator
    optimizer.interpolated_thresholder_ = InterpolatedThresholder(
        estimator, {group(k): rule(v) for k, v in rules.items()}, prefit=True, predict_method="auto"
    ).fit(np.zeros((1, 1)), np.zeros(1))  # prefit: fit only records the estimator
    return optimizer
