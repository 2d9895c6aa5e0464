"""Fairness: who the model fails, measured with Fairlearn's MetricFrame, and three ways to mitigate it.

Metrics are per group of the sensitive column(s) (several columns: their intersections). Binary
classification gets selection rate, accuracy, precision, recall (TPR) and FPR per group, plus demographic
parity and equalized odds differences (max - min over groups) and ratios (min / max). Multiclass targets get
the same one-vs-rest for every class, summarised by the worst class. Regression gets errors per group.

Mitigation (binary classification; Fairlearn's reductions and post-processing are binary only):
- reweighing (Kamiran & Calders): sample weights that make the label independent of the group, before training;
- exponentiated_gradient (Agarwal et al.): a randomised mix of models trained under a fairness constraint;
- threshold_optimizer (Hardt et al.): group-specific thresholds on a fitted model; it needs the sensitive
  column at prediction time too, and should be fitted on rows the model did not train on.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, false_positive_rate, mean_prediction, selection_rate
from sklearn import metrics as skm
from sklearn.base import clone

from trainwell.config import Constraint, Task
from trainwell.models.mitigation import (
    FairClassifier,
    Sensitive,
    fit_exponentiated_gradient,
    fit_reweighed,
    fit_threshold_optimizer,
    group_frame,
)  # fmt: skip

DISPARITIES = (
    "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference", "equalized_odds_ratio",
)  # fmt: skip


# ---------------------------------------------------------------- metrics


def group_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: Sensitive,
    *,
    task: Task,
    positive: int = 1,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Per-group metrics, overall values, and disparity summaries, as plain JSON.

    Args:
        y_true, y_pred: class indices 0..K-1 (classification) or values (regression).
        sensitive: one column or several (intersections form the groups); gaps become "missing".
        positive: the favourable class for binary targets (selection rate counts it).
        class_names: names of the class indices, for the multiclass breakdown.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    groups = group_frame(sensitive, len(y_true))
    if task == "regression":
        return _regression(y_true.astype(float), y_pred.astype(float), groups)
    n_classes = len(class_names) if class_names else int(max(y_true.max(), y_pred.max())) + 1
    if n_classes <= 2:
        out = _binary(y_true == positive, y_pred == positive, groups)
        return {"task": "binary", "sensitive": list(groups.columns), "positive": positive, **out}
    frame = MetricFrame(metrics={"count": count, "accuracy": skm.accuracy_score,
                                 "balanced_accuracy": _quiet(skm.balanced_accuracy_score)},
                        y_true=y_true, y_pred=y_pred, sensitive_features=groups)  # fmt: skip
    names = class_names or [str(k) for k in range(n_classes)]
    per_class = [{"class": names[k], **_binary(y_true == k, y_pred == k, groups)} for k in range(n_classes)]
    worst = {key: _worst(key, [c[key] for c in per_class]) for key in DISPARITIES}
    return {"task": "multiclass", "sensitive": list(groups.columns), **_tables(frame), **worst,
            "per_class": per_class}  # fmt: skip


def _binary(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame) -> dict[str, Any]:
    """One binary problem (0/1 arrays): MetricFrame tables and the demographic parity / equalized odds summary."""
    y_true, y_pred = y_true.astype(int), y_pred.astype(int)
    frame = MetricFrame(
        metrics={
            "count": count, "selection_rate": partial(selection_rate, pos_label=1),
            "accuracy": skm.accuracy_score,
            "precision": partial(skm.precision_score, zero_division=0),
            "recall": partial(skm.recall_score, zero_division=0),
            "fpr": _quiet(partial(false_positive_rate, pos_label=1)),
        },
        y_true=y_true, y_pred=y_pred, sensitive_features=groups,
    )  # fmt: skip
    tables = _tables(frame)
    diff, ratio = tables["difference"], tables["ratio"]
    return {
        **tables,
        "demographic_parity_difference": diff["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        # Fairlearn's equalized odds: the worse of the TPR (recall) and FPR gaps
        "equalized_odds_difference": _worst("difference", [diff["recall"], diff["fpr"]]),
        "equalized_odds_ratio": _worst("ratio", [ratio["recall"], ratio["fpr"]]),
    }


def _regression(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame) -> dict[str, Any]:
    """Errors per group; the mean prediction gap is the regression analogue of demographic parity."""
    frame = MetricFrame(
        metrics={"count": count, "mae": skm.mean_absolute_error, "rmse": skm.root_mean_squared_error,
                 "mean_prediction": mean_prediction, "mean_target": lambda t, p: float(np.mean(t))},
        y_true=y_true, y_pred=y_pred, sensitive_features=groups,
    )  # fmt: skip
    tables = _tables(frame)
    return {"task": "regression", "sensitive": list(groups.columns), **tables,
            "mae_difference": tables["difference"]["mae"], "mae_ratio": tables["ratio"]["mae"],
            "mean_prediction_difference": tables["difference"]["mean_prediction"]}  # fmt: skip


def _tables(frame: MetricFrame) -> dict[str, Any]:
    """MetricFrame's by-group table, overall values and between-group differences and ratios."""
    by_group = frame.by_group.reset_index()
    names = list(frame.by_group.index.names)
    rows = [{"group": {n: _plain(r[n]) for n in names}, **{m: _num(r[m], m) for m in frame.by_group.columns}}
            for r in by_group.to_dict("records")]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ratio with a zero maximum is NaN, reported as null
        diff, ratio = frame.difference(method="between_groups"), frame.ratio(method="between_groups")
    metrics = [m for m in frame.by_group.columns if m != "count"]
    return {
        "overall": {m: _num(frame.overall[m], m) for m in frame.by_group.columns},
        "by_group": rows,
        "difference": {m: _num(diff[m]) for m in metrics},
        "ratio": {m: _num(ratio[m]) for m in metrics},
    }


# ---------------------------------------------------------------- comparing mitigations


def tradeoff(y_true: np.ndarray, predictions: dict[str, np.ndarray], sensitive: Sensitive) -> list[dict[str, Any]]:
    """One row per variant (e.g. none, reweighing...): accuracy beside the disparities, for the report."""
    rows = []
    for name, y_pred in predictions.items():
        summary = group_metrics(y_true, y_pred, sensitive, task="classification")
        rows.append({
            "method": name,
            "accuracy": _num(skm.accuracy_score(y_true, y_pred)),
            "balanced_accuracy": _num(_quiet(skm.balanced_accuracy_score)(y_true, y_pred)),
            **{k: summary[k] for k in DISPARITIES},
        })  # fmt: skip
    return rows


def compare_mitigations(
    estimator: Any,
    train: tuple[np.ndarray, np.ndarray, Sensitive],
    evaluation: tuple[np.ndarray, np.ndarray, Sensitive],
    *,
    calibration: tuple[np.ndarray, np.ndarray, Sensitive] | None = None,
    constraint: Constraint = "demographic_parity",
    difference_bound: float = 0.01,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train the unmitigated model and every mitigation on `train`; score all on `evaluation` (binary).

    Each of `train`, `evaluation`, `calibration` is (X, y, sensitive). The threshold optimizer is fitted
    on `calibration` (use the validation split) or, without it, on `train`.
    """
    X, y, s = train
    X_eval, y_eval, s_eval = evaluation
    base = clone(estimator).fit(X, y)
    X_cal, y_cal, s_cal = calibration or train
    models = {
        "none": FairClassifier("none", base),
        "reweighing": fit_reweighed(estimator, X, y, s),
        "exponentiated_gradient": fit_exponentiated_gradient(
            estimator, X, y, s, constraint=constraint, difference_bound=difference_bound, seed=seed
        ),
        "threshold_optimizer": fit_threshold_optimizer(base, X_cal, y_cal, s_cal, constraint=constraint, seed=seed),
    }
    predictions = {name: m.predict(X_eval, s_eval) for name, m in models.items()}
    return tradeoff(np.asarray(y_eval), predictions, s_eval)


# ---------------------------------------------------------------- helpers


def _quiet(fn: Any) -> Any:
    """A metric with its ill-defined warnings silenced (a group without negatives has no FPR)."""

    def call(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn(y_true, y_pred))

    return call


def _worst(key: str, values: list[float | None]) -> float | None:
    """The worst class: the largest difference or the smallest ratio; None when all are undefined."""
    kept = [v for v in values if v is not None]
    return (max if key.endswith("difference") else min)(kept) if kept else None


def _num(value: Any, metric: str = "") -> float | int | None:
    """A float for JSON (an int for counts); NaN (undefined, e.g. a ratio over a zero rate) becomes None."""
    value = float(value)
    if math.isnan(value):
        return None
    return int(value) if metric == "count" else value


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
