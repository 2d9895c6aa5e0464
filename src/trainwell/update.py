"""Feedback → update → version → promote: a run learns from new labelled rows without losing what it was.

`update` holds out part of the new rows (seeded, `eval_share`), retrains the run's configuration on the rest
(`window="new"`) or on the run's original training rows plus them (`window="all"`, read again from
`data.source`), and saves the result as the next version in the run. Both the new version and the active one
are scored on the held-out new rows, and on the run's original test split when its data can be read; the new
version is promoted only when it does at least as well on the new rows (the data that matters now), unless
`promote="force"` (always) or `"never"`. A version that is not promoted is kept and can be promoted later.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from trainwell.data.prepare import save_preparer
from trainwell.data.sources import read_table
from trainwell.errors import UserError
from trainwell.evaluate.metrics import GREATER_IS_BETTER, primary_metric
from trainwell.experiment import train
from trainwell.models.registry import model_tags
from trainwell.pipeline import load_and_split
from trainwell.run import Run
from trainwell.track.versions import next_version, seal_version, set_active, version_dir

Window = Literal["new", "all"]
Promote = Literal["auto", "force", "never"]


def read_rows(data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, str]:
    """New rows from a DataFrame, a table file, or the server's feedback file (JSON lines)."""
    if isinstance(data, pd.DataFrame):
        return data, "the DataFrame"
    path = Path(data)
    if path.suffix == ".jsonl":
        try:
            return pd.read_json(path, lines=True), str(path)
        except ValueError as exc:
            raise UserError(f"{path}: not JSON lines ({str(exc).splitlines()[0]})") from None
    return read_table(path), str(path)


def update(run_dir: str | Path, data: pd.DataFrame | str | Path, *, window: Window = "new",
           promote: Promote = "auto", eval_share: float = 0.3, quiet: bool = True) -> dict[str, Any]:  # fmt: skip
    """Train the next version on new labelled rows; returns its version.json (evaluation, promoted or not)."""
    run = Run.load(run_dir)
    if run.task == "reinforcement_learning":
        raise UserError(f"{run.dir} holds an agent; train it again with `trainwell train` (update learns from rows)")
    frame, source = read_rows(data)
    target = run.info["target"]
    if run.supervised:
        if target not in frame.columns:
            raise UserError(f'{source} has no target column "{target}"; update learns from labelled rows')
        frame = frame[frame[target].notna()].reset_index(drop=True)
    elif target not in frame.columns:  # unsupervised: the label column, if any, only scores
        target = None
    if len(frame) < 10:
        raise UserError(f"{source} holds {len(frame)} usable row(s); give at least 10 to learn and check on")
    rng = np.random.default_rng(run.config.seed)
    held = np.zeros(len(frame), dtype=bool)
    held[rng.choice(len(frame), max(1, round(eval_share * len(frame))), replace=False)] = True
    fresh, check = frame[~held], frame[held]
    original = _original_split(run)
    original_test = None if original is None else original[0].frame.iloc[original[1].test].reset_index(drop=True)
    columns = [*run.info["input_columns"], *([target] if target is not None else [])]
    if window == "all":
        if original_test is None:
            raise UserError(f"window all retrains on the run's original rows, but its data cannot be read again "
                            f"(data.source {run.config.data.source!r}); use window new")  # fmt: skip
        old_rows = original[0].frame.iloc[original[1].train]  # type: ignore[index]
        learn_from = pd.concat([old_rows[columns], fresh[columns]], ignore_index=True)
    else:
        learn_from = fresh[columns]
    name = next_version(run.dir)
    folder = version_dir(run.dir, name)
    if folder.exists():
        raise UserError(f"{folder} exists already; a previous update stopped half-way: remove it")
    staging = folder.parent / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    if window == "new" and model_tags(run.model).incremental:
        method = "partial_fit"  # the deployed model learns on, from its state, through its own preparation
        model = copy.deepcopy(run.model)
        epochs = run.config.train.epochs  # a full budget from the current weights, never from scratch
        labels = run.encode_target(fresh[target], source) if run.supervised else None
        model.partial_fit(run.features(fresh, source), labels, epochs=epochs)  # type: ignore[attr-defined]
        trained = Run(run.dir, run.config, run.info, run.metrics, model, run.preparer)
        model.save(staging / "model")
        save_preparer(run.preparer, staging / "model" / "preparer.skops")
        evaluation = _evaluation(run, trained, name, check, original_test)
    else:
        method = "retrain"
        trained, evaluation = _retrain(run, name, learn_from, staging, check, original_test, quiet=quiet)
    metric = primary_metric(run.task)
    scores = evaluation["new_rows"]
    better = _at_least_as_good(scores[name].get(metric), scores[run.version].get(metric), metric)
    promoted = promote == "force" or (promote == "auto" and better)
    reason = ("forced" if promote == "force" else "not promoted (never)" if promote == "never" else
              f"{metric} on the held-out new rows {'≥' if better else '<'} {run.version}'s")  # fmt: skip
    info = {"version": name, "parent": run.version, "method": method, "window": window, "source": source,
            "rows_learned": len(learn_from), "rows_held_out": len(check), "metric": metric,
            "evaluation": evaluation, "promoted": promoted, "reason": reason,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    seal_version(staging, info)
    staging.rename(folder)  # whole or absent
    if promoted:
        set_active(run.dir, name, reason)
    return info


def _retrain(run: Run, name: str, learn_from: pd.DataFrame, staging: Path, check: pd.DataFrame,
             original_test: pd.DataFrame | None, *, quiet: bool) -> tuple[Run, dict[str, Any]]:
    """Train the run's configuration afresh on `learn_from` and stage its model as version `name`."""
    target = run.info["target"] if run.info["target"] in learn_from.columns else None
    with tempfile.TemporaryDirectory(prefix="trainwell-update-") as tmp:
        cfg = run.config.model_dump(mode="json")
        cfg["data"] = {k: v for k, v in cfg["data"].items() if k != "source"} | {"target": target}
        # the version is judged on the held-out new rows; the inner run keeps a token test split (it needs one)
        cfg["split"] |= {"test": 0.05, "time_column": None, "group_column": None}
        cfg["audit"]["fail_on"] = "never"
        trained = train(cfg, data=learn_from, run_dir=Path(tmp) / "run", quiet=quiet)
        shutil.copytree(trained.dir / "model", staging / "model")
        return trained, _evaluation(run, trained, name, check, original_test)


def _evaluation(run: Run, trained: Run, name: str, check: pd.DataFrame,
                original_test: pd.DataFrame | None) -> dict[str, Any]:  # fmt: skip
    """Both versions on the held-out new rows, and on the original test split when it can be read again."""
    out = {"new_rows": {"rows": len(check), run.version: _score(run, check), name: _score(trained, check)}}
    if original_test is not None:
        out["original_test"] = {"rows": len(original_test), run.version: _score(run, original_test),
                                name: _score(trained, original_test)}  # fmt: skip
    return out


def promote_version(run_dir: str | Path, name: str) -> None:
    run = Run.load(run_dir)
    set_active(run.dir, name, "promoted by hand")


def _score(run: Run, rows: pd.DataFrame) -> dict[str, float]:
    return {k: float(v) for k, v in run.evaluate(rows).items() if isinstance(v, (int, float))}


def _at_least_as_good(new: float | None, old: float | None, metric: str) -> bool:
    if new is None or old is None:
        return False
    return new >= old if metric in GREATER_IS_BETTER else new <= old


def _original_split(run: Run) -> tuple[Any, Any] | None:
    if not run.config.data.source:
        return None
    _, prep, splits = load_and_split(run.config)
    if prep.info["fingerprint"] != run.info["data"]["fingerprint"]:
        raise UserError(f"{run.config.data.source} changed since {run.dir} was trained; the original split cannot "
                        "be rebuilt (use window new)")  # fmt: skip
    return prep, splits
