"""The data a run learns from: the loaded table with its target checked and encoded, its schema and task.

`Prepared` is the state that travels between the stages of a run (split, audit, fit, evaluate, save);
it also counts how often the test rows are predicted, so the "tested once" guarantee is evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainwell.config import UNSUPERVISED_TASKS, ExperimentConfig, Task, UnsupervisedTask
from trainwell.data.schema import infer_schema, infer_task
from trainwell.data.sources import Dataset
from trainwell.data.target import encode_labels, encode_target, labelled_rows
from trainwell.errors import UserError, did_you_mean


@dataclass
class Prepared:
    """The dataset after target encoding, schema inference and de-duplication."""

    frame: pd.DataFrame
    target: str | None  # unsupervised tasks: the optional label column, never a feature
    task: Task | UnsupervisedTask
    schema: dict[str, str]
    classes: list[Any]
    y: np.ndarray  # class indices or float targets (unsupervised: label codes, -1 unknown), aligned with rows
    info: dict[str, Any]
    sensitive: list[str] = field(default_factory=list)  # fairness groups; features only if the config says so
    audit: dict[str, Any] = field(default_factory=dict)  # audit_summary of the findings before training
    test_rows: np.ndarray | None = None  # the test split, once split: `Fitted.outputs` counts every use of it
    test_evaluations: int = 0  # how many times the test rows were predicted; the guarantees require one

    def features(self, keep_sensitive: bool = False) -> list[str]:
        """Input columns of the model: the schema's columns without ids (and without sensitive ones)."""
        drop = set() if keep_sensitive else set(self.sensitive)
        return [c for c, t in self.schema.items() if t != "id" and c not in drop]

    @property
    def supervised(self) -> bool:
        return self.task not in UNSUPERVISED_TASKS

    @property
    def labelled(self) -> bool:
        """Unsupervised rows carry a label column to score against (supervised rows always do)."""
        return self.supervised or bool((self.y >= 0).any())



def prepare(ds: Dataset, cfg: ExperimentConfig) -> Prepared:
    """Check and encode the target, infer the schema and drop duplicate rows."""
    if cfg.data.task in UNSUPERVISED_TASKS:
        return _prepare_unsupervised(ds, cfg)
    frame, target = ds.frame, cfg.data.target or ds.target
    if target is None:
        raise UserError(f"{ds.name}: no target column given; set data.target (or --target) to one of: "
                        + ", ".join(map(str, frame.columns[:20])))  # fmt: skip
    if target not in frame.columns:
        raise UserError(f'{ds.name}: target column "{target}" not found{did_you_mean(target, frame.columns)}')
    frame, missing_target = labelled_rows(frame, target, ds.name)
    overrides: dict[str, Any] = dict(cfg.data.column_types)
    if ds.image_shape:  # pixels stay numeric and in order, so a CNN can reshape them
        overrides = {c: "numeric" for c in frame.columns if c != target} | overrides
    schema = infer_schema(frame, target, overrides, cfg.data.features, cfg.data.drop)
    rows_in = len(frame)
    if cfg.prepare.drop_duplicates:
        keys = [c for c, t in schema.items() if t != "id"] + [target]
        frame = frame.drop_duplicates(subset=keys)
    frame = frame.reset_index(drop=True)
    task: Task = infer_task(frame[target]) if cfg.data.task == "auto" else cfg.data.task  # type: ignore[assignment]
    y, classes = encode_target(frame[target], task, target, ds.name)
    info = {"source": ds.name, "fingerprint": ds.fingerprint, "rows": len(ds.frame), "columns": ds.frame.shape[1],
            "duplicates_removed": rows_in - len(frame), "missing_target_removed": missing_target}  # fmt: skip
    return Prepared(frame, target, task, schema, classes, y, info)


def _prepare_unsupervised(ds: Dataset, cfg: ExperimentConfig) -> Prepared:
    """No target: every column but the optional label column is a feature; no row is dropped for its label."""
    frame, target = ds.frame, cfg.data.target or ds.target
    if target is not None and target not in frame.columns:  # a builtin's target that a column list dropped
        target = None
    overrides: dict[str, Any] = dict(cfg.data.column_types)
    if ds.image_shape:
        overrides = {c: "numeric" for c in frame.columns if c != target} | overrides
    schema = infer_schema(frame, target, overrides, cfg.data.features, cfg.data.drop)
    if not any(t != "id" for t in schema.values()):
        raise UserError(f"{ds.name}: no feature columns are left to learn from; check data.features and data.drop")
    rows_in = len(frame)
    if cfg.prepare.drop_duplicates:
        frame = frame.drop_duplicates(subset=[c for c, t in schema.items() if t != "id"])
    frame = frame.reset_index(drop=True)
    task: UnsupervisedTask = cfg.data.task  # type: ignore[assignment]
    if target is None:
        y, classes = np.full(len(frame), -1, dtype=np.int64), []
    else:
        y, classes = encode_labels(frame[target], task, target, ds.name)
    info = {"source": ds.name, "fingerprint": ds.fingerprint, "rows": len(ds.frame), "columns": ds.frame.shape[1],
            "duplicates_removed": rows_in - len(frame), "missing_target_removed": 0}  # fmt: skip
    return Prepared(frame, target, task, schema, classes, y, info)
