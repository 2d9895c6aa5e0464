"""K-fold cross-validation over train+validation rows, with the preparation fitted inside every fold.

Each fold refits everything a holdout run fits (imputation, scaling, vocabularies, the model) on the
fold's own training rows, so no statistic of a scored row leaks into its prediction. The test rows are
never passed in: the one final test stays untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from trainwell import pipeline
from trainwell.config import ExperimentConfig, SplitConfig
from trainwell.data.prepared import Prepared
from trainwell.data.sources import Dataset
from trainwell.data.split import Splits, split_rows
from trainwell.errors import UserError
from trainwell.evaluate.metrics import score
from trainwell.models.registry import auto_model_name, get_spec, parse_params

FoldRows = tuple[np.ndarray, np.ndarray, np.ndarray]  # (fit rows, early-stopping rows, scored rows)


def cross_validate(
    cfg: ExperimentConfig, ds: Dataset, prep: Prepared, rows: np.ndarray, *, quiet: bool = True,
    callbacks: tuple[Any, ...] = (),
) -> dict[str, Any]:  # fmt: skip
    """Fit the configured model once per fold of `rows` and score it on the held-out fold.

    Returns {"strategy", "n_folds", "folds": [metrics per fold], "fold_rows": [row counts per fold],
    "mean": {...}, "std": {...}}; mean and std (population, ddof=0) cover the scalar metrics present in
    every fold, not the confusion matrices.
    """
    plan, strategy = fold_rows(cfg, prep, rows, early_stopping=uses_validation(cfg, ds, prep, len(rows)))
    folds: list[dict[str, Any]] = []
    counts: list[dict[str, int]] = []
    for fit_rows, stop_rows, held_out in plan:
        fitted = pipeline.fit_candidate(cfg, ds, prep, fit_rows, stop_rows, quiet=quiet, callbacks=callbacks)
        folds.append(score(fitted, prep, held_out))
        counts.append({"fit": len(fit_rows), "early_stopping": len(stop_rows), "scored": len(held_out)})
    mean, std = summarise(folds)
    return {"strategy": strategy, "n_folds": len(folds), "folds": folds, "fold_rows": counts,
            "mean": mean, "std": std}  # fmt: skip


def summarise(folds: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and standard deviation of each scalar metric that every fold reports."""
    names = [k for k, v in folds[0].items() if isinstance(v, float | int) and all(k in f for f in folds)]
    values = {k: np.array([f[k] for f in folds], dtype=float) for k in names}
    return {k: float(v.mean()) for k, v in values.items()}, {k: float(v.std()) for k, v in values.items()}


def uses_validation(cfg: ExperimentConfig, ds: Dataset, prep: Prepared, n_rows: int) -> bool:
    """Whether the configured model reads validation rows while fitting (neural nets, early-stopped boosting)."""
    name = cfg.model.name
    if name == "auto":
        name = auto_model_name(prep.task, n_rows, ds.image_shape)
    params = parse_params(name, cfg.model.params).model_dump()
    return get_spec(name).abilities.epoch_history or bool(params.get("early_stopping_rounds"))


def fold_rows(cfg: ExperimentConfig, prep: Prepared, rows: np.ndarray, *,
              early_stopping: bool = True) -> tuple[list[FoldRows], str]:  # fmt: skip
    """The folds as row positions into `prep.frame`, and the splitter's name.

    With `early_stopping`, a slice of each fold's training rows the size of `split.validation` is set
    aside for early stopping, chosen like the holdout validation split; the held-out fold is only scored.
    Without it the fit rows are the whole training part of the fold, as a model that ignores validation
    rows would use them.

    Raises:
        UserError: kfold with a time split, more folds than groups or than rows of the rarest class.
    """
    rows = np.asarray(rows, dtype=np.int64)
    splitter, labels, groups, strategy = _splitter(cfg, prep, rows)
    plan = []
    for fold, (inner, held_out) in enumerate(splitter.split(rows, labels, groups)):
        fit_rows, stop_rows = np.sort(rows[inner]), rows[:0]
        if early_stopping:
            fit_rows, stop_rows = _early_stopping_rows(cfg, prep, rows[inner], seed=cfg.seed + fold)
        plan.append((fit_rows, stop_rows, np.sort(rows[held_out])))
    return plan, strategy


def _splitter(cfg: ExperimentConfig, prep: Prepared, rows: np.ndarray) -> tuple[Any, Any, Any, str]:
    """(scikit-learn splitter, labels, groups, name): grouped and/or stratified as the split config says."""
    k, split = cfg.validation.folds, cfg.split
    if split.time_column:
        raise UserError("validation.strategy: kfold mixes past and future rows; with split.time_column "
                        "use validation.strategy: holdout")  # fmt: skip
    if len(rows) < k:
        raise UserError(f"validation.folds={k} is more than the {len(rows)} train+validation rows; lower it")
    stratify = split.stratify and prep.task == "classification"
    labels = prep.y[rows] if stratify else None
    if split.group_column:
        groups = prep.frame[split.group_column].iloc[rows].astype(str).to_numpy()
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise UserError(f'validation.folds={k} is more than the {n_groups} groups in split.group_column '
                            f'"{split.group_column}"; lower validation.folds')  # fmt: skip
        if stratify:
            return StratifiedGroupKFold(k, shuffle=True, random_state=cfg.seed), labels, groups, "stratified_group"
        return GroupKFold(k, shuffle=True, random_state=cfg.seed), None, groups, "group"
    if stratify:
        _check_class_counts(prep, rows, k)
        return StratifiedKFold(k, shuffle=True, random_state=cfg.seed), labels, None, "stratified"
    return KFold(k, shuffle=True, random_state=cfg.seed), None, None, "kfold"


def _check_class_counts(prep: Prepared, rows: np.ndarray, k: int) -> None:
    counts = np.bincount(prep.y[rows], minlength=len(prep.classes))
    rarest = int(np.argmin(counts))
    if counts[rarest] < k:
        raise UserError(f'validation.folds={k} is more than the {counts[rarest]} rows of class '
                        f'"{prep.classes[rarest]}"; lower validation.folds or set split.stratify: false')  # fmt: skip


def _early_stopping_rows(cfg: ExperimentConfig, prep: Prepared, rows: np.ndarray,
                         seed: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Split a fold's training rows into fit rows and early-stopping rows, as the holdout split would."""
    if cfg.split.validation == 0:
        return np.sort(rows), rows[:0]
    share = cfg.split.validation / (1 - cfg.split.test)  # validation's share of train+validation
    inner = SplitConfig(validation=0, test=share, stratify=cfg.split.stratify, group_column=cfg.split.group_column)
    try:
        parts = split_rows(prep.frame.iloc[rows], inner, task=prep.task, target=prep.target, seed=seed)
    except UserError:  # e.g. a single group left in this fold: fit on all its rows, without early stopping
        return np.sort(rows), rows[:0]
    return np.sort(rows[parts.train]), np.sort(rows[parts.test])


def cv_section(cfg: ExperimentConfig, ds: Dataset, prep: Prepared, splits: Splits, *,
               quiet: bool = True) -> dict[str, Any]:  # fmt: skip
    """{"cross_validation": result} over train+validation when `validation.strategy` is kfold, else {}."""
    if cfg.validation.strategy != "kfold":
        return {}
    rows = np.concatenate([splits.train, splits.validation])
    return {"cross_validation": cross_validate(cfg, ds, prep, rows, quiet=quiet)}


def format_cv(result: dict[str, Any], metrics: list[str]) -> str:
    """'accuracy 0.953 ± 0.021, f1_macro ...' for the named metrics, for printing."""
    mean, std = result["mean"], result["std"]
    return ", ".join(f"{m} {mean[m]:.4f} ± {std[m]:.4f}" for m in metrics if m in mean)
