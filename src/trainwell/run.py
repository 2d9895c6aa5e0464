"""A run on disk: written once and sealed (`save_run`), then read back to predict, evaluate and explain
exactly what was trained."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwell.artifacts import build_manifest, verify_manifest
from trainwell.config import UNSUPERVISED_TASKS, ExperimentConfig, dump_config, load_config
from trainwell.data.prepare import feature_names, load_preparer, save_preparer
from trainwell.data.prepared import Prepared
from trainwell.data.sources import Dataset, read_table
from trainwell.data.split import Splits
from trainwell.errors import RunInterrupted, UserError
from trainwell.evaluate.analysis import BACKGROUND, analyse, save_background
from trainwell.evaluate.metrics import compute_metrics
from trainwell.files import write_json, write_text
from trainwell.models.fitted import Fitted, Outputs
from trainwell.models.registry import Model, load_model, model_tags
from trainwell.report.html import write_report
from trainwell.track.guarantees import check_guarantees
from trainwell.track.rundir import Stage, final_path, is_staging, library_versions
from trainwell.track.versions import FIRST, active_version, load_version_info, version_dir

DRIFT_REFERENCE = "drift_reference.json"  # the training data's profile for `trainwell monitor`
RUN_FORMAT = 1  # run.json `format`: bumped when a saved run changes shape; newer runs are refused
# Files written after the manifest, or never loaded to predict: the report is rebuilt by `trainwell report`,
# the study database moves in once the run is sealed; the lock is removed before the rename.
UNSEALED = ("run.json", "report.html", "study.db", ".lock")


class InputWarning(UserWarning):
    """Rows to predict that the model can take, but not as they are: the user should know."""


def decode(value: Any) -> Any:
    """numpy scalars → plain Python values, so classes survive JSON unchanged."""
    return value.item() if isinstance(value, np.generic) else value


class Run:
    """A complete run directory: its config, metrics, preparation pipeline and model."""

    def __init__(self, directory: Path, config: ExperimentConfig, info: dict[str, Any],
                 metrics: dict[str, Any], model: Model, preparer: Any) -> None:  # fmt: skip
        self.dir, self.config, self.info, self.metrics = directory, config, info, metrics
        self.model, self.preparer = model, preparer
        self.version = FIRST  # which model version answers (see track/versions.py)

    @classmethod
    def load(cls, directory: str | Path) -> Run:
        """Read a complete run, after checking every file against run.json's SHA-256 manifest.

        Raises:
            UserError: not a run, unfinished, from a newer trainwell, or a file changed, missing or damaged.
        """
        directory = Path(directory)
        if is_staging(directory):
            raise UserError(f"{directory} is an unfinished run (training stopped before it was saved); resume it "
                            f"with `trainwell train --resume {final_path(directory)}`")  # fmt: skip
        if not (directory / "run.json").is_file():
            raise UserError(f"{directory} is not a trainwell run (no run.json); pass the folder `train` printed")
        info = read_json(directory / "run.json")
        if info.get("status") != "complete":
            raise UserError(f"{directory} holds an incomplete run (status {info.get('status')!r}); train it again")
        version = info.get("format")
        if not isinstance(version, int) or "manifest" not in info:
            raise UserError(f"{directory} was saved without an integrity manifest (an older trainwell); "
                            "train it again with this version")  # fmt: skip
        if version > RUN_FORMAT:
            raise UserError(f"{directory} was saved by a newer trainwell (run format {version}, this one reads "
                            f"{RUN_FORMAT}); upgrade trainwell to load it")  # fmt: skip
        verify_manifest(directory, info["manifest"])
        config = load_config(directory / "config.yaml")
        metrics = read_json(directory / "metrics.json")
        version = active_version(directory)  # v1, or a later version promoted by `trainwell update`/`promote`
        if version != FIRST:
            load_version_info(directory, version)  # its own manifest, checked like run.json's
        home = version_dir(directory, version) / "model"
        model = load_model(home)
        # an agent acts on observations: no table, no preparation
        preparer = None if info.get("task") == "reinforcement_learning" else load_preparer(home / "preparer.skops")
        run = cls(directory, config, info, metrics, model, preparer)
        run.version = version
        return run

    @property
    def task(self) -> str:
        return str(self.info["task"])

    @property
    def supervised(self) -> bool:
        return self.task not in UNSUPERVISED_TASKS

    @property
    def classes(self) -> list[Any]:
        return list(self.info["classes"])

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch training history (empty for classical models)."""
        path = self.dir / "history.csv"
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()

    def features(self, data: pd.DataFrame | str | Path, source: str | None = None) -> np.ndarray:
        """Apply the saved preparation to new rows; names any column the model needs that is missing."""
        frame, read_from = _frame(data)
        source = source or read_from
        needed = self.info["input_columns"]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            shown = ", ".join(f'"{c}"' for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise UserError(f"{source} is missing column(s) the model needs: {shown}")
        return np.asarray(self.preparer.transform(frame[needed]), dtype=np.float32)

    def check_inputs(self, frame: pd.DataFrame) -> list[str]:
        """What the saved preparation would otherwise absorb silently: unused columns, values that are not
        numbers in numeric columns (made missing, then imputed), categories never seen in training."""
        needed, schema = self.info["input_columns"], self.info["schema"]
        known = {*needed, self.info["target"], *(self.info.get("sensitive") or [])}
        problems = []
        extra = [str(c) for c in frame.columns if c not in known]
        if extra:
            problems.append(f"{len(extra)} column(s) the model does not use are ignored: {_names(extra)}")
        numeric = [c for c in needed if c in frame.columns and schema.get(c) == "numeric"]
        floats = [c for c in numeric if pd.api.types.is_float_dtype(frame[c].dtype)]
        block = frame[floats].to_numpy(np.float64)
        infinite = set(np.asarray(floats, dtype=object)[np.isinf(block).any(axis=0)]) if floats else set()
        for column in numeric:  # integers and booleans are finite; floats only when infinite; text is parsed
            raw = frame[column]
            if pd.api.types.is_numeric_dtype(raw.dtype) and column not in infinite:
                continue
            values = pd.to_numeric(raw, errors="coerce")
            bad = raw[raw.notna() & ~np.isfinite(values.astype(np.float64).to_numpy(na_value=np.nan))]
            if len(bad):
                problems.append(f'column "{column}": {len(bad)} value(s) are not finite numbers (e.g. '
                                f"{bad.iloc[0]!r}); they are treated as missing and imputed")  # fmt: skip
        for column, seen in self.seen_categories().items():
            if column in frame.columns:
                values = frame[column].dropna().astype(str)
                unseen = values[~values.isin(seen)]
                if len(unseen):
                    problems.append(f'column "{column}": {len(unseen)} row(s) hold categories never seen in training '
                                    f"({_names(sorted(set(unseen)))}); they are encoded as unknown")  # fmt: skip
        return problems

    def seen_categories(self) -> dict[str, set[str]]:
        """Categorical column → the categories its fitted encoder knows (empty when there is no such step)."""
        columns = self.preparer.named_steps["columns"]
        if "cat" not in columns.named_transformers_:
            return {}
        names = next(cols for name, _, cols in columns.transformers_ if name == "cat")
        encoder = columns.named_transformers_["cat"].named_steps["encode"]
        return {str(n): {str(c) for c in cats} for n, cats in zip(names, encoder.categories_, strict=True)}

    def outputs(self, data: pd.DataFrame | str | Path,
                source: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
        """(class indices or values, probabilities or None) for new rows, as the model computes them.

        Input problems the preparation absorbs (see `check_inputs`) are reported as `InputWarning`s.
        """
        frame, read_from = _frame(data)
        source = source or read_from
        for problem in self.check_inputs(frame):
            warnings.warn(f"{source}: {problem}", InputWarning, stacklevel=2)
        X = self.features(frame, source)
        if not self.supervised:  # (clusters, None), (anomaly flags, scores) or (components, None)
            return self.model.outputs(X)  # type: ignore[attr-defined]
        if model_tags(self.model).needs_groups:  # a per-group threshold mitigation decides by group
            sensitive = list(self.info.get("sensitive") or [])
            missing = [c for c in sensitive if c not in frame.columns]
            if missing:
                raise UserError(f"{source} is missing the sensitive column(s) {', '.join(missing)}: this model's "
                                "per-group thresholds (fairness.mitigation threshold_optimizer) need them")  # fmt: skip
            groups = frame[sensitive]
            return self.model.predict(X, sensitive_features=groups), self.model.predict_proba(  # type: ignore[call-arg]
                X, sensitive_features=groups)  # fmt: skip
        proba = self.model.predict_proba(X) if self.task == "classification" else None
        return self.model.predict(X), proba

    def predict(self, data: pd.DataFrame | str | Path) -> np.ndarray:
        """Predicted labels (the original class values) or regression values; cluster ids, 1/0 anomaly flags,
        or (N, k) components for unsupervised runs."""
        return self._decode(self.outputs(data)[0])

    def predict_proba(self, data: pd.DataFrame | str | Path) -> pd.DataFrame:
        """Class probabilities as `proba_<class>` columns (classifiers only)."""
        proba = self.outputs(data)[1] if self.task == "classification" else None
        if proba is None:
            raise UserError(f"model {self.info['model']} ({self.task}) gives no class probabilities")
        return pd.DataFrame(proba, columns=[f"proba_{c}" for c in self.classes])

    def predictions(self, data: pd.DataFrame | str | Path) -> pd.DataFrame:
        """A `prediction` column, plus `proba_<class>` columns for classifiers; unsupervised runs give the
        cluster id, or the 1/0 anomaly flag and `anomaly_score`, or `component_1..k`."""
        pred, proba = self.outputs(data)
        if not self.supervised:
            return unsupervised_frame(self.task, pred, proba)
        out = pd.DataFrame({"prediction": self._decode(pred)})
        if proba is not None:
            out = pd.concat([out, pd.DataFrame(proba, columns=[f"proba_{c}" for c in self.classes])], axis=1)
        return out

    def explain(self, data: pd.DataFrame | str | Path, *, top_k: int = 5) -> list[dict[str, Any]]:
        """Each row's prediction and its `top_k` largest signed feature contributions.

        The method follows the model family (coefficients, TreeSHAP, integrated gradients, Kernel SHAP);
        contributions are relative to the training rows saved with the model (`model/background.safetensors`).
        """
        from trainwell.evaluate.analysis import BACKGROUND, load_background
        from trainwell.evaluate.explain import explain_rows

        if not self.supervised:
            raise UserError(f"explain reads a supervised model's decisions; {self.dir} is a {self.task} run (its "
                            "report profiles the clusters and shows the projection instead)")  # fmt: skip
        path = self.dir / "model" / BACKGROUND
        if not path.is_file():
            raise UserError(f"{self.dir} has no saved background rows for explanations; retrain it with this version")
        X = self.features(data)
        names = list(self.info["features"])
        model = getattr(self.model, "base_", self.model)  # a mitigated model is explained by its fitted base
        rows = explain_rows(model, X, names, background=load_background(path), top_k=top_k)
        if self.task == "classification":
            import re

            for row in rows:  # class indices → the labels the user knows
                row["prediction"] = decode(self.classes[int(row["prediction"])])
                row["output"] = re.sub(r"class (\d+)$", lambda m: f"class {self.classes[int(m[1])]}", row["output"])
        return rows

    def evaluate(self, data: pd.DataFrame | str | Path) -> dict[str, Any]:
        """Metrics on labelled data (the target column must be present)."""
        frame, source = _frame(data)
        target = self.info["target"]
        if not self.supervised:
            return self._evaluate_unsupervised(frame, source)
        if target not in frame.columns:
            raise UserError(f'{source} has no target column "{target}"; evaluate needs labelled rows')
        frame = frame[frame[target].notna()].reset_index(drop=True)
        y = self.encode_target(frame[target], source)
        return compute_metrics(self.task, y, *self.outputs(frame, source), n_classes=len(self.classes))  # type: ignore[arg-type]

    def drift(self, data: pd.DataFrame | str | Path) -> dict[str, Any]:
        """How far new rows have moved from the training data: per-column PSI and tests, prediction drift, and,
        when the rows carry the target, the metrics on them beside the run's test metrics."""
        from trainwell.evaluate.drift import drift_report

        frame, source = _frame(data)
        path = self.dir / DRIFT_REFERENCE
        if not path.is_file():
            raise UserError(f"{self.dir} has no {DRIFT_REFERENCE} (trained by an older trainwell); train it again "
                            "to monitor drift")  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)  # drift reports the same problems, per column
            pred = self.predict(frame) if self.task != "dimensionality_reduction" else np.empty((0,))
        report = drift_report(read_json(path), frame, pred, self.task)
        report["source"] = source
        target = self.info.get("target")
        if self.supervised and target in frame.columns and frame[target].notna().any():
            now = self.evaluate(frame)
            report["performance"] = {name: {"test": self.metrics.get("test", {}).get(name), "now": value}
                                     for name, value in now.items() if isinstance(value, (int, float))}  # fmt: skip
        return report

    def _evaluate_unsupervised(self, frame: pd.DataFrame, source: str) -> dict[str, Any]:
        """The task's scores on new rows; with the run's label column present, the external ones too."""
        from trainwell.data.target import encode_labels
        from trainwell.evaluate.unsupervised import split_scores

        target = self.info["target"]
        labels = None
        if target is not None and target in frame.columns:
            labels, classes = encode_labels(frame[target], self.task, target, source)
            if self.task != "anomaly_detection":  # codes in the run's class order, unseen labels their own codes
                index = {str(c): i for i, c in enumerate(self.classes)}
                extra = {str(c): len(index) + i for i, c in enumerate(c for c in classes if str(c) not in index)}
                codes = [(index | extra)[str(classes[k])] if k >= 0 else -1 for k in labels]
                labels = np.asarray(codes, dtype=np.int64)
        outputs = self.outputs(frame, source)
        params = self.config.model.params
        scores = split_scores(self.task, self.model.estimator_, self.features(frame, source), outputs, labels,  # type: ignore[attr-defined]
                              contamination=params.get("contamination"))  # fmt: skip
        scores.pop("skipped", None)
        return scores

    def _decode(self, pred: np.ndarray) -> np.ndarray:
        return np.array(self.classes, dtype=object)[pred] if self.task == "classification" else pred

    def encode_target(self, series: pd.Series, source: str) -> np.ndarray:
        if self.task == "regression":
            values = pd.to_numeric(series, errors="coerce")
            if values.isna().any():
                raise UserError(f'{source}: target "{self.info["target"]}" has non-numeric values')
            return values.to_numpy(np.float64)
        index = {str(c): i for i, c in enumerate(self.classes)}
        unknown = sorted({str(v) for v in series} - set(index))
        if unknown:
            raise UserError(f'{source}: target "{self.info["target"]}" has labels the model never saw: '
                            + ", ".join(unknown[:10]))  # fmt: skip
        return np.array([index[str(v)] for v in series], dtype=np.int64)


def _names(values: list[str], limit: int = 5) -> str:
    return ", ".join(f'"{v}"' for v in values[:limit]) + (f" ... ({len(values)} in all)" if len(values) > limit else "")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a run folder; a missing, truncated or altered file is one clear error."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is missing; the run folder is incomplete, train it again") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is damaged (not valid JSON: {exc}); train the run again") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is damaged (not a JSON object); train the run again")
    return data


def _frame(data: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        return data, "the DataFrame"
    return read_table(data), str(data)


# ---------------------------------------------------------------- writing a run


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
    if prep.supervised:  # the reference rows of `Run.explain`
        save_background(fitted, prep, splits, path / "model" / BACKGROUND, seed=cfg.seed)
    save_preparer(fitted.preparer, path / "model" / "preparer.skops")
    write_text(path / "config.yaml", dump_config(resolved))
    write_json(path / "metrics.json", metrics)
    if fitted.model.history:
        write_text(path / "history.csv", pd.DataFrame(fitted.model.history).to_csv(index=False))
    write_predictions(path / "predictions.csv", splits, outputs, prep)
    write_json(path / DRIFT_REFERENCE, _drift_profile(prep, splits, fitted, outputs, seed=cfg.seed))
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


def _drift_profile(prep: Prepared, splits: Splits, fitted: Fitted, outputs: Outputs, *, seed: int) -> dict[str, Any]:
    """What `trainwell monitor` compares new rows with: the training rows' profile, the held-out predictions'."""
    from trainwell.evaluate.drift import reference_profile

    held = "validation" if "validation" in outputs else "train"
    predictions = outputs[held][0]
    if prep.task == "classification":
        predictions = np.array(prep.classes, dtype=object)[predictions]
    schema = {c: prep.schema[c] for c in fitted.features}
    return reference_profile(prep.frame.iloc[splits.train], schema, predictions, prep.task, seed=seed)


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
        "features": feature_names(fitted.preparer),
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


def unsupervised_frame(task: str, pred: np.ndarray, extra: np.ndarray | None) -> pd.DataFrame:
    """An unsupervised model's outputs as columns: `prediction` (cluster id or 1/0 anomaly flag) and
    `anomaly_score`, or `component_1..k` for a reduction."""
    if task == "dimensionality_reduction":
        return pd.DataFrame(pred, columns=[f"component_{i + 1}" for i in range(pred.shape[1])])
    out = pd.DataFrame({"prediction": pred})
    if extra is not None:
        out["anomaly_score"] = extra
    return out


def write_predictions(path: Path, splits: Any, outputs: dict[str, tuple[np.ndarray, np.ndarray | None]],
                      prep: Any) -> None:  # fmt: skip
    """predictions.csv: validation and test rows with truth, prediction and probabilities, for the report.

    Unsupervised runs write every split, training rows included: their outputs are the result.
    """
    if not prep.supervised:
        parts = []
        for split, (pred, extra) in outputs.items():
            rows = getattr(splits, split)
            part = pd.concat([pd.DataFrame({"split": split, "row": rows}), unsupervised_frame(prep.task, pred, extra)],
                             axis=1)  # fmt: skip
            if prep.target is not None:
                labels = prep.frame[prep.target].iloc[rows].to_numpy()
                part["y_true"] = labels
            parts.append(part)
        write_text(path, pd.concat(parts, ignore_index=True).to_csv(index=False))
        return
    parts = []
    for split in ("validation", "test"):
        if split not in outputs:
            continue
        rows = getattr(splits, split)
        pred, proba = outputs[split]
        y_true = prep.y[rows]
        if prep.task == "classification":
            labels = np.array(prep.classes, dtype=object)
            y_true, pred = labels[y_true], labels[pred]
        part = pd.DataFrame({"split": split, "row": rows, "y_true": y_true, "y_pred": pred})
        if proba is not None:
            part = pd.concat([part, pd.DataFrame(proba, columns=[f"proba_{c}" for c in prep.classes])], axis=1)
        parts.append(part)
    if parts:
        write_text(path, pd.concat(parts, ignore_index=True).to_csv(index=False))
