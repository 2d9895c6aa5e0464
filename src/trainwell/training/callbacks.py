"""Training callbacks: three hooks, each handed the one `TrainState`, so the loop never special-cases them.

A callback reads the state (history, best epoch, module) and may set `state.stop = True`. The loop keeps
the best weights itself, so restoring or checkpointing them is a few lines here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from safetensors.torch import save_file
from torch import nn

from trainwell.files import atomic_path, write_json


@dataclass
class TrainState:
    """Everything a callback may read during `fit`; setting `stop = True` ends training after this epoch."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    monitor: str  # the history key that selects the best epoch, e.g. "val_loss"
    mode: Literal["min", "max"]
    max_epochs: int
    epoch: int = 0  # the last finished epoch, 1-based; 0 before the first
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float = math.nan
    best_epoch: int = 0  # 0: no epoch has been best yet, best_weights are the initial ones
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    retries: int = 0  # divergence retries so far; each multiplied the learning rates by divergence_lr_factor
    stop: bool = False

    def is_better(self, value: float) -> bool:
        """Whether `value` of the monitored key beats the best so far (non-finite values never do)."""
        if not math.isfinite(value):
            return False
        if self.best_epoch == 0:
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value


class Callback:
    """Override any of the hooks; the defaults do nothing."""

    def on_fit_start(self, state: TrainState) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after each epoch, once its history row and the best epoch are updated."""

    def on_fit_end(self, state: TrainState) -> None:
        """Called once at the end, also when training raised, so resources are always released."""


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better monitored value, then restore the best weights."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch - state.best_epoch >= self.patience:
            state.stop = True

    def on_fit_end(self, state: TrainState) -> None:
        if state.best_weights:
            state.module.load_state_dict(state.best_weights)


class ProgressBar(Callback):
    """A Rich progress bar over epochs with the latest losses and metrics; silent unless on a terminal."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console
        self._progress: Progress | None = None
        self._task = TaskID(0)

    def on_fit_start(self, state: TrainState) -> None:
        console = self.console or Console()
        if self.quiet or not console.is_terminal:  # pipes, CI logs and tests stay clean
            return
        self._progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), console=console,
        )  # fmt: skip
        # a resumed run starts at its checkpoint's epoch
        self._task = self._progress.add_task("epochs", total=state.max_epochs, completed=state.epoch, stats="")
        self._progress.start()

    def on_epoch_end(self, state: TrainState) -> None:
        if self._progress is None:
            return
        row = state.history[-1]
        stats = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds"))
        self._progress.update(self._task, advance=1, stats=stats)

    def on_fit_end(self, state: TrainState) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class Checkpoint(Callback):
    """Write the best weights whenever they improve: `path` (safetensors) plus `path`.json with the epoch.

    Each file is replaced in one atomic rename, so a crash never leaves a half-written checkpoint; the
    safetensors header repeats epoch and value, so the weights file alone is self-describing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.best_epoch != state.epoch:
            return
        meta = {"epoch": state.epoch, "monitor": state.monitor, "value": state.best_value}
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.best_weights.items()}
        with atomic_path(self.path) as tmp:
            save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})
        write_json(self.path.with_suffix(".json"), meta)
