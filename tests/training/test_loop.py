"""The training loop: losses, optimizers, schedules, monitoring, early stopping, divergence, seeds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainwell.config import TrainConfig
from trainwell.errors import UserError
from trainwell.training import loop
from trainwell.training.callbacks import Callback, TrainState

Net = Callable[..., nn.Module]
Cfg = Callable[..., TrainConfig]


def loss_of(module: nn.Module, X: np.ndarray, y: np.ndarray, task: str, loss: str = "auto") -> float:
    dtype = torch.int64 if task == "classification" else torch.float32
    with torch.no_grad():
        return loop.make_loss(loss, task)(module(torch.as_tensor(X)), torch.as_tensor(y, dtype=dtype)).item()


def weights(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def without_seconds(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_history_rows(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons
    history = loop.fit(net(), X, y, val=(Xv, yv), task="classification", cfg=cfg(epochs=3), seed=0)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    expected = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "seconds"]
    assert all(list(row) == expected for row in history)
    assert history[-1]["val_accuracy"] > 0.8 and history[-1]["lr"] == 0.01


def test_without_validation_the_train_loss_is_monitored(wave: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = wave
    history = loop.fit(net(2, 1), X, y, task="regression", cfg=cfg(epochs=3, early_stopping=True), seed=0)
    assert list(history[0]) == ["epoch", "train_loss", "train_rmse", "lr", "seconds"]
    # mse on standardised targets: rmse is the square root of the loss when nothing is unscaled
    assert history[-1]["train_rmse"] == pytest.approx(math.sqrt(history[-1]["train_loss"]), rel=1e-4)


def test_rmse_is_reported_in_original_units(wave: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = wave
    history = loop.fit(
        net(2, 1), X, y, val=(Xv, yv), task="regression", cfg=cfg(epochs=2), seed=0, unscale=lambda t: t * 100 + 7
    )
    assert history[-1]["val_rmse"] == pytest.approx(100 * math.sqrt(history[-1]["val_loss"]), rel=1e-4)


@pytest.mark.parametrize(
    ("loss", "task", "n_out"),
    [("mse", "regression", 1), ("mae", "regression", 1), ("huber", "regression", 1), ("auto", "regression", 1),
     ("cross_entropy", "classification", 2), ("bce", "classification", 2), ("bce", "classification", 1)],
)  # fmt: skip
def test_every_loss_lowers_the_loss(
    loss: str, task: str, n_out: int, moons: Any, wave: Any, net: Net, cfg: Cfg
) -> None:
    X, y, _, _ = moons if task == "classification" else wave
    module = net(2, n_out)
    before = loss_of(module, X, y, task, loss)
    history = loop.fit(module, X, y, task=task, cfg=cfg(loss=loss, epochs=3), seed=0)
    assert history[-1]["train_loss"] < 0.8 * before
    if task == "classification":
        assert history[-1]["train_accuracy"] > 0.8


def test_bce_on_two_logits_equals_softmax_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(50, 2), torch.randint(0, 2, (50,))
    bce = loop.make_loss("bce", "classification")(logits, y)
    torch.testing.assert_close(bce, F.cross_entropy(logits, y))
    smoothed = loop.make_loss("cross_entropy", "classification", label_smoothing=0.2)(logits, y)
    torch.testing.assert_close(smoothed, F.cross_entropy(logits, y, label_smoothing=0.2))
    torch.testing.assert_close(
        loop.make_loss("bce", "classification", 0.2)(logits, y), F.cross_entropy(logits, y, label_smoothing=0.2)
    )


@pytest.mark.parametrize(("loss", "task"), [("mse", "classification"), ("huber", "classification"),
                                            ("cross_entropy", "regression"), ("bce", "regression")])  # fmt: skip
def test_a_loss_that_does_not_fit_the_task_is_a_user_error(loss: str, task: str) -> None:
    with pytest.raises(UserError, match=r"train\.loss"):
        loop.make_loss(loss, task)


def test_bce_with_three_classes_is_a_user_error(net: Net, cfg: Cfg) -> None:
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    with pytest.raises(UserError, match="bce is for two classes"):
        loop.fit(net(2, 3), X, np.arange(40) % 3, task="classification", cfg=cfg(loss="bce"), seed=0)


@pytest.mark.parametrize(
    "options",
    [{"optimizer": "sgd", "lr": 0.1}, {"optimizer": "sgd", "lr": 0.1, "nesterov": True}, {"optimizer": "adam"},
     {"optimizer": "adamw", "weight_decay": 0.01}, {"optimizer": "rmsprop", "lr": 0.003}],
)  # fmt: skip
def test_every_optimizer_lowers_the_loss(options: dict[str, Any], moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = moons
    module = net()
    before = loss_of(module, X, y, "classification")
    history = loop.fit(module, X, y, task="classification", cfg=cfg(epochs=3, **options), seed=0)
    assert history[-1]["train_loss"] < 0.8 * before


def test_weight_decay_skips_biases(net: Net, cfg: Cfg) -> None:
    optimizer = loop.make_optimizer(net(), cfg(weight_decay=0.1))
    decay = {p.ndim: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert decay == {2: 0.1, 1: 0.0}


def test_nesterov_without_momentum_is_a_user_error(net: Net, cfg: Cfg) -> None:
    with pytest.raises(UserError, match=r"train\.momentum"):
        loop.make_optimizer(net(), cfg(optimizer="sgd", nesterov=True, momentum=0.0))


@pytest.mark.parametrize("scheduler", ["none", "step", "cosine", "onecycle", "plateau"])
def test_every_scheduler_lowers_the_loss(scheduler: str, moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons
    module = net()
    before = loss_of(module, X, y, "classification")
    options = cfg(scheduler=scheduler, epochs=5, lr=0.02, step_size=2, gamma=0.5)
    history = loop.fit(module, X, y, val=(Xv, yv), task="classification", cfg=options, seed=0)
    assert history[-1]["train_loss"] < 0.8 * before
    lrs = [row["lr"] for row in history]
    if scheduler == "step":
        assert lrs == pytest.approx([0.02, 0.02, 0.01, 0.01, 0.005])
    elif scheduler == "cosine":
        assert lrs[0] == 0.02 and all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    elif scheduler == "onecycle":  # warms up from lr / 25 towards max_lr = lr
        assert lrs[0] == pytest.approx(0.02 / 25) and lrs[1] > lrs[0] and max(lrs) <= 0.02


def test_plateau_lowers_the_rate_when_the_monitor_stalls(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons  # lr so small that no epoch improves by the scheduler's threshold
    options = cfg(scheduler="plateau", lr=1e-6, epochs=5, patience=2, gamma=0.1)
    history = loop.fit(net(), X, y, val=(Xv, yv), task="classification", cfg=options, seed=0)
    assert history[0]["lr"] == 1e-6 and history[-1]["lr"] == pytest.approx(1e-7)


def test_plateau_with_gamma_one_is_a_user_error(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = moons
    with pytest.raises(UserError, match=r"train\.gamma"):
        loop.fit(net(), X, y, task="classification", cfg=cfg(scheduler="plateau", gamma=1.0), seed=0)


@pytest.mark.parametrize(
    ("name", "task", "has_val", "expected"),
    [("auto", "classification", True, ("val_loss", "min")), ("auto", "regression", False, ("train_loss", "min")),
     ("accuracy", "classification", True, ("val_accuracy", "max")),
     ("val_accuracy", "classification", False, ("train_accuracy", "max")),
     ("train_loss", "classification", True, ("train_loss", "min")), ("rmse", "regression", True, ("val_rmse", "min"))],
)  # fmt: skip
def test_resolve_monitor(name: str, task: str, has_val: bool, expected: tuple[str, str]) -> None:
    assert loop.resolve_monitor(name, task, has_val=has_val) == expected


def test_unknown_monitor_is_a_user_error_listing_valid_names(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons
    with pytest.raises(UserError, match=r'train\.monitor "val_acc".*did you mean.*val_loss'):
        loop.fit(net(), X, y, val=(Xv, yv), task="classification", cfg=cfg(monitor="val_acc"), seed=0)
    with pytest.raises(UserError, match="rmse"):
        loop.resolve_monitor("accuracy", "regression", has_val=True)


def test_early_stopping_stops_and_restores_the_best_weights(net: Net, cfg: Cfg) -> None:
    rng = np.random.default_rng(0)  # random labels: memorising them makes the validation loss climb
    X, y = rng.normal(size=(120, 2)).astype(np.float32), rng.integers(0, 2, 120)
    module = net()
    options = cfg(epochs=200, lr=0.05, optimizer="adam", early_stopping=True, patience=4)
    history = loop.fit(module, X[:80], y[:80], val=(X[80:], y[80:]), task="classification", cfg=options, seed=0)
    val_losses = [row["val_loss"] for row in history]
    best = int(np.argmin(val_losses))
    assert len(history) < 200 and len(history) == best + 1 + 4
    assert loss_of(module.eval(), X[80:], y[80:], "classification") == pytest.approx(val_losses[best], abs=1e-6)


def test_early_stopping_on_accuracy_keeps_the_highest(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons
    options = cfg(epochs=30, early_stopping=True, patience=2, monitor="accuracy")
    history = loop.fit(net(), X, y, val=(Xv, yv), task="classification", cfg=options, seed=0)
    accuracies = [row["val_accuracy"] for row in history]
    assert len(history) < 30 and accuracies.index(max(accuracies)) == len(history) - 3


def test_same_seed_same_history_and_weights_different_seed_differs(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons
    runs = []
    for seed in (0, 0, 1):
        module = net(dropout=0.3)
        history = loop.fit(module, X, y, val=(Xv, yv), task="classification", cfg=cfg(epochs=3), seed=seed)
        runs.append((without_seconds(history), weights(module)))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0] and not torch.equal(runs[0][1], runs[2][1])


def test_deterministic_mode_is_restored_after_fit(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = moons
    assert not torch.are_deterministic_algorithms_enabled()
    loop.fit(net(), X, y, task="classification", cfg=cfg(epochs=1, deterministic=True), seed=0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_divergence_stops_cleanly_and_keeps_finite_weights(wave: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = wave
    module = net(2, 1)
    options = cfg(optimizer="sgd", lr=10.0, epochs=20)
    history = loop.fit(module, X * 10, y * 10, val=(Xv * 10, yv * 10), task="regression", cfg=options, seed=0)
    assert len(history) < 20 and history[-1]["diverged"] == 1.0
    assert not math.isfinite(history[-1]["train_loss"]) and all("diverged" not in row for row in history[:-1])
    assert torch.isfinite(weights(module)).all() and torch.isfinite(module(torch.as_tensor(Xv))).all()


def test_l1_shrinks_the_weight_matrices(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = moons
    norms = []
    for l1 in (0.0, 0.01):
        module = net()
        loop.fit(module, X, y, task="classification", cfg=cfg(epochs=4, l1=l1), seed=0)
        norms.append(sum(p.abs().sum().item() for p in module.parameters() if p.ndim == 2))
    assert norms[1] < 0.8 * norms[0]


def test_grad_clip_bounds_each_step(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = moons  # plain sgd, lr 1: each step moves the weights by at most the clip norm
    moved = []
    for clip in (None, 1e-3):
        module = net()
        start = weights(module)
        options = cfg(optimizer="sgd", momentum=0.0, lr=1.0, epochs=1, grad_clip=clip)
        loop.fit(module, X, y, task="classification", cfg=options, seed=0)
        moved.append((weights(module) - start).norm().item())
    steps = loop._n_batches(len(X), 32)
    assert moved[1] <= steps * 1e-3 * (1 + 1e-4) < moved[0]


def test_a_one_row_last_batch_is_dropped_so_batch_norm_trains(cfg: Cfg) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    X = np.random.default_rng(0).normal(size=(65, 2)).astype(np.float32)
    history = loop.fit(module, X, (X[:, 0] > 0).astype(int), task="classification", cfg=cfg(epochs=2), seed=0)
    assert len(history) == 2 and loop._n_batches(65, 32) == 2


def test_callbacks_see_every_hook_and_can_stop(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = moons

    class Recorder(Callback):
        calls: list[str] = []

        def on_fit_start(self, state: TrainState) -> None:
            self.calls.append("start")

        def on_epoch_end(self, state: TrainState) -> None:
            self.calls.append(f"epoch {state.epoch} best {state.best_epoch}")
            state.stop = state.epoch == 2

        def on_fit_end(self, state: TrainState) -> None:
            self.calls.append("end")

    history = loop.fit(net(), X, y, task="classification", cfg=cfg(epochs=9), seed=0, callbacks=[Recorder()])
    assert len(history) == 2
    assert Recorder.calls == ["start", "epoch 1 best 1", "epoch 2 best 2", "end"]


def test_mismatched_shapes_are_a_user_error(net: Net, cfg: Cfg) -> None:
    X = np.zeros((10, 2), np.float32)
    with pytest.raises(UserError, match="do not match"):
        loop.fit(net(), X, np.zeros(9, int), task="classification", cfg=cfg(), seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_a_gpu_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"train\.device"):
        loop.resolve_device("cuda")
