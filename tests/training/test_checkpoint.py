"""Checkpoints: a run interrupted anywhere and resumed ends bit for bit where an uninterrupted one does;
damaged, altered or foreign checkpoints are refused; a divergence rolls back and retries with a lower rate."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from trainwell.artifacts import file_digest
from trainwell.config import TrainConfig
from trainwell.errors import UserError
from trainwell.training import checkpoint, loop
from trainwell.training.callbacks import Callback, TrainState
from trainwell.training.checkpoint import Checkpointing

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Net = Callable[..., nn.Module]
Cfg = Callable[..., TrainConfig]
STEPS = 7  # batches per epoch: 200 rows in batches of 32


@pytest.fixture(scope="module")
def data() -> Data:
    """200 train and 60 validation rows, 10 features, a nonlinear two-class target."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(260, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
    return X[:200], y[:200], X[200:], y[200:]


def build(batch_norm: bool = False, hidden: int = 32) -> nn.Module:
    """The same initial weights in every process, as NeuralModel builds them from the seed."""
    torch.manual_seed(0)
    norm = [nn.BatchNorm1d(hidden)] if batch_norm else []
    return nn.Sequential(nn.Linear(10, hidden), *norm, nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 2))


class Epochs(Callback):
    """Records which epochs this process trained."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_epoch_end(self, state: TrainState) -> None:
        self.seen.append(state.epoch)


def interrupt_at_step(module: nn.Module, step: int) -> None:
    """Ctrl-C during the `step`-th training batch (1-based), as a signal would arrive mid-epoch."""
    count = itertools.count(1)

    def hook(mod: nn.Module, _inputs: Any) -> None:
        if mod.training and next(count) == step:
            raise KeyboardInterrupt

    module.register_forward_pre_hook(hook)


def train(
    module: nn.Module, data: Data, cfg: TrainConfig, ckpt: Checkpointing | None = None, **kwargs: Any
) -> list[dict[str, float]]:
    X, y, Xv, yv = data
    history = loop.fit(module, X, y, val=(Xv, yv), task="classification", cfg=cfg, seed=0, checkpoints=ckpt, **kwargs)
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def options(**changes: Any) -> TrainConfig:
    base = {"batch_size": 32, "early_stopping": False, "device": "cpu", "deterministic": True, "epochs": 8,
            "checkpoint_every": 1, "checkpoint_minutes": None}
    return TrainConfig(**(base | changes))


CASES = {
    "sgd momentum, step schedule, dropout": (options(optimizer="sgd", momentum=0.9, scheduler="step", step_size=2,
                                                     gamma=0.5, lr=0.05), {}),
    "adamw, onecycle per batch, batch norm": (options(optimizer="adamw", scheduler="onecycle", lr=0.01,
                                                      weight_decay=0.01), {"batch_norm": True}),
    "sample weights, every 3 epochs": (options(optimizer="sgd", lr=0.05, epochs=7, checkpoint_every=3),
                                       {"sample_weight": True}),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stop_step", [1 * STEPS + 1, 3 * STEPS + 4, 7 * STEPS])  # after epoch 1, mid 4, mid 7
def test_an_interrupted_run_resumes_bit_for_bit(case: str, stop_step: int, data: Data, tmp_path: Path) -> None:
    cfg, extra = CASES[case]
    weights = np.random.default_rng(1).uniform(0.1, 2.0, 200) if extra.get("sample_weight") else None
    batch_norm = extra.get("batch_norm", False)
    whole = build(batch_norm)
    expected = train(whole, data, cfg, sample_weight=weights)

    ckpt = Checkpointing(tmp_path, resume=True)
    interrupted = build(batch_norm)
    interrupt_at_step(interrupted, stop_step)
    with pytest.raises(KeyboardInterrupt):  # never swallowed: the CLI reports it
        train(interrupted, data, cfg, ckpt, sample_weight=weights)
    resumed, epochs = build(batch_norm), Epochs()
    history = train(resumed, data, cfg, ckpt, sample_weight=weights, callbacks=[epochs])

    done = (stop_step - 1) // STEPS  # epochs finished before the interrupt
    saved = done - done % (cfg.checkpoint_every or 1)
    assert epochs.seen == list(range(saved + 1, cfg.epochs + 1))  # it continued from the last checkpoint
    assert history == expected
    assert_same_weights(resumed, whole)


def test_plateau_and_early_stopping_resume_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)  # random labels: the validation loss turns, so early stopping triggers
    X, y = rng.normal(size=(160, 10)).astype(np.float32), rng.integers(0, 2, 160)
    data = (X[:120], y[:120], X[120:], y[120:])
    cfg = options(optimizer="adam", scheduler="plateau", lr=0.05, epochs=40, early_stopping=True, patience=4)
    whole = build()
    expected = train(whole, data, cfg)
    stopped = len(expected)
    best = min(range(stopped), key=lambda i: expected[i]["val_loss"]) + 1
    assert stopped < 40 and len({row["lr"] for row in expected[best:]}) > 1  # the plateau cut the lr late on

    ckpt = Checkpointing(tmp_path, resume=True)
    interrupted = build()
    interrupt_at_step(interrupted, (best + 1) * 4 + 1)  # 120 rows: 4 batches; just after the best epoch
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, data, cfg, ckpt)
    resumed, epochs = build(), Epochs()
    assert train(resumed, data, cfg, ckpt, callbacks=[epochs]) == expected
    assert epochs.seen[0] == best + 2 and epochs.seen[-1] == stopped  # stopped after the resume
    assert_same_weights(resumed, whole)  # the best epoch's weights, restored across the interruption


def test_checkpoint_files(data: Data, tmp_path: Path) -> None:
    cfg = options(optimizer="sgd", scheduler="plateau", momentum=0.9, lr=0.05, epochs=5, checkpoint_every=2)
    train(build(), data, cfg, Checkpointing(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-00004.safetensors", "checkpoint.json"]

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    meta = json.loads((tmp_path / "checkpoint.json").read_text(), parse_constant=refuse)
    assert meta["epoch"] == 4 and len(meta["history"]) == 4
    assert meta["sha256"] == file_digest(tmp_path / meta["tensors"])
    assert meta["schedulers"][0]["state"]["mode_worse"] == {"__float__": "inf"}
    tensors = load_file(tmp_path / "checkpoint-00004.safetensors")
    assert {"module.0.weight", "best.0.weight", "optimizer.state.0.momentum_buffer", "rng.torch", "rng.shuffle"} <= set(
        tensors
    )
    assert tensors["rng.torch"].dtype == torch.uint8


def test_checkpoint_minutes(data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": 0.0}
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: clock["now"])
    saved: list[int] = []
    monkeypatch.setattr(checkpoint, "save_checkpoint", lambda _dir, snap: saved.append(snap.meta["epoch"]))

    class Minute(Callback):
        def on_epoch_end(self, state: TrainState) -> None:
            clock["now"] += 60.0  # each epoch takes a minute

    cfg = options(epochs=7, checkpoint_every=None, checkpoint_minutes=2.5)
    train(build(), data, cfg, Checkpointing(tmp_path), callbacks=[Minute()])
    assert saved == [3, 6]
    saved.clear()
    train(build(), data, options(epochs=7, checkpoint_every=3, checkpoint_minutes=2.0), Checkpointing(tmp_path),
          callbacks=[Minute()])  # fmt: skip
    assert saved == [2, 3, 5, 6]  # by time, by epoch, by time, by epoch


@pytest.fixture
def written(data: Data, tmp_path: Path) -> Path:
    """A checkpoint after 3 epochs (of 4: the last is the caller's to save); returns its tensors file."""
    train(build(), data, options(epochs=4), Checkpointing(tmp_path))
    return tmp_path / "checkpoint-00003.safetensors"


def test_an_altered_checkpoint_is_refused(written: Path, data: Data) -> None:
    raw = bytearray(written.read_bytes())
    raw[-1] ^= 1
    written.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=f"checkpoint {written}.*sha256"):
        train(build(), data, options(), Checkpointing(written.parent, resume=True))


def test_a_nan_in_the_checkpoint_is_refused(written: Path, data: Data) -> None:
    tensors = load_file(written)
    tensors["module.0.weight"][0, 0] = math.nan
    save_file(tensors, str(written))
    meta = json.loads((written.parent / "checkpoint.json").read_text())
    (written.parent / "checkpoint.json").write_text(json.dumps(meta | {"sha256": file_digest(written)}))
    with pytest.raises(UserError, match="module.0.weight.*NaN"):
        train(build(), data, options(), Checkpointing(written.parent, resume=True))


def test_a_checkpoint_of_another_model_is_refused(written: Path, data: Data) -> None:
    with pytest.raises(UserError, match=f"checkpoint {written} is from a different model; remove it or start a new"):
        train(build(hidden=16), data, options(), Checkpointing(written.parent, resume=True))
    with pytest.raises(UserError, match="another optimizer"):
        train(build(), data, options(optimizer="sgd"), Checkpointing(written.parent, resume=True))


def test_an_unreadable_or_edited_checkpoint_json_is_refused(written: Path, data: Data) -> None:
    path = written.parent / "checkpoint.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(meta | {"optimizer": {"type": "Adam"}}))  # no param_groups
    with pytest.raises(UserError, match=f"checkpoint {written} is malformed \\(KeyError"):
        train(build(), data, options(), Checkpointing(written.parent, resume=True))
    path.write_text("{not json")
    with pytest.raises(UserError, match="checkpoint.json is unreadable"):
        train(build(), data, options(), Checkpointing(written.parent, resume=True))


def test_without_a_checkpoint_resume_starts_fresh_and_a_fresh_run_clears_a_stale_one(
    written: Path, data: Data, tmp_path: Path
) -> None:
    cfg = options(epochs=3, checkpoint_every=None)
    plain, resumed = build(), build()
    expected = train(plain, data, cfg)
    assert train(resumed, data, cfg, Checkpointing(tmp_path / "empty", resume=True)) == expected
    assert_same_weights(resumed, plain)
    train(build(), data, cfg, Checkpointing(written.parent))  # resume=False: the old checkpoint must go
    assert list(written.parent.iterdir()) == []


def test_divergence_retries_with_a_lower_rate(wave: Data, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = wave  # sgd with momentum at lr 0.5: one good epoch, then NaN
    results = []
    for retries in (0, 3):
        module = net(2, 1)
        options = cfg(optimizer="sgd", lr=0.5, epochs=8, divergence_retries=retries, divergence_lr_factor=0.1)
        history = loop.fit(module, X, y, val=(Xv, yv), task="regression", cfg=options, seed=0)
        results.append((history, module))
    (stopped, _), (recovered, module) = results
    assert len(stopped) == 2 and stopped[-1]["diverged"] == 1.0 and "retry" not in stopped[-1]
    retried = [row for row in recovered if "retry" in row]
    assert len(retried) == 1 and retried[0]["epoch"] == 2 and retried[0]["diverged"] == 1.0
    assert retried[0]["lr"] == 0.5 and retried[0]["retry_lr"] == pytest.approx(0.05)
    kept = [row for row in recovered if "retry" not in row]
    assert [row["epoch"] for row in kept] == list(range(1, 9)) and kept[0] == recovered[0]  # epoch 2 again
    assert all(row["lr"] == pytest.approx(0.05) for row in kept[1:])
    assert torch.isfinite(torch.cat([p.flatten() for p in module.parameters()])).all()
    assert math.isfinite(kept[-1]["val_loss"]) and kept[-1]["val_loss"] < stopped[0]["val_loss"] / 10


def test_a_step_with_a_non_finite_gradient_leaves_the_weights_alone(wave: Data, net: Net, cfg: Cfg) -> None:
    X, y, _, _ = wave
    module = net(2, 1)
    before = [p.detach().clone() for p in module.parameters()]
    step = loop.make_train_step(module, loop.make_loss("mse", "regression"), torch.optim.SGD(module.parameters(), 0.1),
                                cfg(grad_clip=1.0))  # fmt: skip
    module[0].weight.register_hook(lambda g: g * math.inf)  # a finite loss with an infinite gradient
    assert math.isnan(step(torch.as_tensor(X[:32]), torch.as_tensor(y[:32])).item())
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    # without clipping nothing measures the gradient: the weights turn inf, the epoch-end check catches it
    history = loop.fit(module, X, y, task="regression", cfg=cfg(epochs=3), seed=0)
    assert len(history) == 1 and history[0]["diverged"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))  # best: the initial


def test_a_neural_model_checkpoints_and_resumes_through_its_build_context(data: Data, tmp_path: Path) -> None:
    from trainwell.models.neural import MLPParams, NeuralModel
    from trainwell.models.registry import BuildContext

    X, y, Xv, yv = data
    cfg = options(epochs=4, early_stopping=True)
    fresh = NeuralModel("mlp", MLPParams(), BuildContext("classification", 10, 2, 0, cfg)).fit(X, y, Xv, yv)
    first = BuildContext("classification", 10, 2, 0, cfg.model_copy(update={"epochs": 2}), checkpoint_dir=tmp_path)
    NeuralModel("mlp", MLPParams(), first).fit(X, y, Xv, yv)  # 2 of 4 epochs: stands in for an interrupted run
    ctx = BuildContext("classification", 10, 2, 0, cfg, checkpoint_dir=tmp_path, resume=True)
    assert (tmp_path / "checkpoint.json").is_file()
    resumed = NeuralModel("mlp", MLPParams(), ctx).fit(X, y, Xv, yv)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert_same_weights(resumed.module_, fresh.module_)  # type: ignore[arg-type]


def test_a_damaged_model_json_is_a_user_error(data: Data, tmp_path: Path) -> None:
    from trainwell.models.neural import MLPParams, NeuralModel
    from trainwell.models.registry import BuildContext

    X, y, _, _ = data
    NeuralModel("mlp", MLPParams(), BuildContext("classification", 10, 2, 0, options(epochs=1))).fit(X, y).save(
        tmp_path
    )
    (tmp_path / "model.json").write_text('{"name": "mlp", "task": ')
    with pytest.raises(UserError, match=f"{tmp_path / 'model.json'} is damaged"):
        NeuralModel.load(tmp_path)
    (tmp_path / "model.json").unlink()
    with pytest.raises(UserError, match="model.json not found"):
        NeuralModel.load(tmp_path)
