"""Built-in callbacks: the progress bar stays silent off a terminal; checkpoints are complete and loadable."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from trainwell.config import TrainConfig
from trainwell.training import loop
from trainwell.training.callbacks import Checkpoint, ProgressBar

Net = Callable[..., nn.Module]
Cfg = Callable[..., TrainConfig]


@pytest.mark.parametrize("quiet", [True, False])  # False: pytest's captured stdout is not a terminal
def test_progress_bar_is_silent_when_quiet_or_not_a_tty(
    quiet: bool, moons: Any, net: Net, cfg: Cfg, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y, Xv, yv = moons
    bar = ProgressBar(quiet=quiet)
    loop.fit(net(), X, y, val=(Xv, yv), task="classification", cfg=cfg(epochs=2), seed=0, callbacks=[bar])
    assert capsys.readouterr() == ("", "")


def test_progress_bar_shows_loss_and_metric_on_a_terminal(moons: Any, net: Net, cfg: Cfg) -> None:
    X, y, Xv, yv = moons
    buffer = io.StringIO()
    bar = ProgressBar(console=Console(file=buffer, force_terminal=True, width=200))
    loop.fit(net(), X, y, val=(Xv, yv), task="classification", cfg=cfg(epochs=2), seed=0, callbacks=[bar])
    assert "2/2" in buffer.getvalue() and "val_loss" in buffer.getvalue() and "val_accuracy" in buffer.getvalue()
    assert ProgressBar(quiet=True, console=Console(file=io.StringIO(), force_terminal=True))._progress is None


def test_checkpoint_writes_the_best_weights_atomically(moons: Any, net: Net, cfg: Cfg, tmp_path: Path) -> None:
    X, y, Xv, yv = moons
    path = tmp_path / "ckpt" / "best.safetensors"
    module = net()
    options = cfg(epochs=40, early_stopping=True, patience=3, lr=0.05)
    history = loop.fit(module, X, y, val=(Xv, yv), task="classification", cfg=options, seed=0,
                       callbacks=[Checkpoint(path)])  # fmt: skip
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta == {"epoch": best + 1, "monitor": "val_loss", "value": history[best]["val_loss"]}
    with safe_open(str(path), "pt") as f:
        assert f.metadata()["epoch"] == str(best + 1)
    # early stopping restored the best weights in memory: the checkpoint holds the same ones
    fresh = net(seed=1)
    fresh.load_state_dict(load_file(path))
    for a, b in zip(fresh.state_dict().values(), module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.json", "best.safetensors"]  # no temp files
