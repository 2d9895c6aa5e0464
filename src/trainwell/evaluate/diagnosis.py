"""Fit diagnosis: read the learning curves the way an experienced engineer would and say what to do next.

Six verdicts, checked in this order because an earlier one makes the later ones meaningless (a diverged
loss has no overfitting point; a noisy loss hides any trend):
diverged > unstable > overfitting (validation curve turned) > still_improving > overfitting (score gap)
> underfitting > good_fit. Every verdict carries its evidence (plain numbers) and concrete advice naming
the config fields to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trainwell.config import Task

Verdict = Literal["underfitting", "overfitting", "good_fit", "still_improving", "diverged", "unstable"]
VERDICTS: tuple[str, ...] = ("underfitting", "overfitting", "good_fit", "still_improving", "diverged", "unstable")

# A final training loss this many times its best (and above where it started) has blown up: noise or
# overfitting never move the *training* loss that far.
EXPLODE_FACTOR = 10.0
# A classical fit whose R² on its own training rows is below this is twice as bad as predicting the mean:
# its optimiser blew up (SGD-style estimators) rather than merely underfitting.
DIVERGED_R2 = -1.0
# The loss "span" is how far training brought it down: the median of the first 3 epochs (robust to one
# exploding first epoch) minus the minimum. A "jump" is an epoch where the training loss rose by more than
# 15% of the span AND 2% of its value: epoch-averaged training losses barely rise in healthy runs, a
# plateau's mini-batch noise is small against the level, a near-zero overfitted loss small against the span.
JUMP_OF_SPAN = 0.15
JUMP_OF_LEVEL = 0.02
# Unstable when the training loss jumped in at least 3 epochs and in 20% of the epoch-to-epoch steps
# (fewer is ordinary mini-batch noise: Adam at 1e-2 with batch 32 jumps in about 1 step in 7)...
UNSTABLE_MIN_JUMPS = 3
UNSTABLE_JUMP_FRACTION = 0.20
# ... or when it ended (mean of the last 3 epochs) 25% above its best and by more than 2% of the span:
# a sane learning rate never lets the training loss climb back like that.
UNSTABLE_REGRESS = 0.25
UNSTABLE_REGRESS_OF_SPAN = 0.02
# The validation loss turned when, smoothed over 3 epochs, it ends 10% above its smoothed minimum and the
# best epoch is at least 2 epochs back: smaller rises, or rises from one lucky epoch, are noise. It is
# overfitting only if the training loss kept falling after that epoch; if it rose too, training is unstable.
OVERFIT_RISE = 0.10
OVERFIT_MIN_EPOCHS_AFTER = 2
# Train-minus-validation score gap that means overfitting: 10 accuracy points, or 0.15 of R².
OVERFIT_GAP: dict[str, float] = {"classification": 0.10, "regression": 0.15}
# Still improving when, over the last quarter of the epochs (at least 3), the monitored loss still fell
# 1% per epoch (ten more epochs would gain ~10%), or at least 0.2% per epoch while that quarter brought 10%
# of the whole reduction since epoch 1 (a converged curve brings ~0% there, a straight descent 25%).
STILL_IMPROVING_FAST = 0.01
STILL_IMPROVING_RATE = 0.002
STILL_IMPROVING_SHARE = 0.10
TAIL_FRACTION = 0.25
MIN_TAIL = 3
# Underfitting when the model cannot fit even its training rows: a classifier whose training balanced
# accuracy covers less than half of the way from chance to perfect, a regressor with training R² < 0.4.
UNDERFIT_SKILL = 0.5
UNDERFIT_R2 = 0.4
# A learning curve whose validation score still rose this much over its last size step: more data helps.
LC_GAIN = 0.01
# Fewer epochs than this make no curve to read; only levels and gaps are judged.
MIN_EPOCHS_FOR_CURVES = 3


def diagnose(
    history: list[dict[str, Any]] | None,
    train_metrics: dict[str, Any],
    val_metrics: dict[str, Any],
    *,
    task: Task,
    epochs_budget: int | None = None,
    stopped_early: bool | None = None,
    learning_curve: dict[str, Any] | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Diagnose one training run from its per-epoch history (neural) or its train/validation scores.

    `learning_curve` is `learning_curve(...)`'s result; `model` (a registry name) names the model's own
    knobs in the advice. Returns {"verdict", "summary", "evidence", "advice", "turn_epoch"}, JSON-ready.
    """
    history = [dict(row) for row in history or []]
    neural = any("train_loss" in row for row in history)  # per-epoch curves to read
    if stopped_early is None and epochs_budget is not None and neural:
        stopped_early = len(history) < epochs_budget
    ev: dict[str, float | int | None] = {}
    curves = _curve_evidence(history, ev, epochs_budget) if neural else None
    levels = _level_evidence(train_metrics, val_metrics, history, task, ev)
    lc_gain = _learning_curve_evidence(learning_curve, ev)
    verdict, turn = _verdict(curves, levels, task, ev)
    ctx = _AdviceContext(neural, task, ev, _last_lr(history), stopped_early, lc_gain, turn, model)
    return {
        "verdict": verdict,
        "summary": _SUMMARIES[verdict](ctx),
        "evidence": {k: _clean(v) for k, v in ev.items()},
        "advice": _ADVICE[verdict](ctx),
        "turn_epoch": turn,
    }


# ---------------------------------------------------------------- evidence


def _curve_evidence(history: list[dict[str, Any]], ev: dict, budget: int | None) -> dict[str, Any]:
    """Shape numbers of the loss curves: divergence, jumps, the validation turn and the final trend."""
    retried = [r for r in history if _num(r.get("retry")) > 0]
    if retried:  # divergences a retry recovered from (train.divergence_retries): the kept curve decides
        ev["divergence_retries"] = len(retried)
        history = [r for r in history if not _num(r.get("retry")) > 0]
    train = np.array([_num(r.get("train_loss")) for r in history])
    val = np.array([_num(r.get("val_loss")) for r in history]) if all("val_loss" in r for r in history) else None
    ev.update(epochs_run=len(history), epochs_budget=budget)
    finite = np.isfinite(train) & (np.isfinite(val) if val is not None else True)
    out: dict[str, Any] = {"diverged": not finite.all() or any(_num(r.get("diverged")) > 0 for r in history)}
    if not finite.all():
        ev["non_finite_epoch"] = int(np.argmin(finite)) + 1
    t = train[np.isfinite(train)]
    if len(t):
        ev.update(train_loss_first=t[0], train_loss_min=t.min(), train_loss_final=t[-1])
        if t[-1] > EXPLODE_FACTOR * t.min() and t[-1] > t[0]:
            out["diverged"] = True
            ev["train_loss_growth"] = t[-1] / max(t.min(), 1e-12)
    if out["diverged"] or len(history) < MIN_EPOCHS_FOR_CURVES:
        return out
    span = _span(train)
    ev["train_jumps"] = out["jumps"] = _count_jumps(train, span)
    ev["train_regress"] = out["regress"] = float(train[-MIN_TAIL:].mean() / max(train.min(), 1e-12) - 1)
    out["regress_of_span"] = float((train[-MIN_TAIL:].mean() - train.min()) / span)
    if val is not None:
        out.update(_turn(train, val, ev))
    monitored = val if val is not None else train
    ev["final_trend_per_epoch"] = out["trend"] = trend = _tail_trend(monitored)
    total_drop = monitored[0] - monitored.min()
    tail_drop = -trend * monitored[-1] * (_tail_length(monitored) - 1)
    ev["tail_share_of_improvement"] = out["tail_share"] = float(tail_drop / total_drop) if total_drop > 0 else 0.0
    return out


def _turn(train: np.ndarray, val: np.ndarray, ev: dict) -> dict[str, Any]:
    """Where the validation loss bottomed, how far its smoothed curve rose since, what training did meanwhile."""
    best = int(np.argmin(val))
    smooth = np.convolve(val, np.ones(MIN_TAIL) / MIN_TAIL, mode="valid") if len(val) >= MIN_TAIL else val
    rise = float(smooth[-1] / max(smooth.min(), 1e-12) - 1)
    after = len(val) - best - 1
    change = float(train[-1] / max(train[best], 1e-12) - 1)
    ev.update(best_epoch=best + 1, val_loss_min=val[best], val_loss_final=val[-1], val_rise=rise)
    ev.update(epochs_after_best=after, train_loss_change_after_best=change)
    return {"best_epoch": best + 1, "val_rise": rise, "epochs_after_best": after, "train_change": change}


def _level_evidence(
    train_m: dict[str, Any], val_m: dict[str, Any], history: list[dict[str, Any]], task: Task, ev: dict
) -> dict[str, Any]:
    """Score levels and the train-validation gap, from the final metrics or the last history row."""
    last = history[-1] if history else {}
    name = "accuracy" if task == "classification" else "r2"
    tr = _num(train_m.get(name, last.get(f"train_{name}")))
    va = _num(val_m.get(name, last.get(f"val_{name}")))
    out: dict[str, Any] = {"train": tr, "val": va, "name": name, "diverged": False}
    if not math.isnan(tr):
        ev[f"train_{name}"] = tr
    if not math.isnan(va):
        ev[f"val_{name}"] = va
    if not (math.isnan(tr) or math.isnan(va)):
        ev[f"gap_{name}"] = out["gap"] = tr - va
    if task == "classification":
        # chance level 1/K; K comes from a confusion matrix, else binary is assumed (the strictest common case)
        k = len(train_m.get("confusion_matrix") or val_m.get("confusion_matrix") or []) or 2
        bal = _num(train_m.get("balanced_accuracy", tr))
        if not math.isnan(bal) and k > 1:
            ev["train_skill"] = out["skill"] = (bal - 1 / k) / (1 - 1 / k)
    else:
        out["skill"] = tr
        bad = [k for k in ("mse", "rmse", "r2") if k in train_m and not math.isfinite(_num(train_m[k]))]
        out["diverged"] = bool(bad) or (not math.isnan(tr) and tr < DIVERGED_R2)
    return out


def _learning_curve_evidence(lc: dict[str, Any] | None, ev: dict) -> float | None:
    """Last-size scores of a learning curve over training-set sizes, and the last step's validation gain."""
    if not lc or not lc.get("sizes"):
        return None
    tr, va = [_num(v) for v in lc["train_scores"]], [_num(v) for v in lc["val_scores"]]
    ev.update(lc_train_size=lc["sizes"][-1], lc_train_score=tr[-1], lc_val_score=va[-1])
    if math.isnan(tr[-1] - va[-1]):
        return None
    ev["lc_gap"] = tr[-1] - va[-1]
    if len(va) < 2 or math.isnan(va[-2]):
        return None
    ev["lc_val_gain_last_step"] = gain = va[-1] - va[-2]
    return gain


def _verdict(curves: dict | None, levels: dict, task: Task, ev: dict) -> tuple[Verdict, int | None]:
    """Apply the checks in priority order; the turn epoch is set only for a turned validation curve."""
    c = curves or {}
    if c.get("diverged") or levels["diverged"]:
        return "diverged", None
    steps = max(int(ev.get("epochs_run") or 0) - 1, 1)
    needed = max(UNSTABLE_MIN_JUMPS, math.ceil(UNSTABLE_JUMP_FRACTION * steps))
    regressed = c.get("regress", 0) > UNSTABLE_REGRESS and c.get("regress_of_span", 0) > UNSTABLE_REGRESS_OF_SPAN
    if c.get("jumps", 0) >= needed or regressed:
        return "unstable", None
    if c.get("val_rise", 0.0) > OVERFIT_RISE and c.get("epochs_after_best", 0) >= OVERFIT_MIN_EPOCHS_AFTER:
        return ("overfitting", c["best_epoch"]) if c["train_change"] < 0 else ("unstable", None)
    trend, share = c.get("trend", 0.0), c.get("tail_share", 0.0)
    if trend <= -STILL_IMPROVING_FAST or (trend <= -STILL_IMPROVING_RATE and share >= STILL_IMPROVING_SHARE):
        return "still_improving", None
    skill = levels.get("skill", float("nan"))
    if math.isnan(skill) and ev.get("lc_train_score") is not None:  # only a learning curve: R², or accuracy
        lc = float(ev["lc_train_score"])  # with the binary chance level, as for metrics without a matrix
        skill = lc if task == "regression" else (lc - 0.5) / 0.5
    threshold = UNDERFIT_SKILL if task == "classification" else UNDERFIT_R2
    if not math.isnan(skill) and skill < threshold:  # fix bias first: a gap means little at chance level
        return "underfitting", None
    gap = levels.get("gap", ev.get("lc_gap"))
    if gap is not None and gap > OVERFIT_GAP[task]:
        return "overfitting", None
    return "good_fit", None


def _count_jumps(loss: np.ndarray, span: float) -> int:
    """Epochs where the loss rose by more than JUMP_OF_SPAN of its span and JUMP_OF_LEVEL of its value."""
    rise = np.diff(loss)
    return int(((rise > JUMP_OF_SPAN * span) & (rise > JUMP_OF_LEVEL * np.abs(loss[:-1]))).sum())


def _span(loss: np.ndarray) -> float:
    """How far training brought the loss down: median of the first 3 epochs minus the minimum."""
    return max(float(np.median(loss[:MIN_TAIL]) - loss.min()), 1e-12)


def _tail_length(loss: np.ndarray) -> int:
    return min(len(loss), max(MIN_TAIL, math.ceil(TAIL_FRACTION * len(loss))))


def _tail_trend(loss: np.ndarray) -> float:
    """Relative change per epoch over the last quarter: the slope of log(loss), negative when still falling."""
    tail = np.log(np.maximum(loss[-_tail_length(loss) :], 1e-12))
    slope = np.polyfit(np.arange(len(tail)), tail, 1)[0]
    return float(math.expm1(slope))


def _num(value: Any) -> float:
    """A float from a metric value, NaN when absent or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _clean(value: Any) -> float | int | None:
    """Evidence as plain JSON numbers: numpy scalars become Python ones, NaN/inf become None."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


# ---------------------------------------------------------------- summaries and advice


# What to turn for each classical registry model: (to regularize it, to give it capacity).
KNOBS: dict[str, tuple[str, str]] = {
    "decision_tree": ("lower model.max_depth (e.g. 4-8) or raise model.min_samples_leaf (e.g. 10)",
                      "raise model.max_depth (or None) and lower model.min_samples_leaf"),
    "random_forest": ("set model.max_depth (e.g. 8) or raise model.min_samples_leaf (e.g. 5)",
                      "raise model.max_depth (or None), lower model.min_samples_leaf"),
    "lightgbm": ("lower model.num_leaves (e.g. 15), raise model.min_child_samples (e.g. 50), add "
                 "model.reg_lambda=1.0 or model.subsample=0.8",
                 "raise model.num_leaves and model.n_estimators, lower model.min_child_samples"),
    "logistic_regression": ("lower model.C (e.g. 10x smaller) for a stronger penalty",
                            "raise model.C, or switch to a nonlinear model (lightgbm, mlp)"),
    "linear_regression": ("use model.penalty=l2 with a larger model.alpha",
                          "a linear model cannot bend: switch to a nonlinear one (lightgbm, mlp)"),
    "svm": ("lower model.C, or model.gamma for the rbf kernel", "raise model.C or use model.kernel=rbf"),
    "knn": ("raise model.n_neighbors (e.g. 15) or use model.weights=uniform", "lower model.n_neighbors"),
}  # fmt: skip


def _last_lr(history: list[dict[str, Any]]) -> float | None:
    lrs = [_num(r.get("lr")) for r in history if math.isfinite(_num(r.get("lr")))]
    return lrs[-1] if lrs else None


@dataclass(frozen=True)
class _AdviceContext:
    """What the summary and advice texts need: the family, evidence and the run's own numbers."""

    neural: bool
    task: Task
    ev: dict
    lr: float | None
    stopped_early: bool | None
    lc_gain: float | None
    turn: int | None
    model: str | None

    @property
    def score(self) -> str:
        return "accuracy" if self.task == "classification" else "r2"

    def num(self, key: str, fmt: str = ".3g") -> str:
        value = self.ev.get(key)
        return "n/a" if value is None or not math.isfinite(float(value)) else format(float(value), fmt)

    def scores(self) -> str:
        """' (train accuracy 0.91 vs validation 0.88)', or '' when the scores are unknown."""
        if self.ev.get(f"train_{self.score}") is None:
            return ""
        return f" (train {self.score} {self.num('train_' + self.score)} vs validation {self.num('val_' + self.score)})"

    def more_data(self) -> list[str]:
        if self.lc_gain is not None and self.lc_gain >= LC_GAIN:
            return [f"More training data: the learning curve's validation score still rose {self.lc_gain:+.3f} "
                    "over its last size step."]  # fmt: skip
        return []


def _lr(ctx: _AdviceContext, factor: float) -> str:
    return f"train.lr={ctx.lr / factor:.2g} (it was {ctx.lr:.2g})" if ctx.lr else "a 10x smaller train.lr"


def _sum_diverged(ctx: _AdviceContext) -> str:
    if ctx.neural and ctx.ev.get("non_finite_epoch") is not None:
        return f"Training diverged: the loss became NaN/inf at epoch {ctx.ev['non_finite_epoch']}."
    if ctx.neural:
        return f"Training diverged: the training loss grew to {ctx.num('train_loss_growth')}x its best value."
    return f"The fit blew up: non-finite or absurd training scores{ctx.scores()}."


def _adv_diverged(ctx: _AdviceContext) -> list[str]:
    if not ctx.neural:
        return [
            "Scale the features (prepare.scaling: standard); unscaled inputs make step-size based fits explode.",
            "Lower the estimator's learning rate / step size (e.g. model.eta0) or strengthen its regularization.",
            "Check the data for extreme values or a target on a huge scale.",
        ]
    return [
        f"Lower the learning rate about 10x: {_lr(ctx, 10)}.",
        "Clip the gradient norm: train.grad_clip=1.0.",
        "Keep the inputs scaled (prepare.scaling: standard) and check the data for extreme values.",
        "Warm up the learning rate (train.scheduler=onecycle) if a lower constant rate trains too slowly.",
    ]


def _sum_unstable(ctx: _AdviceContext) -> str:
    jumps, parts = int(ctx.ev.get("train_jumps") or 0), []
    if jumps >= UNSTABLE_MIN_JUMPS - 1:
        parts.append(f"the training loss jumped up in {jumps} epochs")
    if float(ctx.ev.get("train_regress") or 0) > UNSTABLE_REGRESS:
        parts.append(f"{'it' if parts else 'the training loss'} ended {ctx.num('train_regress', '.0%')} above its best")
    if not parts:
        parts.append(f"after epoch {ctx.ev.get('best_epoch')} the validation loss rose {ctx.num('val_rise', '.0%')} "
                     f"and the training loss rose {ctx.num('train_loss_change_after_best', '.0%')} with it")
    return f"Training is unstable: {' and '.join(parts)}; the learning rate is likely too high."


def _adv_unstable(ctx: _AdviceContext) -> list[str]:
    return [
        f"Lower the learning rate 3-10x: {_lr(ctx, 3)} or lower.",
        "Use a decaying schedule: train.scheduler=cosine or plateau.",
        "Use larger batches (double train.batch_size) to average out gradient noise.",
        "Clip the gradient norm: train.grad_clip=1.0.",
    ]


def _sum_overfitting(ctx: _AdviceContext) -> str:
    if ctx.turn is not None:
        return (
            f"Overfitting: the validation loss bottomed at epoch {ctx.turn} ({ctx.num('val_loss_min')}) and rose "
            f"{ctx.num('val_rise', '.0%')} after it while the training loss kept falling."
        )
    return f"Overfitting: the model fits training rows much better than new ones{ctx.scores()}."


def _adv_overfitting(ctx: _AdviceContext) -> list[str]:
    if ctx.neural:
        out = [
            "Add regularization: train.weight_decay=1e-4 (raise it 10x if that is not enough), dropout if the "
            "model has it (model.dropout=0.2-0.5), or train.l1 for sparse weights.",
            "Use a smaller network (fewer or narrower model.hidden_sizes).",
        ]
        if ctx.turn is not None:
            out.insert(0, f"Keep the weights from epoch {ctx.turn}: train.early_stopping=true "
                          "(the best epoch is restored).")  # fmt: skip
    else:
        knob = KNOBS.get(ctx.model or "")
        out = [
            f"Regularize {ctx.model}: {knob[0]}." if knob else
            "Regularize the model: shallower trees (model.max_depth), larger leaves (model.min_samples_leaf), "
            "fewer boosting rounds, a stronger penalty (smaller C / larger alpha) or more neighbours.",
            "Drop noisy or leaking features (see the feature importance).",
        ]  # fmt: skip
    return ctx.more_data() + out + ([] if ctx.more_data() else ["More training data, or data augmentation."])


def _sum_still_improving(ctx: _AdviceContext) -> str:
    which = "validation" if "val_loss_final" in ctx.ev else "training"
    return (
        f"Still improving: the {which} loss was falling {-float(ctx.ev['final_trend_per_epoch']):.1%} per epoch "
        f"when training stopped after {ctx.ev.get('epochs_run')} epochs."
    )


def _adv_still_improving(ctx: _AdviceContext) -> list[str]:
    run = int(ctx.ev.get("epochs_run") or 0)
    out = [f"Train longer: train.epochs={max(2 * run, run + 10)} (ran {run})."]
    if ctx.stopped_early:
        out.append("Early stopping cut it short: raise train.patience.")
    out.append("Converge faster with a larger learning rate or a schedule (train.scheduler=onecycle).")
    return out


def _sum_underfitting(ctx: _AdviceContext) -> str:
    return f"Underfitting: the model does not fit even its training data{ctx.scores()}."


def _adv_underfitting(ctx: _AdviceContext) -> list[str]:
    if ctx.neural:
        return [
            "More capacity: wider or deeper layers (model.hidden_sizes).",
            "Less regularization: lower train.weight_decay, train.l1 and dropout.",
            "If the training loss still creeps down, train longer or with a larger train.lr.",
            "Better features: the inputs may not carry the signal (check the data and feature importance).",
        ]
    knob = KNOBS.get(ctx.model or "")
    return [
        f"More capacity for {ctx.model}: {knob[1]}." if knob else
        "More capacity: deeper trees (model.max_depth), more boosting rounds or estimators, or a nonlinear "
        "model instead of a linear one; weaker regularization (larger C / smaller alpha).",
        "Better features: the inputs may not carry the signal (check the data and feature importance).",
    ]  # fmt: skip


def _sum_good_fit(ctx: _AdviceContext) -> str:
    return f"Good fit: the model learns the training data and generalizes to validation{ctx.scores()}."


def _adv_good_fit(ctx: _AdviceContext) -> list[str]:
    return ctx.more_data() + [
        "Nothing urgent. To gain more, tune hyperparameters (trainwell tune) or compare model families "
        "(trainwell compare).",
    ]


_SUMMARIES = {
    "diverged": _sum_diverged, "unstable": _sum_unstable, "overfitting": _sum_overfitting,
    "still_improving": _sum_still_improving, "underfitting": _sum_underfitting, "good_fit": _sum_good_fit,
}  # fmt: skip
_ADVICE = {
    "diverged": _adv_diverged, "unstable": _adv_unstable, "overfitting": _adv_overfitting,
    "still_improving": _adv_still_improving, "underfitting": _adv_underfitting, "good_fit": _adv_good_fit,
}  # fmt: skip


# ---------------------------------------------------------------- learning curve over training-set sizes


def learning_curve(
    estimator: Any, X: np.ndarray, y: np.ndarray, *, task: Task, cv: int = 3, sizes: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Train and cross-validated scores at growing training-set sizes, to tell "more data" from "more model".

    `estimator` is a scikit-learn estimator (or a wrapper exposing one as `.estimator`); it is cloned.
    Scores are accuracy for classification and R² for regression. Returns JSON-ready lists.
    """
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.model_selection import learning_curve as sk_learning_curve

    est = getattr(estimator, "estimator", estimator)
    splitter = (StratifiedKFold if task == "classification" else KFold)(cv, shuffle=True, random_state=seed)
    metric = "accuracy" if task == "classification" else "r2"
    n, tr, va = sk_learning_curve(
        est, X, y, train_sizes=np.linspace(0.1, 1.0, sizes), cv=splitter, scoring=metric,
        shuffle=True, random_state=seed, error_score=np.nan,
    )  # fmt: skip
    return {
        "metric": metric,
        "sizes": [int(s) for s in n],
        "train_scores": [_clean(s) for s in np.nanmean(tr, axis=1)],
        "val_scores": [_clean(s) for s in np.nanmean(va, axis=1)],
        "train_std": [_clean(s) for s in np.nanstd(tr, axis=1)],
        "val_std": [_clean(s) for s in np.nanstd(va, axis=1)],
    }
