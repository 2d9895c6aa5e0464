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
from trainwell.errors import UserError
from trainwell.evaluate import explain
from trainwell.evaluate.diagnosis import diagnose, learning_curve

if TYPE_CHECKING:
    from trainwell.data.prepared import Prepared
    from trainwell.data.sources import Dataset
    from trainwell.data.split import Splits
    from trainwell.models.fitted import Fitted, Outputs

BACKGROUND = "background.safetensors"  # prepared training rows that local explanations compare against
BACKGROUND_ROWS = 100
PD_FEATURES = 3  # partial dependence curves for this many of the most important features


def analyse(cfg: ExperimentConfig, ds: Dataset, prep: Prepared, splits: Splits, fitted: Fitted, outputs: Outputs,
            metrics: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The metrics.json blocks beyond the scores: audit, diagnosis, learning_curve, importance, fairness."""
    out: dict[str, Any] = {"audit": prep.audit} if prep.audit else {}
    history = fitted.model.history or None
    neural = bool(history) and "train_loss" in history[0]
    curve = None
    if cfg.validation.learning_curve and not neural and hasattr(fitted.model, "estimator"):
        curve = learning_curve(fitted.model.estimator, fitted.transform(prep, splits.train), prep.y[splits.train],  # type: ignore[attr-defined]
                               task=prep.task, seed=cfg.seed)  # fmt: skip
        out["learning_curve"] = curve
    out["diagnosis"] = diagnose(
        history, metrics.get("train", {}), metrics.get("validation", {}), task=prep.task,
        epochs_budget=cfg.train.epochs if neural else None, learning_curve=curve, model=fitted.name,
    )  # fmt: skip
    if cfg.validation.explain:
        out |= importance(ds, prep, splits, fitted, seed=cfg.seed)
    if prep.sensitive:
        out["fairness"] = fairness(cfg, prep, splits, fitted, outputs)
    return out


def importance(ds: Dataset, prep: Prepared, splits: Splits, fitted: Fitted, *, seed: int) -> dict[str, Any]:
    """Permutation importance on validation (train when there is none), the model's own, partial dependence."""
    split = "validation" if len(splits.validation) else "train"
    rows = getattr(splits, split)
    model = getattr(fitted.model, "base", fitted.model)  # a mitigated model is explained by its base model
    X, y = fitted.transform(prep, rows), prep.y[rows]
    names = [str(f) for f in fitted.preparer.get_feature_names_out()]
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not ds.image_shape:  # one shuffled pixel says little, and a CNN pays a pass per pixel
            table = explain.permutation_importance_table(
                model, X, y, names, task=prep.task, seed=seed,
                n_repeats=5 if len(names) <= 50 else 2, max_rows=1000,
            )  # fmt: skip
            out["feature_importance"] = {"method": "permutation", "split": split, "features": table}
            top = [r["feature"] for r in table[:PD_FEATURES] if r["importance"] > 0]
            curves = prep.task == "regression" or model.predict_proba(X[:1]) is not None  # hard voting: none
            if top and curves:
                out["partial_dependence"] = explain.partial_dependence_curves(model, X, top, names, seed=seed)
        own = explain.model_importance(model, X, names, seed=seed)
    if own["features"]:
        out["model_importance"] = own | {"split": split}
    return out


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
