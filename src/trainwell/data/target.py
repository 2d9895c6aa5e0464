"""The target column: which rows are labelled, how labels become numbers, and whether every split can use them.

The one place that checks and encodes a target for training, so every caller agrees on what a usable label is.
Every problem is a one-line UserError naming the source and the target column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trainwell.config import Task
from trainwell.data.split import SPLIT_NAMES, Splits
from trainwell.errors import UserError

_SHOWN = 5  # classes named in one message


def labelled_rows(frame: pd.DataFrame, target: str, source: str) -> tuple[pd.DataFrame, int]:
    """The rows that have a target value, and how many were dropped for a missing one.

    Raises:
        UserError: every row's target is missing (nothing to learn from).
    """
    present = frame[target].notna()
    if not present.any():
        raise _no_values(target, source)
    return frame[present], int((~present).sum())


def encode_target(series: pd.Series, task: Task, target: str, source: str) -> tuple[np.ndarray, list[Any]]:
    """Classification → (class indices, sorted classes); regression → (float values, []).

    Classes sort by type name, then value, so mixed labels (1 and "a") have a stable order.

    Raises:
        UserError: a value is missing; regression: a value is not a finite number; classification: fewer
            than two classes, or a class with a single row (no split can both train and test on it).
    """
    missing = int(series.isna().sum())
    if missing == len(series):
        raise _no_values(target, source)
    if missing:
        raise UserError(f'{source}: target "{target}" has {missing} missing value(s); drop those rows before '
                        "encoding (training drops them itself)")  # fmt: skip
    if task == "regression":
        return _numbers(series, target, source), []
    classes = sorted(series.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise UserError(f'{source}: target "{target}" has a single class {_plain(classes[0])!r}; '
                        "classification needs at least two classes")  # fmt: skip
    index = {c: i for i, c in enumerate(classes)}
    y = series.map(index).to_numpy(np.int64)
    _check_class_sizes(y, classes, target, source)
    return y, [_plain(c) for c in classes]


def encode_labels(series: pd.Series, task: str, target: str, source: str) -> tuple[np.ndarray, list[Any]]:
    """An unsupervised task's optional label column, kept only to score the result: (codes, classes).

    Codes index the sorted classes; a missing label is -1 (the row is still clustered, just not scored).
    Anomaly detection reads the label as 1 = anomaly, so it must be 0/1 or true/false.

    Raises:
        UserError: anomaly-detection labels that are not 0/1 or true/false.
    """
    present = series.dropna()
    classes = sorted(present.unique().tolist(), key=lambda v: (str(type(v)), v))
    if task == "anomaly_detection":
        flags = {0, 1}
        odd = [c for c in classes if isinstance(c, str) or c not in flags]
        if odd:
            raise UserError(f'{source}: label column "{target}" must be 0/1 or true/false for anomaly detection '
                            f"(1 = anomaly); found {_plain(odd[0])!r}")  # fmt: skip
        return np.where(series.isna(), -1, series.fillna(0).astype(float)).astype(np.int64), [0, 1]
    index = {c: i for i, c in enumerate(classes)}
    return series.map(index).fillna(-1).to_numpy(np.int64), [_plain(c) for c in classes]


def check_split_classes(y: np.ndarray, splits: Splits, classes: list[Any], source: str) -> list[str]:
    """Warnings for classes absent from validation or test; regression (no classes): none.

    Raises:
        UserError: a class has no row in the training split, so the model could never predict it.
    """
    if not classes:
        return []
    counts = {name: np.bincount(y[getattr(splits, name)], minlength=len(classes)) for name in SPLIT_NAMES}
    unseen = np.flatnonzero(counts["train"] == 0)
    if unseen.size:
        total = np.bincount(y, minlength=len(classes))
        shown = ", ".join(f"{_plain(classes[k])!r} ({total[k]} row{'' if total[k] == 1 else 's'})"
                          for k in unseen[:_SHOWN])  # fmt: skip
        raise UserError(f"{source}: class(es) {shown} have no row in the training split, so no model can learn "
                        "them; add rows of those classes, drop them, or use split.stratify: true")  # fmt: skip
    warnings = []
    for name in ("validation", "test"):
        if len(getattr(splits, name)):
            absent = [repr(_plain(classes[k])) for k in np.flatnonzero(counts[name] == 0)]
            if absent:
                warnings.append(f"class(es) {', '.join(absent[:_SHOWN])} have no row in the {name} split; "
                                f"per-class scores there leave them out")  # fmt: skip
    return warnings


def _no_values(target: str, source: str) -> UserError:
    return UserError(f'{source}: target "{target}" has no values (every row is missing); '
                     "fill it in or choose another data.target")


def _numbers(series: pd.Series, target: str, source: str) -> np.ndarray:
    """A regression target as finite float64 values."""
    values = pd.to_numeric(series, errors="coerce")
    bad = series[values.isna()]
    if len(bad):
        raise UserError(f'{source}: target "{target}" is not numeric (e.g. {bad.iloc[0]!r}); '
                        "for labels set data.task: classification")  # fmt: skip
    numbers = values.to_numpy(np.float64)
    infinite = ~np.isfinite(numbers)
    if infinite.any():
        row = series.index[np.flatnonzero(infinite)[0]]
        raise UserError(f'{source}: target "{target}" has {int(infinite.sum())} infinite value(s) '
                        f"(e.g. row {row}); fix or drop those rows")  # fmt: skip
    return numbers


def _check_class_sizes(y: np.ndarray, classes: list[Any], target: str, source: str) -> None:
    """Every class needs two rows: one to learn from and one to evaluate on."""
    counts = np.bincount(y, minlength=len(classes))
    single = np.flatnonzero(counts < 2)
    if single.size:
        shown = ", ".join(repr(_plain(classes[k])) for k in single[:_SHOWN])
        more = f" (+{single.size - _SHOWN} more)" if single.size > _SHOWN else ""
        raise UserError(f'{source}: target "{target}" has {single.size} class(es) with a single row: {shown}{more}; '
                        "a class needs at least 2 rows (one to train on, one to test on); drop those rows or "
                        "merge them into another class")  # fmt: skip


def _plain(value: Any) -> Any:
    """numpy scalars → plain Python values, so classes survive JSON unchanged."""
    return value.item() if isinstance(value, np.generic) else value
