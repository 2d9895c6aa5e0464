"""Model comparison: several model families on the same split, ranked on validation, the best one kept.

`compare` reads like `train`: load → split → fit every candidate → rank on validation (or on the k-fold
mean) → test the winner once → save, with the leaderboard in `metrics.json["leaderboard"]`. The test
rows are never used to rank: only the kept model is tested, once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from trainwell import pipeline
from trainwell.config import CompareConfig, ExperimentConfig, ModelConfig
from trainwell.data.prepared import Prepared
from trainwell.data.sources import Dataset
from trainwell.data.split import Splits
from trainwell.errors import UserError
from trainwell.evaluate.metrics import (
    GREATER_IS_BETTER,
    require_labels,
    resolve_metric,
    score,
)
from trainwell.models.ensemble import ENSEMBLES
from trainwell.models.fitted import Fitted
from trainwell.models.registry import list_models, parse_params
from trainwell.models.unsupervised import get_unsupervised
from trainwell.run import Run, save_run, staged
from trainwell.track.rundir import Stage, claim, default_run_dir
from trainwell.tune.cv import cross_validate
from trainwell.tune.space import model_tasks

# Cheap families first, so a time budget still sees the widest spread of model kinds.
DEFAULT_CANDIDATES = {
    "classification": ["logistic_regression", "knn", "lightgbm", "random_forest", "svm", "mlp"],
    "regression": ["linear_regression", "knn", "lightgbm", "random_forest", "svm", "mlp"],
    "clustering": ["kmeans", "gaussian_mixture", "agglomerative", "hdbscan"],
    "dimensionality_reduction": ["pca", "truncated_svd", "autoencoder"],
    "anomaly_detection": ["isolation_forest", "local_outlier_factor", "one_class_svm", "autoencoder_detector"],
}
SVM_MAX_ROWS = 20_000  # kernel SVMs scale with rows squared: left out of the default list above this
console = Console(stderr=True)


@dataclass
class Entry:
    """One candidate's outcome: its scores (validation metrics or k-fold means) or its error."""

    model: str
    params: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    fitted: Fitted | None = None  # kept for the current leader only (holdout)
    cv: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Budget:
    """`compare.time_budget_s`, counted from the start of the comparison."""

    seconds: float | None
    started: float

    def spent(self) -> bool:
        return self.seconds is not None and time.time() - self.started > self.seconds

    def reason(self) -> str:
        return f"time budget of {self.seconds:g} s spent"


@dataclass
class Setup:
    """What every candidate shares: the config, the data, the split and how candidates are ranked."""

    cfg: ExperimentConfig
    ds: Dataset
    prep: Prepared
    splits: Splits
    metric: str
    greater: bool


def compare(
    config: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    *,
    data: pd.DataFrame | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    quiet: bool = False,
    models: list[str] | None = None,
    **overrides: Any,
) -> Run:
    """Fit each candidate family on the same split, rank them, test the best once and save it as a run.

    `models` (or `compare.models`) names the candidates; other overrides work as in `trainwell.train`,
    e.g. `**{"compare.time_budget_s": 60}` once the config has its `compare` section.
    """
    cfg, frame = pipeline.resolve(config, data, overrides)
    settings = compare_settings(cfg, models)
    started = time.time()
    with staged(claim(run_dir or default_run_dir(cfg.name))) as stage:
        ds, prep, splits = pipeline.load_and_split(cfg, frame)
        if cfg.validation.strategy == "holdout" and not len(splits.validation):
            raise UserError("compare ranks models on the validation split; set split.validation > 0 "
                            "or validation.strategy: kfold")  # fmt: skip
        metric = resolve_metric("compare.metric", settings.metric, prep.task, len(prep.classes))
        require_labels("compare.metric", metric, prep.task, prep.labelled, ds.name)
        setup = Setup(cfg, ds, prep, splits, metric, metric in GREATER_IS_BETTER)
        names, skipped = candidates(settings, cfg, prep.task, ds.image_shape, len(splits.train))
        budget = Budget(settings.time_budget_s, started)
        entries = run_candidates(setup, names, budget, skipped, quiet=quiet)
        if settings.ensemble_top_k:
            _add_ensemble(setup, entries, settings, skipped, budget, quiet=quiet)
        return _save_best(setup, entries, skipped, stage=stage, started=started)


def compare_settings(cfg: ExperimentConfig, models: list[str] | None = None) -> CompareConfig:
    """The config's `compare` section, `models` (the command line's --model) taking precedence."""
    return cfg.compare.model_copy(update={"models": models}) if models is not None else cfg.compare


def candidates(settings: CompareConfig, cfg: ExperimentConfig, task: str, image_shape: Any,
               n_train: int) -> tuple[list[str], list[dict[str, str]]]:  # fmt: skip
    """Model names to fit, in order, and the default families left out with the reason.

    A named list is compared as given; the default list also gets the configured `model.name`.
    """
    skipped: list[dict[str, str]] = []
    if settings.models is not None:
        names = list(dict.fromkeys(settings.models))
        for name in names:
            try:
                tasks = model_tasks(cfg, name)
            except UserError as exc:
                raise UserError(f"compare.models: {exc}") from None
            if task not in tasks:
                raise UserError(f'compare.models: "{name}" does not support {task}')
    else:
        cnn = ["cnn"] if image_shape and task in ("classification", "regression") else []  # likely best on images
        names = cnn + list(DEFAULT_CANDIDATES[task])
        if n_train > SVM_MAX_ROWS and "svm" in names:
            names.remove("svm")
            skipped.append({"model": "svm", "reason": f"over {SVM_MAX_ROWS} training rows; name it in compare.models"})
        if cfg.model.name not in ("auto", *names):
            names.append(cfg.model.name)  # competes with its own parameters (see run_candidates)
    return names, skipped


def run_candidates(setup: Setup, names: list[str], budget: Budget, skipped: list[dict[str, str]], *,
                   quiet: bool = True) -> list[Entry]:  # fmt: skip
    """Fit and score each candidate until the time budget runs out; the first always runs."""
    entries: list[Entry] = []
    for name in names:
        if entries and budget.spent():
            skipped.append({"model": name, "reason": budget.reason()})
            continue
        params = setup.cfg.model.params if name == setup.cfg.model.name else _shared_size(setup, name)
        entries.append(score_candidate(setup, name, params))
        _keep_leader_only(entries, setup)
        if not quiet:
            _print_entry(entries[-1], setup.metric)
    return entries


def score_candidate(setup: Setup, name: str, params: dict[str, Any]) -> Entry:
    """Fit one candidate and score it on validation (holdout) or by k-fold mean; errors are recorded."""
    cfg, prep, splits = with_model(setup.cfg, name, params), setup.prep, setup.splits
    # unsupervised parameters may hold n_clusters: auto; the fitted candidate records the value chosen
    entry = Entry(name, parse_params(name, params).model_dump(mode="json") if prep.supervised else dict(params))
    tic = time.perf_counter()
    try:
        if cfg.validation.strategy == "kfold":
            rows = np.concatenate([splits.train, splits.validation])
            entry.cv = cross_validate(cfg, setup.ds, prep, rows)
            entry.scores, entry.std = entry.cv["mean"], entry.cv["std"]
        else:
            entry.fitted = pipeline.fit_candidate(cfg, setup.ds, prep, splits.train, splits.validation)
            entry.params = entry.fitted.params if not prep.supervised else entry.params
            metrics = score(entry.fitted, prep, splits.validation)
            entry.scores = {k: float(v) for k, v in metrics.items() if isinstance(v, float | int)}
    except Exception as exc:  # noqa: BLE001 - one failing family must not end the comparison
        entry.error, entry.fitted = f"{type(exc).__name__}: {exc}", None
    entry.fit_seconds = round(time.perf_counter() - tic, 3)
    return entry


def _shared_size(setup: Setup, name: str) -> dict[str, Any]:
    """Unsupervised candidates share the configured number of clusters/components (clusters: auto by default),
    so they are compared at the same size; supervised candidates start from their registry defaults."""
    if setup.prep.supervised:
        return {}
    size = get_unsupervised(name).size_param
    if size is None:
        return {}
    configured = setup.cfg.model.params
    value = configured.get("n_clusters", configured.get("n_components"))
    if value is None:
        return {size: "auto"} if setup.prep.task == "clustering" else {}
    return {size: value}


def with_model(cfg: ExperimentConfig, name: str, params: dict[str, Any]) -> ExperimentConfig:
    """A copy of `cfg` whose model section is `name` with `params` (registry defaults for the rest)."""
    out = cfg.model_copy(deep=True)
    out.model = ModelConfig.model_validate({"name": name, **params})
    return out


def ranked(entries: list[Entry], metric: str, greater: bool) -> list[Entry]:
    """Best first; failed candidates and those without the metric last, in the order they ran."""

    def key(entry: Entry) -> float:
        value = entry.scores.get(metric, math.nan)
        if entry.error or math.isnan(value):
            return math.inf
        return -value if greater else value

    return sorted(entries, key=key)  # stable: ties keep the order in which candidates ran


def leaderboard(entries: list[Entry], metric: str, greater: bool) -> list[dict[str, Any]]:
    """Rows for metrics.json and the table: rank, model, ranking metric (± std with k-fold), timings, scores."""
    rows: list[dict[str, Any]] = []
    for rank, entry in enumerate(ranked(entries, metric, greater), start=1):
        if entry.error:
            rows.append({"rank": None, "model": entry.model, "error": entry.error, "fit_seconds": entry.fit_seconds})
            continue
        row: dict[str, Any] = {"rank": rank, "model": entry.model, metric: entry.scores.get(metric)}
        if entry.std:
            row[f"{metric}_std"] = entry.std.get(metric)
        row |= {"fit_seconds": entry.fit_seconds, "scored_on": "cross_validation" if entry.cv else "validation",
                "params": entry.params}  # fmt: skip
        row |= {k: v for k, v in entry.scores.items() if k != metric}
        rows.append(row)
    return rows


def _keep_leader_only(entries: list[Entry], setup: Setup) -> None:
    """Drop the fitted models of all but the current leader, so memory holds one model at a time."""
    leader = ranked(entries, setup.metric, setup.greater)[0]
    for entry in entries:
        if entry is not leader:
            entry.fitted = None


def _add_ensemble(setup: Setup, entries: list[Entry], settings: CompareConfig, skipped: list[dict[str, str]],
                  budget: Budget, *, quiet: bool) -> None:  # fmt: skip
    """Rank an ensemble of the k best classical candidates beside them (voting is soft for classifiers)."""
    k, kind = settings.ensemble_top_k or 0, settings.ensemble
    good = [e for e in ranked(entries, setup.metric, setup.greater) if not e.error and e.model in _members_ok()]
    top = good[:k]
    if len(top) < 2:
        skipped.append({"model": kind, "reason": f"needs 2 classical candidates that succeeded, got {len(top)}"})
        return
    if budget.spent():
        skipped.append({"model": kind, "reason": budget.reason()})
        return
    params = {"models": [e.model for e in top], "member_params": {e.model: e.params for e in top}}
    entries.append(score_candidate(setup, kind, params))
    _keep_leader_only(entries, setup)
    if not quiet:
        _print_entry(entries[-1], setup.metric)


def _members_ok() -> set[str]:
    """Registry names an ensemble may take as members: classical single models."""
    return {s.name for s in list_models() if s.family == "classical" and s.name not in ENSEMBLES}


def _save_best(setup: Setup, entries: list[Entry], skipped: list[dict[str, str]], *, stage: Stage,
               started: float) -> Run:  # fmt: skip
    """Test the leader once and save the run with the leaderboard beside the usual metrics."""
    best = ranked(entries, setup.metric, setup.greater)[0]
    if best.error or setup.metric not in best.scores:
        errors = "; ".join(f"{e.model}: {e.error or 'no ' + setup.metric}" for e in entries)
        raise UserError(f"no candidate could be ranked on {setup.metric}: {errors}")
    cfg, prep, splits = with_model(setup.cfg, best.model, best.params), setup.prep, setup.splits
    fitted = best.fitted or pipeline.fit_candidate(cfg, setup.ds, prep, splits.train, splits.validation)
    metrics, outputs = pipeline.evaluate_splits(fitted, prep, splits)
    if best.cv:
        metrics["cross_validation"] = best.cv
    metrics["leaderboard"] = leaderboard(entries, setup.metric, setup.greater)
    scored_on = "cross_validation" if best.cv else "validation"
    metrics["comparison"] = {"metric": setup.metric, "greater_is_better": setup.greater, "kept": best.model,
                             "scored_on": scored_on, "skipped": skipped}  # fmt: skip
    return save_run(cfg, setup.ds, prep, splits, fitted, metrics, outputs, stage=stage,
                               started=started)  # fmt: skip


def _print_entry(entry: Entry, metric: str) -> None:
    if entry.error:
        console.print(f"  {entry.model:<20} failed: {entry.error}", markup=False, highlight=False)
        return
    std = f" ± {entry.std[metric]:.4f}" if metric in entry.std else ""
    console.print(f"  {entry.model:<20} {metric} {entry.scores.get(metric, math.nan):.4f}{std}"
                  f"  ({entry.fit_seconds:.1f} s)", markup=False, highlight=False)  # fmt: skip


# ---------------------------------------------------------------- command line


def leaderboard_table(rows: list[dict[str, Any]], metric: str) -> Table:
    """The leaderboard as a Rich table: rank, model, the ranking metric (± std), fit time."""
    table = Table("rank", "model", metric, "fit s", title=f"leaderboard (ranked on {metric})")
    for row in rows:
        if row.get("error"):
            table.add_row("-", row["model"], f"failed: {row['error'][:60]}", f"{row['fit_seconds']:.1f}")
            continue
        std = f" ± {row[f'{metric}_std']:.4f}" if f"{metric}_std" in row else ""
        table.add_row(str(row["rank"]), row["model"], f"{row[metric]:.4f}{std}", f"{row['fit_seconds']:.1f}")
    return table
