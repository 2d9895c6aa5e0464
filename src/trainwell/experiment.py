"""One supervised experiment, top to bottom: load → prepare → split → fit → validate → test once → save.

Reading `train` from top to bottom is reading the process the seeds describe; each step is one call
into the module that owns it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwell.config import ExperimentConfig, Task, deep_merge, dump_config, load_config
from trainwell.data.audit import Finding, audit_summary, check_fail, run_audit
from trainwell.data.prepare import build_preparer, save_preparer
from trainwell.data.schema import infer_schema, infer_task
from trainwell.data.sources import Dataset, load_dataset
from trainwell.data.split import Splits, split_rows
from trainwell.errors import UserError, did_you_mean
from trainwell.evaluate.analysis import BACKGROUND, analyse, save_background
from trainwell.evaluate.metrics import compute_metrics
from trainwell.models.registry import BuildContext, Model, auto_model_name, create_model, parse_params
from trainwell.report.html import write_report
from trainwell.run import Run, decode, write_predictions
from trainwell.track.files import write_json, write_text
from trainwell.track.guarantees import check_guarantees
from trainwell.track.rundir import default_run_dir, library_versions, staged_run_dir


@dataclass
class Prepared:
    """The dataset after target encoding, schema inference and de-duplication."""

    frame: pd.DataFrame
    target: str
    task: Task
    schema: dict[str, str]
    classes: list[Any]
    y: np.ndarray  # class indices or float targets, aligned with frame rows
    info: dict[str, Any]
    sensitive: list[str] = field(default_factory=list)  # fairness groups; features only if the config says so
    audit: dict[str, Any] = field(default_factory=dict)  # audit_summary of the findings before training
    test_evaluations: int = 0  # counted by evaluate_splits; the guarantees check that it is exactly one

    def features(self, keep_sensitive: bool = False) -> list[str]:
        """Input columns of the model: the schema's columns without ids (and without sensitive ones)."""
        drop = set() if keep_sensitive else set(self.sensitive)
        return [c for c, t in self.schema.items() if t != "id" and c not in drop]


@dataclass
class Fitted:
    """A model and its preparation pipeline, both fitted on the training rows only."""

    name: str
    params: dict[str, Any]
    model: Model
    preparer: Any
    features: list[str]  # input columns the preparer reads

    def transform(self, prep: Prepared, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.preparer.transform(prep.frame.iloc[rows][self.features]), np.float32)

    def outputs(self, prep: Prepared, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, probabilities or None) for `rows`; a per-group mitigation also reads their groups."""
        X = self.transform(prep, rows)
        if getattr(self.model, "needs_sensitive", False):
            groups = prep.frame.iloc[rows][prep.sensitive]
            return self.model.predict(X, groups), self.model.predict_proba(X, groups)  # type: ignore[call-arg]
        return self.model.predict(X), self.model.predict_proba(X)

    def score(self, prep: Prepared, rows: np.ndarray) -> dict[str, Any]:
        """Every metric on `rows`."""
        return compute_metrics(prep.task, prep.y[rows], *self.outputs(prep, rows), n_classes=len(prep.classes))


def train(
    config: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    *,
    data: pd.DataFrame | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    quiet: bool = False,
    **overrides: Any,
) -> Run:
    """Train, validate, test once and save a run; returns the loaded Run.

    `overrides` are dotted keys (`**{"train.lr": 0.1}`), whole sections (`train={"lr": 0.1}`) or
    `model="mlp"`; `data` is either a DataFrame used instead of `data.source`, or a `data` section override.
    """
    cfg, frame = resolve(config, data, overrides)
    started = time.time()
    ds, prep, splits = load_and_split(cfg, frame)
    fitted = fit_candidate(cfg, ds, prep, splits.train, splits.validation, quiet=quiet)
    # The test split is evaluated here, once, after training and model selection.
    metrics, outputs = evaluate_splits(fitted, prep, splits)
    from trainwell.tune.cv import cv_section  # tune.cv builds on this module

    metrics |= cv_section(cfg, ds, prep, splits, quiet=quiet)
    return save_run(cfg, ds, prep, splits, fitted, metrics, outputs, run_dir=run_dir, started=started)


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
    splits = split_rows(prep.frame, cfg.split, task=prep.task, target=prep.target, seed=cfg.seed)
    settings = cfg.audit
    if ds.image_shape:  # per-pixel constant/outlier/shift findings would bury what matters
        settings = settings.model_copy(update={"skip": sorted({*settings.skip, "constant", "outliers", "shift"})})
    findings = run_audit(
        prep.frame, target=prep.target, task=prep.task, schema=prep.schema, config=settings, seed=cfg.seed,
        splits={"train": splits.train, "validation": splits.validation, "test": splits.test},
        time_column=cfg.split.time_column,
    )  # fmt: skip
    removed = prep.info["duplicates_removed"]
    if removed and "duplicates" not in settings.skip:  # dropped before the audit could see them
        findings.append(Finding("duplicates", "info", None, f"{removed} rows repeated an earlier row exactly and "
                                "were removed before splitting (prepare.drop_duplicates)",
                                {"duplicates": removed, "share": round(removed / prep.info["rows"], 4)},
                                "nothing to do; check why the source holds repeated rows"))  # fmt: skip
    prep.audit = audit_summary(findings)
    check_fail(findings, settings.fail_on)
    return ds, prep, splits


def load_data(cfg: ExperimentConfig, frame: pd.DataFrame | None = None) -> tuple[Dataset, Prepared]:
    """Load the source, check and encode the target, infer the schema, drop duplicates."""
    if cfg.model.name != "auto":  # fail on a bad model parameter before loading any data
        parse_params(cfg.model.name, cfg.model.params)
    ds = _load(cfg, frame)
    prep = prepare_target(ds, cfg)
    for column in cfg.fairness.sensitive:
        if column not in prep.frame.columns:
            raise UserError(f'fairness.sensitive: column "{column}" is not in {ds.name}'
                            f"{did_you_mean(column, prep.frame.columns)}")  # fmt: skip
    prep.sensitive = list(cfg.fairness.sensitive)
    return ds, prep


def fit_candidate(cfg: ExperimentConfig, ds: Dataset, prep: Prepared, train_rows: np.ndarray,
                  val_rows: np.ndarray, *, quiet: bool = True, callbacks: tuple[Any, ...] = ()) -> Fitted:  # fmt: skip
    """Fit the preparation on `train_rows`, then the configured model; validation rows drive early stopping.

    Tuning and cross-validation call this once per trial or fold; `callbacks` reach the neural loop
    (e.g. a pruning callback).
    """
    features = prep.features(cfg.fairness.keep_in_features)
    preparer = build_preparer({c: prep.schema[c] for c in features}, cfg.prepare)
    X = np.asarray(preparer.fit_transform(prep.frame.iloc[train_rows][features]), np.float32)
    name = cfg.model.name if cfg.model.name != "auto" else auto_model_name(prep.task, len(X), ds.image_shape)
    params = parse_params(name, cfg.model.params).model_dump(mode="json")
    ctx = BuildContext(
        task=prep.task, n_features=X.shape[1], n_classes=len(prep.classes), seed=cfg.seed,
        train=cfg.train, image_shape=ds.image_shape, quiet=quiet,
    )  # fmt: skip
    model = create_model(name, params, ctx)
    if callbacks:
        model.callbacks = list(callbacks)  # type: ignore[attr-defined]
    fitted = Fitted(name, params, model, preparer, features)
    weights = None
    if cfg.fairness.sensitive and cfg.fairness.mitigation == "reweighing":
        from trainwell.evaluate.fairness import reweighing_weights

        weights = reweighing_weights(prep.y[train_rows], prep.frame.iloc[train_rows][prep.sensitive])
    val = (fitted.transform(prep, val_rows), prep.y[val_rows]) if len(val_rows) else (None, None)
    model.fit(X, prep.y[train_rows], *val, sample_weight=weights)
    if cfg.fairness.sensitive and cfg.fairness.mitigation in ("exponentiated_gradient", "threshold_optimizer"):
        from trainwell.models.fair import FairModel

        def groups(rows: np.ndarray) -> pd.DataFrame:
            return prep.frame.iloc[rows][prep.sensitive]

        held_out = (val[0], val[1], groups(val_rows)) if len(val_rows) else None
        fitted.model = FairModel.mitigate(model, cfg.fairness, (X, prep.y[train_rows], groups(train_rows)), held_out,
                                          cfg.seed)  # fmt: skip
    return fitted


Outputs = dict[str, tuple[np.ndarray, np.ndarray | None]]


def evaluate_splits(fitted: Fitted, prep: Prepared, splits: Splits) -> tuple[dict[str, Any], Outputs]:
    """Metrics and (prediction, probability) outputs for every non-empty split."""
    metrics: dict[str, Any] = {}
    outputs: Outputs = {}
    for split in ("train", "validation", "test"):
        rows = getattr(splits, split)
        if len(rows):
            prep.test_evaluations += split == "test"
            outputs[split] = fitted.outputs(prep, rows)
            metrics[split] = compute_metrics(prep.task, prep.y[rows], *outputs[split], n_classes=len(prep.classes))
    return metrics, outputs


def save_run(
    cfg: ExperimentConfig, ds: Dataset, prep: Prepared, splits: Splits, fitted: Fitted, metrics: dict[str, Any],
    outputs: Outputs, *, run_dir: str | Path | None, started: float,
) -> Run:  # fmt: skip
    """Write the run in a staging folder and rename it into place once complete."""
    resolved = cfg.model_copy(deep=True)
    resolved.model = type(cfg.model).model_validate({"name": fitted.name, **fitted.params})
    final_dir = Path(run_dir) if run_dir else default_run_dir(cfg.name)
    metrics = metrics | analyse(cfg, ds, prep, splits, fitted, outputs, metrics)
    with staged_run_dir(final_dir) as stage:
        fitted.model.save(stage / "model")
        save_background(fitted, prep, splits, stage / "model" / BACKGROUND, seed=cfg.seed)
        save_preparer(fitted.preparer, stage / "model" / "preparer.skops")
        write_text(stage / "config.yaml", dump_config(resolved))
        write_json(stage / "metrics.json", metrics)
        if fitted.model.history:
            write_text(stage / "history.csv", pd.DataFrame(fitted.model.history).to_csv(index=False))
        write_predictions(stage / "predictions.csv", splits, outputs, prep)
        info = _run_info(cfg, fitted, ds, prep, splits, started)
        info["guarantees"] = check_guarantees(cfg, prep, splits, fitted, info)
        write_json(stage / "run.json", info)  # status "complete": everything above is there
        write_report(stage)  # from the files just written, exactly as `trainwell report` rebuilds it
    return Run.load(final_dir)


def nest(overrides: dict[str, Any]) -> dict[str, Any]:
    """{'train.lr': 1, 'model': 'mlp', 'split': {...}} → a nested override dict."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key == "model" and isinstance(value, str):
            value = {"name": value}
        for part in reversed(key.split(".")):
            value = {part: value}
        out = deep_merge(out, value)
    return out


def _load(cfg: ExperimentConfig, frame: pd.DataFrame | None) -> Dataset:
    if frame is not None:
        return load_dataset(frame, cfg.data.target)
    if not cfg.data.source:
        raise UserError("no data: set data.source to a CSV/Parquet/.npz path or builtin:NAME")
    return load_dataset(cfg.data.source, cfg.data.target)


def prepare_target(ds: Dataset, cfg: ExperimentConfig) -> Prepared:
    """Check and encode the target, infer the schema and drop duplicate rows."""
    frame, target = ds.frame, cfg.data.target or ds.target
    if target is None:
        raise UserError(f"{ds.name}: no target column given; set data.target (or --target) to one of: "
                        + ", ".join(map(str, frame.columns[:20])))  # fmt: skip
    if target not in frame.columns:
        raise UserError(f'{ds.name}: target column "{target}" not found{did_you_mean(target, frame.columns)}')
    missing_target = int(frame[target].isna().sum())
    frame = frame[frame[target].notna()]
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


def encode_target(series: pd.Series, task: Task, target: str, source: str) -> tuple[np.ndarray, list[Any]]:
    """Classification → (class indices, sorted classes); regression → (float values, [])."""
    if task == "regression":
        values = pd.to_numeric(series, errors="coerce")
        bad = series[values.isna()]
        if len(bad):
            raise UserError(f'{source}: target "{target}" is not numeric (e.g. {bad.iloc[0]!r}); '
                            "for labels set data.task: classification")  # fmt: skip
        return values.to_numpy(np.float64), []
    classes = sorted(series.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise UserError(f'{source}: target "{target}" has a single class {classes[0]!r}; '
                        "classification needs at least two classes")  # fmt: skip
    index = {c: i for i, c in enumerate(classes)}
    return series.map(index).to_numpy(np.int64), [decode(c) for c in classes]


def _run_info(cfg: ExperimentConfig, fitted: Fitted, ds: Dataset, prep: Prepared, splits: Splits,
              started: float) -> dict[str, Any]:  # fmt: skip
    """run.json: what was trained on what, with which versions; `status` says the run is whole."""
    return {
        "status": "complete",
        "name": cfg.name,
        "task": prep.task,
        "target": prep.target,
        "model": fitted.name,
        "classes": prep.classes,
        "schema": prep.schema,
        "input_columns": fitted.features,
        "sensitive": prep.sensitive,
        "features": [str(f) for f in fitted.preparer.get_feature_names_out()],
        "image_shape": list(ds.image_shape) if ds.image_shape else None,
        "data": prep.info,
        "splits": splits.summary(prep.frame),
        "seed": cfg.seed,
        "test_evaluations": 1,
        "versions": library_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "duration_s": round(time.time() - started, 3),
    }


def reproduce(run_dir: str | Path, *, quiet: bool = True) -> dict[str, Any]:
    """Train the run's resolved config again (in a temporary folder) and compare every metric exactly.

    Returns {"match", "data_match", "compared", "differences": [{"metric", "original", "again"}]}.
    """
    import tempfile

    original = Run.load(run_dir)
    if not original.config.data.source:
        raise UserError(f"{run_dir} was trained on an in-memory DataFrame (no data.source); "
                        "reproduce needs a file or builtin source")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="trainwell-reproduce-") as tmp:
        again = train(original.dir / "config.yaml", run_dir=Path(tmp) / "run", quiet=quiet)
        again_fingerprint = again.info["data"]["fingerprint"]
        again_metrics = again.metrics
    differences, compared = [], 0
    for split in ("train", "validation", "test"):
        before, after = original.metrics.get(split, {}), again_metrics.get(split, {})
        for name in sorted(set(before) | set(after)):
            compared += 1
            if before.get(name) != after.get(name):
                differences.append({"metric": f"{split}.{name}", "original": before.get(name),
                                    "again": after.get(name)})  # fmt: skip
    data_match = again_fingerprint == original.info["data"]["fingerprint"]
    return {"match": not differences and data_match, "data_match": data_match, "compared": compared,
            "differences": differences}  # fmt: skip
