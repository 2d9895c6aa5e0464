"""The stages every run goes through, shared by `train`, `tune` and `compare`: resolve the config, load, split
and audit the data, fit a candidate on the training rows, predict each split.

Each stage takes and returns the run's state (`Dataset`, `Prepared`, `Splits`, `Fitted`); none imports the
commands that orchestrate them (experiment.py, tune/), so the layers run one way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwell.config import UNSUPERVISED_TASKS, ExperimentConfig, load_config, set_dotted
from trainwell.data.audit import Finding, audit_summary, check_fail, run_audit
from trainwell.data.prepare import build_preparer
from trainwell.data.prepared import Prepared, prepare
from trainwell.data.sources import Dataset, load_dataset
from trainwell.data.split import Splits, split_rows
from trainwell.data.target import check_split_classes
from trainwell.errors import UserError, did_you_mean
from trainwell.evaluate.metrics import split_metrics
from trainwell.evaluate.unsupervised import sweep
from trainwell.models.fitted import Fitted, Outputs
from trainwell.models.registry import BuildContext, auto_model_name, create_model, parse_params
from trainwell.models.unsupervised import (
    DEFAULT_MODEL,
    UnsupervisedModel,
    check_size,
    get_unsupervised,
    list_unsupervised,
    parse_unsupervised_params,
)
from trainwell.training.checkpoint import Checkpointing

SWEEP_MAX = 12  # n_clusters: auto tries 2..SWEEP_MAX clusters


def resolve(config: str | Path | dict[str, Any] | ExperimentConfig | None, data: pd.DataFrame | dict[str, Any] | None,
            overrides: dict[str, Any]) -> tuple[ExperimentConfig, pd.DataFrame | None]:  # fmt: skip
    """The validated config (file or dict, plus overrides) and the DataFrame passed in place of data.source."""
    frame = data if isinstance(data, pd.DataFrame) else None
    if isinstance(data, dict):
        overrides = {**overrides, "data": data}
    return load_config(config if config is not None else {}, nest(overrides)), frame


def load_and_split(cfg: ExperimentConfig, frame: pd.DataFrame | None = None) -> tuple[Dataset, Prepared, Splits]:
    """Load, split, then audit the data; `audit.fail_on` findings stop here, before any training."""
    ds, prep = load_data(cfg, frame)
    splits = split_rows(prep.frame, cfg.split, task=prep.task, target=prep.target, seed=cfg.seed)  # type: ignore[arg-type]
    prep.test_rows = splits.test
    settings = cfg.audit
    if ds.image_shape:  # per-pixel constant/outlier/shift findings would bury what matters
        settings = settings.model_copy(update={"skip": sorted({*settings.skip, "constant", "outliers", "shift"})})
    findings = run_audit(
        # an unsupervised label column only scores the result: the target checks do not apply to it
        prep.frame, target=prep.target if prep.supervised else None, task=prep.task if prep.supervised else None,  # type: ignore[arg-type]
        schema=prep.schema, config=settings, seed=cfg.seed,
        splits={"train": splits.train, "validation": splits.validation, "test": splits.test},
        time_column=cfg.split.time_column,
    )  # fmt: skip
    removed = prep.info["duplicates_removed"]
    if removed and "duplicates" not in settings.skip:  # dropped before the audit could see them
        findings.append(Finding("duplicates", "info", None, f"{removed} rows repeated an earlier row exactly and "
                                "were removed before splitting (prepare.drop_duplicates)",
                                {"duplicates": removed, "share": round(removed / prep.info["rows"], 4)},
                                "nothing to do; check why the source holds repeated rows"))  # fmt: skip
    for warning in check_split_classes(prep.y, splits, prep.classes, ds.name):  # no class missing from train
        findings.append(Finding("imbalance", "warning", prep.target, warning, {},
                                "gather more rows of that class, or merge it with a similar one"))  # fmt: skip
    prep.audit = audit_summary(findings)
    check_fail(findings, settings.fail_on)
    return ds, prep, splits


def load_data(cfg: ExperimentConfig, frame: pd.DataFrame | None = None) -> tuple[Dataset, Prepared]:
    """Load the source, check and encode the target, infer the schema, drop duplicates."""
    if cfg.data.task in UNSUPERVISED_TASKS:  # fail on a bad model or parameter before loading any data
        unsupervised_params(cfg)
        if cfg.fairness.sensitive:
            raise UserError(f"fairness.sensitive needs a supervised task; {cfg.data.task} has no predictions to "
                            "compare across groups")  # fmt: skip
    elif cfg.model.name != "auto":
        parse_params(cfg.model.name, cfg.model.params)
    ds = _load(cfg, frame)
    prep = prepare(ds, cfg)
    for column in cfg.fairness.sensitive:
        if column not in prep.frame.columns:
            raise UserError(f'fairness.sensitive: column "{column}" is not in {ds.name}'
                            f"{did_you_mean(column, prep.frame.columns)}")  # fmt: skip
    prep.sensitive = list(cfg.fairness.sensitive)
    return ds, prep


def fit_candidate(cfg: ExperimentConfig, ds: Dataset, prep: Prepared, train_rows: np.ndarray,
                  val_rows: np.ndarray, *, quiet: bool = True, callbacks: tuple[Any, ...] = (),
                  checkpoints: Checkpointing | None = None) -> Fitted:  # fmt: skip
    """Fit the preparation on `train_rows`, then the configured model; validation rows drive early stopping.

    Tuning and cross-validation call this once per trial or fold; `callbacks` reach the neural loop
    (e.g. a pruning callback); with `checkpoints`, neural training checkpoints there (and resumes from it).
    """
    features = prep.features(cfg.fairness.keep_in_features)
    preparer = build_preparer({c: prep.schema[c] for c in features}, cfg.prepare)
    X = np.asarray(preparer.fit_transform(prep.frame.iloc[train_rows][features]), np.float32)
    if not prep.supervised:
        return _fit_unsupervised(cfg, X, Fitted("", {}, None, preparer, features, np.asarray(train_rows)))  # type: ignore[arg-type]
    name = cfg.model.name if cfg.model.name != "auto" else auto_model_name(prep.task, len(X), ds.image_shape)
    params = parse_params(name, cfg.model.params).model_dump(mode="json")
    ctx = BuildContext(
        task=prep.task, n_features=X.shape[1], n_classes=len(prep.classes), seed=cfg.seed,
        train=cfg.train, image_shape=ds.image_shape, quiet=quiet,
        checkpoint_dir=checkpoints.directory if checkpoints else None, resume=bool(checkpoints and checkpoints.resume),
    )  # fmt: skip
    model = create_model(name, params, ctx)
    weights, groups = None, {}
    fairness = cfg.fairness
    if fairness.sensitive and fairness.mitigation == "reweighing":
        from trainwell.models.mitigation import reweighing_weights

        weights = reweighing_weights(prep.y[train_rows], prep.frame.iloc[train_rows][prep.sensitive])
    if fairness.sensitive and fairness.mitigation in ("exponentiated_gradient", "threshold_optimizer"):
        from trainwell.models.fair import FairModel

        model = FairModel(model, fairness.mitigation, fairness.constraint, fairness.difference_bound, cfg.seed)
        groups = {"sensitive_features": prep.frame.iloc[train_rows][prep.sensitive],
                  "sensitive_val": prep.frame.iloc[val_rows][prep.sensitive]}  # fmt: skip
    fitted = Fitted(name, params, model, preparer, features, np.asarray(train_rows))
    val = (fitted.transform(prep, val_rows), prep.y[val_rows]) if len(val_rows) else (None, None)
    model.fit(X, prep.y[train_rows], *val, sample_weight=weights, callbacks=callbacks, **groups)
    return fitted


def _fit_unsupervised(cfg: ExperimentConfig, X: np.ndarray, fitted: Fitted) -> Fitted:
    """Fit an unsupervised model on the training rows; `auto` sizes are chosen first by a sweep on them."""
    name, params, size = unsupervised_params(cfg)
    if size is not None:
        values = list(range(2, SWEEP_MAX + 1)) if size == "n_clusters" else list(range(1, X.shape[1] + 1))
        found = sweep(name, params, X, values, seed=cfg.seed)
        params[size] = found.chosen
        fitted.notes["sweep"] = found.to_dict()
    check_size(name, params, *X.shape)
    fitted.name, fitted.params = name, parse_unsupervised_params(name, params).model_dump(mode="json")
    fitted.model = UnsupervisedModel(name, fitted.params, cfg.seed).fit(X)
    return fitted


def unsupervised_params(cfg: ExperimentConfig) -> tuple[str, dict[str, Any], str | None]:
    """(model name, parameters, the size parameter set to auto or None), checked against the registry."""
    name = DEFAULT_MODEL[cfg.data.task] if cfg.model.name == "auto" else cfg.model.name
    spec = get_unsupervised(name)
    if spec.task != cfg.data.task:
        raise UserError(f'model "{name}" does {spec.task}, not {cfg.data.task}; models that do: '
                        + ", ".join(s.name for s in list_unsupervised(cfg.data.task)))  # fmt: skip
    params = dict(cfg.model.params)
    size = None
    if spec.size_param and params.get(spec.size_param) == "auto":
        size = spec.size_param
        del params[size]
    elif "auto" in params.values():
        key = next(k for k, v in params.items() if v == "auto")
        sized = spec.size_param or "a number of clusters or components"
        raise UserError(f"model.{key}: auto is not available for {name}; only {sized} can be chosen by a sweep")
    parse_unsupervised_params(name, params)
    return name, params, size


def evaluate_splits(fitted: Fitted, prep: Prepared, splits: Splits) -> tuple[dict[str, Any], Outputs]:
    """Metrics and (prediction, probability) outputs for every non-empty split."""
    metrics: dict[str, Any] = {}
    outputs: Outputs = {}
    for split in ("train", "validation", "test"):
        rows = getattr(splits, split)
        if len(rows):
            outputs[split] = fitted.outputs(prep, rows)
            metrics[split] = split_metrics(fitted, prep, rows, outputs[split])
            skipped = metrics[split].pop("skipped", None)
            if skipped:  # why an unsupervised metric is null
                metrics.setdefault("skipped", {})[split] = skipped
    return metrics, outputs


def nest(overrides: dict[str, Any]) -> dict[str, Any]:
    """{'train.lr': 1, 'model': 'mlp', 'split': {...}} → a nested override dict."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        set_dotted(out, key, {"name": value} if key == "model" and isinstance(value, str) else value)
    return out


def _load(cfg: ExperimentConfig, frame: pd.DataFrame | None) -> Dataset:
    if frame is not None:
        return load_dataset(frame, cfg.data.target)
    if not cfg.data.source:
        raise UserError("no data: set data.source to a CSV/Parquet/.npz path or builtin:NAME")
    return load_dataset(cfg.data.source, cfg.data.target)
