"""Metrics by task, computed with scikit-learn, named in lower snake case for metrics.json."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn import metrics as skm

from trainwell.config import Task
from trainwell.errors import UserError, unknown

if TYPE_CHECKING:
    from trainwell.data.prepared import Prepared
    from trainwell.models.fitted import Fitted

CLASSIFICATION_METRICS = (
    "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
    "precision_weighted", "recall_weighted", "f1_weighted", "precision", "recall", "f1",
    "roc_auc", "log_loss",
)  # fmt: skip
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")
CLUSTERING_METRICS = ("silhouette", "davies_bouldin", "calinski_harabasz", "adjusted_rand", "normalized_mutual_info",
                      "homogeneity", "completeness")  # fmt: skip
REDUCTION_METRICS = ("variance_kept", "reconstruction_error")
ANOMALY_METRICS = ("roc_auc", "average_precision", "precision_at_contamination", "flag_precision", "flag_recall")
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS, "clustering": CLUSTERING_METRICS,
    "dimensionality_reduction": REDUCTION_METRICS, "anomaly_detection": ANOMALY_METRICS,
}  # fmt: skip
# Unsupervised metrics that compare with a label column (data.target), so they need one.
NEEDS_LABELS = {"adjusted_rand", "normalized_mutual_info", "homogeneity", "completeness", *ANOMALY_METRICS}
# Metrics where larger is better; everything else (losses, errors) is minimised.
GREATER_IS_BETTER = ({m for m in CLASSIFICATION_METRICS if m != "log_loss"} | {"r2"} | set(ANOMALY_METRICS)
                     | {m for m in CLUSTERING_METRICS if m != "davies_bouldin"} | {"variance_kept"})  # fmt: skip
# The headline metric of each task: shown first, used to rank models. Anomaly detection's needs a label column.
PRIMARY = {"classification": "accuracy", "regression": "r2", "clustering": "silhouette",
           "dimensionality_reduction": "variance_kept", "anomaly_detection": "roc_auc"}  # fmt: skip


def compute_metrics(
    task: Task, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None = None, n_classes: int = 0
) -> dict[str, float | list[list[int]]]:
    """All metrics for one split; classification labels are class indices 0..n_classes-1.

    Never fails on what a model or a small split can produce: classes absent from `y_true` still count
    (log-loss over all `n_classes` labels, zero-support classes in the macro averages); `roc_auc` is left
    out when `y_true` holds a single class (undefined); non-finite outputs of a diverged model give
    non-finite scores instead of an error (regression: mse/rmse/mae inf or NaN, r2 NaN; classification:
    log_loss and roc_auc NaN, a NaN predicted label counts as wrong).
    """
    if len(y_true) == 0:
        return {}
    if task == "regression":
        return _regression(np.asarray(y_true, float), np.asarray(y_pred, float))
    return _classification(np.asarray(y_true), _labels(y_pred), proba, n_classes)


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float | list[list[int]]]:
    with np.errstate(all="ignore"):  # 1e308 predictions square to inf: an honest score, not an error
        if not (np.isfinite(y).all() and np.isfinite(p).all()):
            err = p - y
            mse, mae = float(np.mean(err * err)), float(np.mean(np.abs(err)))
            return {"mse": mse, "rmse": math.sqrt(mse), "mae": mae, "r2": float("nan")}
        mse = float(skm.mean_squared_error(y, p))
        r2 = float(skm.r2_score(y, p)) if len(y) > 1 else float("nan")
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": float(skm.mean_absolute_error(y, p)), "r2": r2}


def _labels(y_pred: np.ndarray) -> np.ndarray:
    """Predicted class indices as int64; a missing (NaN) prediction becomes -1, which matches no class."""
    p = np.asarray(y_pred)
    if p.dtype.kind == "f":
        p = np.where(np.isfinite(p), p, -1)
    return p.astype(np.int64)


def _classification(
    y: np.ndarray, p: np.ndarray, proba: np.ndarray | None, n_classes: int
) -> dict[str, float | list[list[int]]]:
    width = 0 if proba is None else np.shape(proba)[1]
    labels = list(range(max(n_classes, int(max(y.max(), p.max())) + 1, width)))
    out: dict[str, float | list[list[int]]] = {
        "accuracy": float(skm.accuracy_score(y, p)),
        "balanced_accuracy": _quiet(skm.balanced_accuracy_score, y, p),
    }
    for avg in ("macro", "weighted"):
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            y, p, labels=labels, average=avg, zero_division=0
        )
        out.update({f"precision_{avg}": float(prec), f"recall_{avg}": float(rec), f"f1_{avg}": float(f1)})
    if len(labels) == 2:  # binary: the positive class is index 1 (the second class in sorted order)
        prec, rec, f1, _ = skm.precision_recall_fscore_support(  # per label: -1 (a NaN prediction) is no label
            y, p, labels=labels, average=None, zero_division=0
        )
        out.update({"precision": float(prec[1]), "recall": float(rec[1]), "f1": float(f1[1])})
    if proba is not None:
        out.update(_probability_metrics(y, np.asarray(proba, float), labels))
    out["confusion_matrix"] = skm.confusion_matrix(y, p, labels=labels).tolist()
    return out


def _probability_metrics(y: np.ndarray, proba: np.ndarray, labels: list[int]) -> dict[str, float]:
    """log_loss over every label, and roc_auc when `y` holds two classes or more; NaN for non-finite proba."""
    if not np.isfinite(proba).all():
        return {"log_loss": float("nan"), "roc_auc": float("nan")}
    if proba.shape[1] < len(labels):  # a model that never saw some classes gives them probability 0
        proba = np.pad(proba, ((0, 0), (0, len(labels) - proba.shape[1])))
    proba = np.clip(proba, 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    out = {"log_loss": float(skm.log_loss(y, proba, labels=labels))}
    if len(np.unique(y)) > 1:
        out["roc_auc"] = _roc_auc(y, proba, labels)
    return out


def _roc_auc(y: np.ndarray, proba: np.ndarray, labels: list[int]) -> float:
    """Binary AUC on the positive class; one-vs-rest macro AUC over the classes present otherwise."""
    if len(labels) == 2:
        return float(skm.roc_auc_score(y, proba[:, 1]))
    present = np.unique(y)
    if len(present) < len(labels):  # a class absent from this split: average over those present
        scores = [skm.roc_auc_score(y == k, proba[:, k]) for k in present]
        return float(np.mean(scores))
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels))


def _quiet(fn, *args) -> float:  # type: ignore[no-untyped-def]
    """Call a metric, silencing the 'y_pred contains classes not in y_true' style warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(*args))


def primary_metric(task: str) -> str:
    """The headline metric shown first and used to rank models."""
    return PRIMARY.get(task, "accuracy")


def resolve_metric(field: str, name: str, task: str, n_classes: int) -> str:
    """A configured metric (`tune.metric`, `compare.metric`): auto is the primary metric; binary-only
    metrics (precision, recall, f1 of the positive class) need two classes."""
    if name == "auto":
        return primary_metric(task)
    valid = TASK_METRICS[task]
    if task == "classification" and n_classes != 2:
        valid = tuple(m for m in valid if m not in ("precision", "recall", "f1"))
    if name not in valid:
        raise unknown(field, name, valid)
    return name


def require_labels(field: str, metric: str, task: str, labelled: bool, source: str) -> None:
    """Refuse to rank unsupervised models by a metric that needs the label column the data lacks."""
    if labelled or metric not in NEEDS_LABELS:
        return
    others = [m for m in TASK_METRICS[task] if m not in NEEDS_LABELS]
    hint = f", or {field} to one of: {', '.join(others)}" if others else f" (every {task} score compares with labels)"
    raise UserError(f"{field} {metric} scores against known labels and {source} has none; set data.target to a "
                    f"label column (1 = anomaly, 0 = normal for anomaly detection){hint}")  # fmt: skip


def score(fitted: Fitted, prep: Prepared, rows: np.ndarray) -> dict[str, Any]:
    """Every metric of a fitted candidate on `rows` of the prepared data (through its counted gate)."""
    return split_metrics(fitted, prep, rows, fitted.outputs(prep, rows))


def split_metrics(fitted: Fitted, prep: Prepared, rows: np.ndarray,
                  outputs: tuple[np.ndarray, np.ndarray | None]) -> dict[str, Any]:  # fmt: skip
    """Every metric of `outputs`, the fitted candidate's answers on `rows`, for the task at hand."""
    if prep.supervised:
        return compute_metrics(prep.task, prep.y[rows], *outputs, n_classes=len(prep.classes))  # type: ignore[arg-type]
    from trainwell.evaluate.unsupervised import split_scores

    labels = prep.y[rows] if prep.labelled else None
    return split_scores(prep.task, fitted.model.estimator_, fitted.transform(prep, rows), outputs, labels,  # type: ignore[attr-defined]
                        contamination=fitted.params.get("contamination"))  # fmt: skip
