"""How a binary classifier is mitigated for fairness, with Fairlearn's public estimators: reweighing before
training, exponentiated gradient (constrained training) and per-group thresholds after training.

The one implementation that both the saved model (`models/fair.py`) and the report's trade-off table
(`evaluate/fairness.py`) use, so the table's rows are the very models a run would keep.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
from sklearn.base import clone

from trainwell.config import Constraint, Mitigation
from trainwell.errors import UserError

Sensitive = pd.Series | pd.DataFrame | np.ndarray


def reweighing_weights(y: np.ndarray, sensitive: Sensitive) -> np.ndarray:
    """Kamiran-Calders weights w(g, y) = P(g) P(y) / P(g, y): in the weighted data, y is independent of g.

    The weights average 1, so they drop into any `fit(X, y, sample_weight=w)` unchanged in scale.
    """
    y = np.asarray(y)
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise UserError("fairness.mitigation reweighing needs class labels; it does not apply to regression")
    key = group_frame(sensitive, len(y)).astype(str).agg("|".join, axis=1).to_numpy()
    cells = pd.DataFrame({"g": key, "y": y})
    p_g = cells["g"].map(cells["g"].value_counts(normalize=True))
    p_y = cells["y"].map(cells["y"].value_counts(normalize=True))
    p_gy = cells.groupby(["g", "y"])["y"].transform("size") / len(cells)
    return (p_g * p_y / p_gy).to_numpy(np.float64)


class FairClassifier:
    """A mitigated binary classifier with one API; `sensitive` is needed only by threshold_optimizer."""

    def __init__(self, method: Mitigation, fitted: Any, seed: int = 0) -> None:
        self.method, self.fitted, self.seed = method, fitted, seed

    def predict(self, X: np.ndarray, sensitive: Sensitive | None = None) -> np.ndarray:
        """Class indices; the randomised mitigations are made repeatable with the seed."""
        if self.method == "exponentiated_gradient":
            return np.asarray(self.fitted.predict(X, random_state=self.seed), dtype=np.int64)
        if self.method == "threshold_optimizer":
            X = np.asarray(X, dtype=np.float64)  # Fairlearn fails on float32 scores (dtype of its output array)
            groups = group_frame(_need(sensitive), len(X))
            return np.asarray(self.fitted.predict(X, sensitive_features=groups, random_state=self.seed), np.int64)
        return np.asarray(self.fitted.predict(X), dtype=np.int64)

    def predict_proba(self, X: np.ndarray, sensitive: Sensitive | None = None) -> np.ndarray:
        """(N, 2) probabilities of predicting each class (for the mitigations: of the randomised mix)."""
        if self.method == "exponentiated_gradient":
            return np.asarray(self.fitted._pmf_predict(X), dtype=np.float64)
        if self.method == "threshold_optimizer":
            X = np.asarray(X, dtype=np.float64)  # Fairlearn fails on float32 scores (dtype of its output array)
            groups = group_frame(_need(sensitive), len(X))
            return np.asarray(self.fitted._pmf_predict(X, sensitive_features=groups), dtype=np.float64)
        return np.asarray(self.fitted.predict_proba(X), dtype=np.float64)


def fit_reweighed(estimator: Any, X: np.ndarray, y: np.ndarray, sensitive: Sensitive) -> FairClassifier:
    """Fit a clone of `estimator` with Kamiran-Calders sample weights."""
    weights = {_weight_name(estimator): reweighing_weights(y, sensitive)}
    model = clone(estimator).fit(X, y, **weights)
    return FairClassifier("reweighing", model)


def fit_exponentiated_gradient(
    estimator: Any, X: np.ndarray, y: np.ndarray, sensitive: Sensitive, *,
    constraint: Constraint = "demographic_parity", difference_bound: float = 0.01, seed: int = 0,
) -> FairClassifier:  # fmt: skip
    """Fairlearn's ExponentiatedGradient over clones of `estimator` (its fit must take sample_weight).

    Predictions are a randomised mix of the models found; `FairClassifier` seeds them.
    """
    _check_binary(y, "exponentiated_gradient")
    moment = (DemographicParity if constraint == "demographic_parity" else EqualizedOdds)(
        difference_bound=difference_bound
    )
    mitigator = ExponentiatedGradient(clone(estimator), constraints=moment, sample_weight_name=_weight_name(estimator))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-iteration convergence chatter of the inner estimator
        mitigator.fit(X, np.asarray(y), sensitive_features=group_frame(sensitive, len(y)))
    return FairClassifier("exponentiated_gradient", mitigator, seed)


def fit_threshold_optimizer(
    fitted_estimator: Any, X: np.ndarray, y: np.ndarray, sensitive: Sensitive, *,
    constraint: Constraint = "demographic_parity", seed: int = 0,
) -> FairClassifier:  # fmt: skip
    """Fairlearn's ThresholdOptimizer on an already fitted estimator; fit it on held-out rows."""
    _check_binary(y, "threshold_optimizer")
    optimizer = ThresholdOptimizer(estimator=fitted_estimator, constraints=constraint, prefit=True,
                                   predict_method="auto")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer.fit(X, np.asarray(y), sensitive_features=group_frame(sensitive, len(y)))
    return FairClassifier("threshold_optimizer", optimizer, seed)


# ---------------------------------------------------------------- helpers


def group_frame(sensitive: Sensitive, n: int) -> pd.DataFrame:
    """Sensitive features as a frame with a fresh index, gaps as "missing"; checks the length."""
    if isinstance(sensitive, pd.DataFrame):
        frame = sensitive.reset_index(drop=True)
    elif isinstance(sensitive, pd.Series):
        frame = sensitive.reset_index(drop=True).to_frame(name=sensitive.name or "group")
    else:
        values = np.asarray(sensitive)
        frame = pd.DataFrame(values.reshape(len(values), -1))
        frame.columns = ["group"] if frame.shape[1] == 1 else [f"group_{i}" for i in range(frame.shape[1])]
    if len(frame) != n:
        raise UserError(f"fairness: {len(frame)} sensitive values for {n} rows; pass one per row")
    frame.columns = [str(c) for c in frame.columns]
    return frame.astype(object).where(frame.notna(), "missing")


def _weight_name(estimator: Any) -> str:
    """`sample_weight`, or `<last step>__sample_weight` for a scikit-learn Pipeline."""
    steps = getattr(estimator, "steps", None)
    return f"{steps[-1][0]}__sample_weight" if steps else "sample_weight"


def _check_binary(y: np.ndarray, method: str) -> None:
    if len(np.unique(np.asarray(y))) != 2:
        raise UserError(
            f"fairness.mitigation {method} supports binary classification only; use reweighing for multiclass"
        )


def _need(sensitive: Sensitive | None) -> Sensitive:
    if sensitive is None:
        raise UserError("threshold_optimizer predicts per group: pass the sensitive column(s) with the rows")
    return sensitive
