"""What every run learns about its model after the fit, before it is saved: the audit it passed, the
diagnosis of its curves, why it decides (importance, partial dependence) and whom it fails (fairness).

All of it reads the training and validation rows only; the test rows appear solely through the
predictions `evaluate_splits` already made (fairness per group on test reuses them, nothing is refitted).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainwell.artifacts import load_tensors
from trainwell.config import ExperimentConfig
from trainwell.data.prepare import PreparedFeature, describe_features
from trainwell.errors import UserError
from trainwell.evaluate import explain
from trainwell.evaluate.diagnosis import diagnose, learning_curve
from trainwell.models.registry import model_tags

if TYPE_CHECKING:
    from trainwell.data.prepared import Prepared
    from trainwell.data.sources import Dataset
    from trainwell.data.split import Splits
    from trainwell.models.fitted import Fitted, Outputs

BACKGROUND = "background.safetensors"  # prepared training rows that local explanations compare against
BACKGROUND_ROWS = 100
PD_FEATURES = 3  # partial dependence curves for this many of the most important features
TRAINING = "training"  # a boosting model's name for its own training rows: early stopping ignores them


def analyse(cfg: ExperimentConfig, ds: Dataset, prep: Prepared, splits: Splits, fitted: Fitted, outputs: Outputs,
            metrics: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The metrics.json blocks beyond the scores: audit, boosting_curve, diagnosis, learning_curve, importance,
    fairness."""
    out: dict[str, Any] = {"audit": prep.audit} if prep.audit else {}
    if not prep.supervised:
        return out | analyse_unsupervised(cfg, prep, splits, fitted, outputs, metrics)
    history = fitted.model.history or None
    neural = bool(history) and "train_loss" in history[0]
    curve = None
    if cfg.validation.learning_curve and not neural and hasattr(fitted.model, "estimator"):
        curve = guarded(out, "learning_curve", lambda: learning_curve(
            fitted.model.estimator, fitted.transform(prep, splits.train), prep.y[splits.train],  # type: ignore[attr-defined]
            task=prep.task, seed=cfg.seed))  # fmt: skip
        if curve is not None:
            out["learning_curve"] = curve
    if rounds := guarded(out, "boosting_curve", lambda: boosting_curve(fitted.model)):
        out["boosting_curve"] = rounds
    out["diagnosis"] = diagnose(
        history, metrics.get("train", {}), metrics.get("validation", {}), task=prep.task,
        epochs_budget=cfg.train.epochs if neural else None, learning_curve=curve, model=fitted.name,
    )  # fmt: skip
    if cfg.validation.explain:
        out |= guarded(out, "importance", lambda: importance(ds, prep, splits, fitted, seed=cfg.seed)) or {}
    if prep.sensitive and (groups := guarded(out, "fairness", lambda: fairness(cfg, prep, splits, fitted, outputs))):
        out["fairness"] = groups
    return out


def guarded(out: dict[str, Any], step: str, compute: Any) -> Any:
    """Run one optional analysis step; if it fails, record why under `analysis_errors` and go on.

    The model is already trained and tested when these run: an explanation that breaks on an odd column must be
    reported, never cost the user the run (the run is saved with the error listed in metrics.json and printed).
    """
    try:
        return compute()
    except Exception as exc:  # noqa: BLE001 - reported below and in metrics.json, never silent
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        out.setdefault("analysis_errors", []).append({"step": step, "error": message})
        warnings.warn(f"analysis step {step} failed and was skipped: {message}", RuntimeWarning, stacklevel=2)
        return None


def importance(ds: Dataset, prep: Prepared, splits: Splits, fitted: Fitted, *, seed: int) -> dict[str, Any]:
    """Permutation importance on validation (train when there is none), the model's own, partial dependence."""
    split = "validation" if len(splits.validation) else "train"
    rows = getattr(splits, split)
    model = getattr(fitted.model, "base_", fitted.model)  # a mitigated model is explained by its base model
    X, y = fitted.transform(prep, rows), prep.y[rows]
    described = describe_features(fitted.preparer)
    names = [f.name for f in described]
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not ds.image_shape:  # one shuffled pixel says little, and a CNN pays a pass per pixel
            table = explain.permutation_importance_table(
                model, X, y, names, task=prep.task, seed=seed,
                n_repeats=5 if len(names) <= 50 else 2, max_rows=1000,
            )  # fmt: skip
            out["feature_importance"] = {"method": "permutation", "split": split, "features": table}
            top = _pd_features(table, described)
            curves = prep.task == "regression" or model.predict_proba(X[:1]) is not None  # hard voting: none
            if top and curves:
                out["partial_dependence"] = explain.partial_dependence_curves(model, X, top, names, seed=seed,
                                                                              described=described)  # fmt: skip
        own = explain.model_importance(model, X, names, seed=seed)
    if own["features"]:
        out["model_importance"] = own | {"split": split}
    return out


def _pd_features(table: list[dict[str, Any]], described: list[PreparedFeature]) -> list[str]:
    """The PD_FEATURES most important features that help (importance > 0), one per one-hot column: its curve
    sweeps all of that column's categories."""
    by_name = {f.name: f for f in described}
    chosen: dict[str, str] = {}
    for row in (r for r in table if r["importance"] > 0):
        f = by_name[row["feature"]]
        chosen.setdefault(f.column if f.kind == "onehot" else f.name, f.name)
        if len(chosen) == PD_FEATURES:
            break
    return list(chosen.values())


def boosting_curve(model: Any) -> dict[str, Any] | None:
    """A boosting model's metric after each round (LightGBM's `evals_result_`), None when it recorded none.

    LightGBM records the rows it was given to watch: the validation rows when it stopped early on them,
    and its training rows too when it was given them under the name "training". `best_round` is the
    round the model predicts with (its early-stopping best, else its last).
    """
    if not model_tags(model).boosting_rounds:
        return None
    estimator = getattr(model, "estimator_", None)
    estimator = getattr(model, "estimator", None) if estimator is None else estimator
    record: dict[str, dict[str, list[float]]] = getattr(estimator, "evals_result_", None) or {}
    watched = [name for name in record if name != TRAINING and record[name]]
    if not watched:
        return None
    metric, validation = next(iter(record[watched[0]].items()))
    train = record.get(TRAINING, {}).get(metric)
    best = int(getattr(estimator, "best_iteration_", 0) or 0)
    return {"metric": metric, "rounds": list(range(1, len(validation) + 1)),
            "train": [_finite_or_none(float(v)) for v in train] if train else None,
            "validation": [_finite_or_none(float(v)) for v in validation],
            "best_round": best or len(validation), "stopped_early": best > 0}  # fmt: skip


def fairness(cfg: ExperimentConfig, prep: Prepared, splits: Splits, fitted: Fitted, outputs: Outputs) -> dict[str, Any]:
    """Per-group metrics on validation and test; for binary targets the mitigation trade-off on validation."""
    from trainwell.evaluate.fairness import compare_mitigations, group_metrics

    settings = cfg.fairness
    names = [str(c) for c in prep.classes] or None
    out: dict[str, Any] = {"sensitive": prep.sensitive, "mitigation": settings.mitigation,
                           "in_features": settings.keep_in_features}  # fmt: skip
    for split in ("validation", "test"):
        if split in outputs:
            rows = getattr(splits, split)
            out[split] = group_metrics(prep.y[rows], outputs[split][0], prep.frame.iloc[rows][prep.sensitive],
                                       task=prep.task, class_names=names)  # fmt: skip
    estimator = getattr(getattr(fitted.model, "base", fitted.model), "estimator", None)
    binary = prep.task == "classification" and len(prep.classes) == 2
    if settings.compare and binary and estimator is not None and len(splits.validation):
        part = {s: (fitted.transform(prep, getattr(splits, s)), prep.y[getattr(splits, s)],
                    prep.frame.iloc[getattr(splits, s)][prep.sensitive]) for s in ("train", "validation")}  # fmt: skip
        try:
            out["tradeoff"] = compare_mitigations(estimator, part["train"], part["validation"], seed=cfg.seed,
                                                  constraint=settings.constraint,
                                                  difference_bound=settings.difference_bound)  # fmt: skip
            out["tradeoff_split"] = "validation"
        except (TypeError, ValueError) as exc:  # e.g. an estimator whose fit takes no sample_weight (knn)
            out["tradeoff_skipped"] = f"{type(estimator).__name__}: {exc}".splitlines()[0]
    elif settings.compare:
        out["tradeoff_skipped"] = ("the trade-off table needs a binary target, a validation split and a "
                                   "scikit-learn-family model")  # fmt: skip
    return out


PROJECTION_ROWS = 2000  # points in the report's 2-D projection
PROFILE_COLUMNS = 12  # columns in the per-cluster profile table: those that differ most between clusters
DENDROGRAM_ROWS = 200  # training rows the dendrogram's merge tree is built on


def analyse_unsupervised(cfg: ExperimentConfig, prep: Prepared, splits: Splits, fitted: Fitted, outputs: Outputs,
                         metrics: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The sweep behind an automatic size, the diagnosis, a 2-D projection; clusters' sizes, profiles and tree."""
    from trainwell.evaluate.unsupervised import diagnose_unsupervised

    out: dict[str, Any] = {}
    if "sweep" in fitted.notes:
        out["sweep"] = {k: _finite_or_none(v) for k, v in fitted.notes["sweep"].items()}
        out["sweep"]["curve"] = [{k: _finite_or_none(v) for k, v in p.items()} for p in out["sweep"]["curve"]]
    judged = "validation" if metrics.get("validation") else "train"
    skipped = metrics.get("skipped", {}).get(judged, {})
    out["diagnosis"] = diagnose_unsupervised(prep.task, metrics[judged] | {"skipped": skipped})
    out["diagnosis"]["split"] = judged
    rows = np.concatenate([splits.train, splits.validation, splits.test])
    out["projection"] = _projection(prep, splits, fitted, outputs, rows, seed=cfg.seed)
    if prep.task == "clustering":
        out["clusters"] = cluster_profiles(prep, fitted.features, splits.train, outputs["train"][0])
        if fitted.name == "agglomerative":
            out["dendrogram"] = _dendrogram(fitted, fitted.transform(prep, splits.train), seed=cfg.seed)
    return out


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _projection(prep: Prepared, splits: Splits, fitted: Fitted, outputs: Outputs, rows: np.ndarray, *,
                seed: int) -> dict[str, Any]:  # fmt: skip
    """Up to PROJECTION_ROWS rows in 2-D: the first two components of a reduction, else a PCA fitted on train."""
    from sklearn.decomposition import PCA

    shown = np.sort(np.random.default_rng(seed).choice(rows, min(len(rows), PROJECTION_ROWS), replace=False))
    if prep.task == "dimensionality_reduction":
        by_row = {}
        for split in outputs:
            by_row.update(zip(getattr(splits, split).tolist(), outputs[split][0], strict=True))
        points = np.array([by_row[r] for r in shown.tolist()])
        method = "components"
    else:
        X_train = fitted.transform(prep, splits.train)
        pca = PCA(n_components=min(2, *X_train.shape), random_state=seed).fit(X_train)
        points, method = pca.transform(fitted.transform(prep, shown)), "pca"
    if points.shape[1] < 2:  # one component: draw it along x
        points = np.column_stack([points[:, 0], np.zeros(len(points))])
    return {"method": method, "rows": shown.tolist(), "x": np.round(points[:, 0], 5).tolist(),
            "y": np.round(points[:, 1], 5).tolist()}  # fmt: skip


def cluster_profiles(prep: Prepared, columns: list[str], rows: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Cluster sizes and each cluster's profile in the user's units: numeric means, else the most frequent value.

    Numeric columns are ranked by how far apart the cluster means sit (in standard deviations); the
    PROFILE_COLUMNS that separate the clusters most are shown.
    """
    import pandas as pd

    frame = prep.frame.iloc[rows][columns].reset_index(drop=True)
    ids = pd.Series(labels, name="cluster")
    sizes = {str(k): int(v) for k, v in ids.value_counts().sort_index().items()}
    numeric = [c for c in columns if prep.schema.get(c) in ("numeric", "boolean")]
    values = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    means = values.groupby(ids).mean()
    spread = (means.std(ddof=0) / values.std(ddof=0).replace(0, np.nan)).fillna(0.0)
    shown = list(spread.sort_values(ascending=False).index[:PROFILE_COLUMNS])
    other = [c for c in columns if c not in numeric][: max(0, PROFILE_COLUMNS - len(shown))]
    table = []
    for cluster in sorted(sizes, key=int):
        mask = (ids == int(cluster)).to_numpy()
        row: dict[str, Any] = {"cluster": cluster, "size": sizes[cluster]}
        row |= {c: _finite_or_none(round(float(means.loc[int(cluster), c]), 6)) for c in shown}
        for c in other:
            mode = frame.loc[mask, c].mode()
            row[c] = str(mode.iloc[0]) if len(mode) else None
        table.append(row)
    return {"split": "train", "sizes": sizes, "profiles": {"columns": shown + other, "rows": table}}


def _dendrogram(fitted: Fitted, X: np.ndarray, *, seed: int) -> dict[str, Any]:
    """The merge tree of a seeded sample of training rows, with the model's linkage and metric (scipy)."""
    from scipy.cluster.hierarchy import linkage

    if len(X) > DENDROGRAM_ROWS:
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), DENDROGRAM_ROWS, replace=False))]
    method, metric = fitted.params["linkage"], fitted.params["metric"]
    metric = "cityblock" if metric == "manhattan" else metric
    tree = linkage(X.astype(np.float64), method=method, metric=metric)
    return {"method": method, "rows": len(X), "linkage": np.round(tree, 6).tolist()}


def save_background(fitted: Fitted, prep: Prepared, splits: Splits, path: Path, *, seed: int) -> None:
    """A seeded sample of prepared training rows, the reference for `Run.explain`; safetensors, no pickle."""
    from safetensors.numpy import save_file

    from trainwell.files import atomic_path

    rows = splits.train
    if len(rows) > BACKGROUND_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, BACKGROUND_ROWS, replace=False))
    with atomic_path(path) as tmp:
        save_file({"X": np.ascontiguousarray(fitted.transform(prep, rows))}, str(tmp))


def load_background(path: Path) -> np.ndarray:
    """The rows `save_background` wrote; a missing, damaged or non-finite file is a UserError naming it."""
    tensors = load_tensors(path)
    if "X" not in tensors or tensors["X"].ndim != 2:
        raise UserError(f'{path} holds no 2-D tensor "X" of background rows; the file is damaged, train again')
    return tensors["X"].numpy()
