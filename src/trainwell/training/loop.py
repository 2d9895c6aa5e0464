"""The training loop: tensors in memory, seeded shuffles, one history row per epoch.

`fit` is the whole algorithm and reads top to bottom. The helpers below it turn config names into torch
objects (loss, optimizer, schedule, monitor) and score a module on a split; `checkpoint.py` holds what a
resumable checkpoint saves and restores.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from trainwell.config import Task, TrainConfig
from trainwell.errors import UserError, unknown
from trainwell.training.callbacks import Callback, EarlyStopping, TrainState
from trainwell.training.checkpoint import (
    Checkpointer,
    Checkpointing,
    Resumable,
    Snapshot,
    load_checkpoint,
    remove_checkpoint,
)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Unscale = Callable[[torch.Tensor], torch.Tensor]
EVAL_BATCH = 1024  # rows per forward pass when scoring or predicting; no gradients, so it can be large


def fit(
    module: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    task: Task,
    cfg: TrainConfig,
    seed: int,
    callbacks: Sequence[Callback] = (),
    unscale: Unscale | None = None,
    sample_weight: np.ndarray | None = None,
    checkpoints: Checkpointing | None = None,
) -> list[dict[str, float]]:
    """Train `module` in place; return one history row per epoch.

    The module ends with the best epoch's weights when early stopping is on or training diverged (a
    non-finite loss, gradient or weight stops it and marks the last row `diverged`), else with the last
    epoch's weights. With `cfg.divergence_retries`, a divergence first rolls back to the best epoch so far
    with lower learning rates (its row stays, marked `retry` with the new `retry_lr`).

    Args:
        X, y: training features (N, ...) float32 and targets (N,): class indices or (scaled) values.
        val: optional (X_val, y_val); without it the train loss/metric is monitored.
        task: "classification" (module returns (B, K) logits, or (B, 1) for bce) or "regression" (B, 1).
        cfg: optimizer, loss, schedule, early stopping, checkpoint and device settings.
        seed: fixes the shuffling order and dropout masks (initial weights are the caller's to seed).
        callbacks: hooks that see the TrainState; early stopping is added from `cfg`.
        unscale: maps regression outputs and targets back to original units before the rmse metric.
        sample_weight: per-row weights; each epoch then draws its rows with replacement in proportion to
            them (weighted resampling), so every loss and batch size works unchanged.
        checkpoints: where to write resumable checkpoints (when `cfg.checkpoint_every`/`_minutes` say) and
            whether to continue from the one there; with `cfg.deterministic` on the CPU a resumed run ends
            bit for bit where an uninterrupted one would.
    """
    device = resolve_device(cfg.device)
    loss_fn = make_loss(cfg.loss, task, cfg.label_smoothing)
    train = _tensors(X, y, task, device)  # (N, F), (N,)
    valid = _tensors(*val, task, device) if val is not None and len(val[0]) else None
    monitor, mode = resolve_monitor(cfg.monitor, task, has_val=valid is not None)
    splits = {"train": train} | ({"val": valid} if valid is not None else {})
    score = partial(_score, module, loss_fn=loss_fn, task=task, unscale=unscale)
    module.to(device)
    optimizer = make_optimizer(module, cfg)
    step = make_train_step(module, loss_fn, optimizer, cfg)
    schedule = make_schedule(optimizer, cfg, _n_batches(len(train[0]), cfg.batch_size), mode)
    state = TrainState(module, optimizer, monitor, mode, cfg.epochs, best_weights=_copy_weights(module))
    hooks = [*callbacks, EarlyStopping(cfg.patience)] if cfg.early_stopping else list(callbacks)
    weights = torch.as_tensor(sample_weight, dtype=torch.float64) if sample_weight is not None else None
    gen = torch.Generator().manual_seed(seed)  # the shuffling order follows the seed...
    torch.manual_seed(seed)  # ...and so do dropout masks
    parts = Resumable(module, optimizer, schedule.schedulers, gen, device)  # what a checkpoint holds
    saver = _start_checkpoints(checkpoints, cfg, parts, state)  # restores the state when resuming
    with _determinism(cfg.deterministic, device):
        try:
            good = parts.capture(state) if cfg.divergence_retries else None  # where a divergence retry restarts
            _call(hooks, "on_fit_start", state)
            while state.epoch < cfg.epochs and not state.stop:
                start, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
                module.train()
                running = torch.zeros((), device=device)  # summed on device: one sync per epoch
                for idx in _batches(len(train[0]), cfg.batch_size, gen, device, weights):
                    running += step(train[0][idx], train[1][idx]) * len(idx)  # (B, F), (B,)
                    schedule.after_batch()
                loss = running.item() if _all_finite(module) else math.nan  # NaN weights: diverged too
                row = {"epoch": state.epoch + 1, **_scores(score, splits, loss, metric_name(task))}
                row |= {"lr": lr, "seconds": time.perf_counter() - start}
                # a NaN/inf step, or weights so large that a whole split's loss overflows
                diverged = not all(math.isfinite(row.get(k, 0.0)) for k in ("train_loss", "val_loss"))
                if good is not None and diverged and state.retries < cfg.divergence_retries:
                    good = _retry(parts, good, state, row, cfg.divergence_lr_factor)
                    continue  # again from the best epoch, slower; callbacks see only kept epochs
                state.epoch = row["epoch"]
                state.history.append(row)
                if diverged:  # keep the last finite best, stop cleanly
                    row["diverged"] = 1.0
                    module.load_state_dict(state.best_weights)
                    state.stop = True
                else:
                    if state.is_better(row[monitor]):
                        state.best_value, state.best_epoch = row[monitor], state.epoch
                        state.best_weights = _copy_weights(module)
                    schedule.after_epoch(row[monitor])
                _call(hooks, "on_epoch_end", state)
                if state.stop:
                    break
                if good is not None and state.best_epoch == state.epoch:  # a retry restarts from the best epoch
                    good = parts.capture(state)
                if saver is not None and state.epoch < cfg.epochs and saver.due(state.epoch):  # the last: the caller's
                    saver.save(parts.capture(state))
        finally:
            _call(hooks, "on_fit_end", state)
    return state.history


def _start_checkpoints(
    checkpoints: Checkpointing | None, cfg: TrainConfig, parts: Resumable, state: TrainState
) -> Checkpointer | None:
    """Restore the checkpoint when resuming from one, else clear a stale one; the saver, if any is due."""
    if checkpoints is None:
        return None
    found = load_checkpoint(checkpoints.directory) if checkpoints.resume else None
    if found is not None:
        parts.restore(found, state)
    else:  # a fresh run: an older checkpoint there must never be resumed into this one
        remove_checkpoint(checkpoints.directory)
    if cfg.checkpoint_every is None and cfg.checkpoint_minutes is None:
        return None
    return Checkpointer(checkpoints.directory, cfg.checkpoint_every, cfg.checkpoint_minutes)


def _retry(parts: Resumable, good: Snapshot, state: TrainState, row: dict[str, float], factor: float) -> Snapshot:
    """Roll back to the best epoch so far with every learning rate times `factor`; keep the diverged row."""
    parts.restore(good, state)
    state.retries += 1
    new_lr = scale_lr(parts.optimizer, parts.schedulers, factor)
    state.history.append(row | {"diverged": 1.0, "retry": float(state.retries), "retry_lr": new_lr})
    return parts.capture(state)  # the next retry starts from here, lower rates and this row included


def make_train_step(
    module: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer, cfg: TrainConfig
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """One optimisation step on a batch: forward, L1 penalty, backward, clip, update; returns the data loss.

    A step whose loss (or, when clipping measures it anyway, gradient norm) is not finite leaves the weights
    alone and returns NaN, which marks the epoch diverged. That check reads one scalar per step (~1% on the
    digits MLP; a sync per step on a GPU); measuring the gradient norm without clipping would cost ~10%, so
    there the epoch-end weight check catches a non-finite gradient under a finite loss instead.
    """
    penalised = _penalised(module)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(module(xb), yb)
        total = loss + cfg.l1 * sum(p.abs().sum() for p in penalised) if cfg.l1 else loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        check = total.detach()
        if cfg.grad_clip is not None:
            check = check + nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        if not torch.isfinite(check):
            return torch.full_like(loss.detach(), math.nan)
        optimizer.step()
        return loss.detach()

    return step


def scale_lr(optimizer: torch.optim.Optimizer, schedulers: Sequence[LRScheduler], factor: float) -> float:
    """Multiply every learning rate by `factor`, the schedules' own copies too; return param group 0's lr."""
    for group in optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):  # the last three: what schedules start from
            if key in group:
                group[key] *= factor
    for scheduler in schedulers:
        scheduler.base_lrs = [lr * factor for lr in getattr(scheduler, "base_lrs", [])]
        scheduler._last_lr = [lr * factor for lr in scheduler._last_lr]  # type: ignore[attr-defined]
    return optimizer.param_groups[0]["lr"]


# ---------------------------------------------------------------- config names → torch objects

REGRESSION_LOSSES: dict[str, LossFn] = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}
CLASSIFICATION_LOSSES = ("cross_entropy", "bce")


def make_loss(name: str, task: Task, label_smoothing: float = 0.0) -> LossFn:
    """The loss for `train.loss`; a loss that does not fit the task is a UserError."""
    if name == "auto":
        name = "cross_entropy" if task == "classification" else "mse"
    fits = CLASSIFICATION_LOSSES if task == "classification" else tuple(REGRESSION_LOSSES)
    if name not in fits:
        raise UserError(f'train.loss "{name}" does not fit {task}; use auto or one of: {", ".join(fits)}')
    if task == "regression":
        base = REGRESSION_LOSSES[name]
        return lambda out, y: base(out.reshape(len(out)), y)  # (B, 1) → (B,)
    if name == "cross_entropy":
        return partial(F.cross_entropy, label_smoothing=label_smoothing)
    return partial(_bce, label_smoothing=label_smoothing)


def _bce(out: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Binary cross-entropy on one logit, or on z1 - z0 for two logits (equal to 2-class softmax)."""
    target = y.to(out.dtype) * (1 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(_binary_logit(out), target)


def _binary_logit(out: torch.Tensor) -> torch.Tensor:
    if out.ndim == 2 and out.shape[1] == 2:
        return out[:, 1] - out[:, 0]  # (B,)
    if out.ndim == 2 and out.shape[1] == 1:
        return out[:, 0]
    raise UserError(f"train.loss bce is for two classes, the model has {out.shape[-1]}; use cross_entropy")


OPTIMIZERS: dict[str, Callable[[list[dict], TrainConfig], torch.optim.Optimizer]] = {
    "sgd": lambda g, c: torch.optim.SGD(g, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov),
    "adam": lambda g, c: torch.optim.Adam(g, lr=c.lr),
    "adamw": lambda g, c: torch.optim.AdamW(g, lr=c.lr),  # weight_decay is decoupled here
    "rmsprop": lambda g, c: torch.optim.RMSprop(g, lr=c.lr, momentum=c.momentum),
}


def make_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer for `train.optimizer`; weight decay applies to weight matrices, not biases or norms."""
    if cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0:
        raise UserError("train.nesterov needs train.momentum > 0")
    penalised = {id(p) for p in _penalised(module)}
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) in penalised], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if id(p) not in penalised], "weight_decay": 0.0},
    ]
    return OPTIMIZERS[cfg.optimizer]([g for g in groups if g["params"]], cfg)


def _penalised(module: nn.Module) -> list[nn.Parameter]:
    """Weight matrices and kernels: what L1 and L2 penalties shrink."""
    return [p for p in module.parameters() if p.requires_grad and p.ndim >= 2]


@dataclass
class Schedule:
    """The lr scheduler for `train.scheduler`, if any, and when the loop steps it."""

    scheduler: LRScheduler | None = None
    per_batch: bool = False  # onecycle steps after every batch, the others after every epoch
    monitored: bool = False  # plateau's epoch step takes the monitored value

    @property
    def schedulers(self) -> list[LRScheduler]:
        """What a checkpoint saves and a divergence retry rescales."""
        return [self.scheduler] if self.scheduler is not None else []

    def after_batch(self) -> None:
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def after_epoch(self, value: float) -> None:
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step(value) if self.monitored else self.scheduler.step()  # type: ignore[arg-type]


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, n_batches: int, mode: str) -> Schedule:
    """The scheduler for `train.scheduler`; "none" gives a Schedule that does nothing."""
    sched = torch.optim.lr_scheduler
    if cfg.scheduler == "onecycle":  # per batch; momentum left as configured
        total = cfg.epochs * n_batches
        return Schedule(sched.OneCycleLR(optimizer, cfg.lr, total_steps=total, cycle_momentum=False), per_batch=True)
    if cfg.scheduler == "plateau":
        if cfg.gamma >= 1:
            raise UserError("train.gamma must be below 1 for the plateau scheduler (it multiplies the lr)")
        # half the early-stopping patience, so a lower rate gets its chance before training stops
        plateau = sched.ReduceLROnPlateau(optimizer, mode, factor=cfg.gamma, patience=max(1, cfg.patience // 2))
        return Schedule(plateau, monitored=True)
    if cfg.scheduler == "step":
        return Schedule(sched.StepLR(optimizer, cfg.step_size, gamma=cfg.gamma))
    if cfg.scheduler == "cosine":
        return Schedule(sched.CosineAnnealingLR(optimizer, T_max=cfg.epochs))
    return Schedule()


def metric_name(task: Task) -> str:
    """The one metric in every history row: accuracy, or rmse in the target's original units."""
    return "accuracy" if task == "classification" else "rmse"


def resolve_monitor(name: str, task: Task, *, has_val: bool) -> tuple[str, Literal["min", "max"]]:
    """The history key for `train.monitor` and whether it is minimised; train_* when there is no val."""
    metric = metric_name(task)
    valid = ["auto", "loss", metric] + [f"{s}_{m}" for s in ("val", "train") for m in ("loss", metric)]
    if name not in valid:
        raise unknown("train.monitor", name, valid)
    base = "loss" if name == "auto" else name.removeprefix("val_").removeprefix("train_")
    split = "val" if has_val and not name.startswith("train_") else "train"
    return f"{split}_{base}", "max" if base == "accuracy" else "min"


def resolve_device(name: str) -> torch.device:
    """`train.device`: auto picks a GPU when one is visible."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError('train.device is "cuda" but no GPU is visible; use auto or cpu')
    return torch.device(name)


# ---------------------------------------------------------------- batches, scoring, state


def forward_in_batches(module: nn.Module, X: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Eval-mode outputs (N, out) for many rows, without gradients, restoring the module's mode after."""
    was_training = module.training
    module.eval()
    with torch.inference_mode():
        out = torch.cat([module(xb) for xb in X.split(batch_size)]) if len(X) else module(X)
    module.train(was_training)
    return out


def _score(
    module: nn.Module, X: torch.Tensor, y: torch.Tensor, *, loss_fn: LossFn, task: Task, unscale: Unscale | None
) -> tuple[float, float]:
    """(loss, metric) of `module` on one split, in eval mode."""
    out = forward_in_batches(module, X)  # (N, K) or (N, 1)
    loss = loss_fn(out, y).item()
    if task == "classification":
        pred = (_binary_logit(out) > 0).long() if out.shape[1] == 1 else out.argmax(1)  # (N,)
        return loss, (pred == y).double().mean().item()
    pred, target = out.reshape(len(out)), y
    if unscale is not None:
        pred, target = unscale(pred), unscale(target)
    return loss, (pred - target).double().square().mean().sqrt().item()


def _scores(
    score: Callable[..., tuple[float, float]], splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    running: float, metric: str,
) -> dict[str, float]:  # fmt: skip
    """train_loss, val_loss, train_<metric>, val_<metric>; a non-finite running loss skips scoring."""
    if math.isfinite(running):
        results = {name: score(*data) for name, data in splits.items()}
    else:  # diverged weights: their scores mean nothing, record the loss that blew up
        results = {name: (running if name == "train" else math.nan, math.nan) for name in splits}
    return {f"{s}_loss": r[0] for s, r in results.items()} | {f"{s}_{metric}": r[1] for s, r in results.items()}


def _tensors(X: np.ndarray, y: np.ndarray, task: Task, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise UserError(f"features {X.shape} and target {y.shape} do not match: need (N, F) and (N,)")
    dtype = torch.int64 if task == "classification" else torch.float32
    return torch.as_tensor(X, device=device), torch.as_tensor(y, dtype=dtype, device=device)


def _batches(n: int, batch_size: int, gen: torch.Generator, device: torch.device,
             weights: torch.Tensor | None = None) -> list[torch.Tensor]:  # fmt: skip
    """Shuffled index batches (drawn in proportion to `weights` when given); a last batch of one row is
    dropped (batch norm cannot train on it)."""
    order = torch.randperm(n, generator=gen) if weights is None else torch.multinomial(weights, n, True, generator=gen)
    chunks = order.to(device).split(batch_size)
    return list(chunks[:-1]) if len(chunks) > 1 and len(chunks[-1]) == 1 else list(chunks)


def _n_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size) - (1 if n > batch_size and n % batch_size == 1 else 0)


def _copy_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _all_finite(module: nn.Module) -> bool:
    """Whether every floating weight and buffer is finite: one device sync, once per epoch."""
    floats = [t.isfinite().all() for t in module.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack(floats).all()) if floats else True


def _call(hooks: Sequence[Callback], hook: str, state: TrainState) -> None:
    for callback in hooks:
        getattr(callback, hook)(state)


@contextmanager
def _determinism(on: bool, device: torch.device) -> Iterator[None]:
    """Deterministic algorithms for the duration of `fit` only; the caller's setting comes back after."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if on:
        if device.type == "cuda":  # cuBLAS refuses deterministic mode without a fixed workspace
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
