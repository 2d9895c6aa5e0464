"""One supervised experiment, top to bottom: load → prepare → split → fit → validate → test once → save.

Reading `train` from top to bottom is reading the process the seeds describe; each step is one call
into the module that owns it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwell.artifacts import build_manifest
from trainwell.config import ExperimentConfig, Task, deep_merge, dump_config, load_config
from trainwell.data.audit import Finding, audit_summary, check_fail, run_audit
from trainwell.data.prepare import build_preparer, save_preparer
from trainwell.data.schema import infer_schema, infer_task
from trainwell.data.sources import Dataset, load_dataset
from trainwell.data.split import Splits, split_rows
from trainwell.data.target import check_split_classes, encode_target, labelled_rows
from trainwell.errors import RunInterrupted, UserError, did_you_mean
from trainwell.evaluate.analysis import BACKGROUND, analyse, save_background
from trainwell.evaluate.metrics import compute_metrics
from trainwell.models.registry import BuildContext, Model, auto_model_name, create_model, parse_params
from trainwell.report.html import write_report
from trainwell.run import RUN_FORMAT, UNSEALED, Run, write_predictions
from trainwell.track.files import write_json, write_text
from trainwell.track.guarantees import check_guarantees
from trainwell.track.rundir import Stage, claim, default_run_dir, library_versions


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
    resume: str | Path | None = None,
    **overrides: Any,
) -> Run:
    """Train, validate, test once and save a run; returns the loaded Run.

    `overrides` are dotted keys (`**{"train.lr": 0.1}`), whole sections (`train={"lr": 0.1}`) or
    `model="mlp"`; `data` is either a DataFrame used instead of `data.source`, or a `data` section override.
    `resume` is the run folder of an interrupted run: its config and checkpoint are picked up where it stopped
    (pass the same DataFrame again if it was trained on one).
    """
    if resume is not None:
        if config is not None or overrides or run_dir is not None:
            raise UserError("--resume continues a run with the config it started with; give no config, "
                            "--run-dir or overrides with it")  # fmt: skip
        stage = claim(resume, resume=True)
        cfg, frame = _resumed_config(stage), data if isinstance(data, pd.DataFrame) else None
    else:
        cfg, frame = resolve(config, data, overrides)
        stage = claim(run_dir or default_run_dir(cfg.name))
        write_text(stage.path / "config.yaml", dump_config(cfg))  # what --resume starts from
    with staged(stage):
        started = time.time()
        ds, prep, splits = load_and_split(cfg, frame)
        _check_same_data(stage, prep)
        fitted = fit_candidate(cfg, ds, prep, splits.train, splits.validation, quiet=quiet, stage=stage)
        # The test split is evaluated here, once, after training and model selection.
        metrics, outputs = evaluate_splits(fitted, prep, splits)
        from trainwell.tune.cv import cv_section  # tune.cv builds on this module

        metrics |= cv_section(cfg, ds, prep, splits, quiet=quiet)
        return save_run(cfg, ds, prep, splits, fitted, metrics, outputs, stage=stage, started=started)


@contextmanager
def staged(stage: Stage) -> Iterator[Stage]:
    """Work inside a claimed run folder; a failure keeps it only if it holds a checkpoint to resume from.

    Ctrl-C (and SIGTERM, which the CLI turns into Ctrl-C) becomes `RunInterrupted`, saying how to resume.
    """
    try:
        yield stage
    except KeyboardInterrupt:
        kept = stage.abandon()
        raise RunInterrupted(str(stage.final), kept) from None
    except BaseException:
        stage.abandon()
        raise


def _resumed_config(stage: Stage) -> ExperimentConfig:
    path = stage.path / "config.yaml"
    if not path.is_file():
        stage.abandon()
        raise UserError(f"{stage.path} holds no config.yaml: the run stopped before it started; start it again")
    return load_config(path)


def _check_same_data(stage: Stage, prep: Prepared) -> None:
    """Record the data's fingerprint at the start; a resumed run must see the very same data."""
    path = stage.path / "data.json"
    fingerprint = prep.info["fingerprint"]
    if stage.resumed and path.is_file():
        before = json.loads(path.read_text()).get("fingerprint")
        if before != fingerprint:
            raise UserError(f"the data of {stage.final} changed since the run started (fingerprint "
                            f"{str(before)[:12]} → {fingerprint[:12]}); resuming needs the same data")  # fmt: skip
    else:
        write_json(path, {"fingerprint": fingerprint})


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
    for warning in check_split_classes(prep.y, splits, prep.classes, ds.name):  # no class missing from train
        findings.append(Finding("imbalance", "warning", prep.target, warning, {},
                                "gather more rows of that class, or merge it with a similar one"))  # fmt: skip
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
                  val_rows: np.ndarray, *, quiet: bool = True, callbacks: tuple[Any, ...] = (),
                  stage: Stage | None = None) -> Fitted:  # fmt: skip
    """Fit the preparation on `train_rows`, then the configured model; validation rows drive early stopping.

    Tuning and cross-validation call this once per trial or fold; `callbacks` reach the neural loop
    (e.g. a pruning callback). With a `stage`, neural training checkpoints into it (and resumes from it).
    """
    features = prep.features(cfg.fairness.keep_in_features)
    preparer = build_preparer({c: prep.schema[c] for c in features}, cfg.prepare)
    X = np.asarray(preparer.fit_transform(prep.frame.iloc[train_rows][features]), np.float32)
    name = cfg.model.name if cfg.model.name != "auto" else auto_model_name(prep.task, len(X), ds.image_shape)
    params = parse_params(name, cfg.model.params).model_dump(mode="json")
    ctx = BuildContext(
        task=prep.task, n_features=X.shape[1], n_classes=len(prep.classes), seed=cfg.seed,
        train=cfg.train, image_shape=ds.image_shape, quiet=quiet,
        checkpoint_dir=stage.checkpoints if stage else None, resume=bool(stage and stage.resumed),
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
    outputs: Outputs, *, stage: Stage, started: float, extra: dict[str, str] | None = None,
) -> Run:  # fmt: skip
    """Write the run into its staging folder, seal it with a manifest and rename it into place.

    `extra` maps file names to text written beside the others (e.g. trials.csv). run.json says
    `complete` only once every file is written; its manifest holds each file's SHA-256, checked on load.
    """
    resolved = cfg.model_copy(deep=True)
    resolved.model = type(cfg.model).model_validate({"name": fitted.name, **fitted.params})
    metrics = metrics | analyse(cfg, ds, prep, splits, fitted, outputs, metrics)
    path = stage.path
    fitted.model.save(path / "model")
    save_background(fitted, prep, splits, path / "model" / BACKGROUND, seed=cfg.seed)
    save_preparer(fitted.preparer, path / "model" / "preparer.skops")
    write_text(path / "config.yaml", dump_config(resolved))
    write_json(path / "metrics.json", metrics)
    if fitted.model.history:
        write_text(path / "history.csv", pd.DataFrame(fitted.model.history).to_csv(index=False))
    write_predictions(path / "predictions.csv", splits, outputs, prep)
    for name, text in (extra or {}).items():
        write_text(path / name, text)
    (path / "data.json").unlink(missing_ok=True)
    shutil.rmtree(stage.checkpoints, ignore_errors=True)  # the saved model replaces them; a resume would retrain
    info = _run_info(cfg, fitted, ds, prep, splits, started)
    info["guarantees"] = check_guarantees(cfg, prep, splits, fitted, info)
    write_json(path / "run.json", info | {"status": "saving"})
    write_report(path)  # from the files just written, exactly as `trainwell report` rebuilds it
    manifest = build_manifest(path, exclude=UNSEALED)
    write_json(path / "run.json", info | {"format": RUN_FORMAT, "manifest": manifest})  # last: now it is whole
    return Run.load(stage.finish())


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
        "test_evaluations": prep.test_evaluations,
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
