"""Checkpoint overhead: per-epoch wall time of `fit` with resumable checkpoints against the same fit without.

Arms, each the same training (same data, initial weights and seed) and differing only in checkpoint settings:
  baseline   no `checkpoints` argument: nothing captured or written
  every=1    a checkpoint written after every epoch (safetensors + JSON, each fsynced and renamed into place)
  default    `checkpoint_every=None, checkpoint_minutes=1.0` (the config default): written once a minute
  retries=3  `divergence_retries=3`, no checkpoints on disk: an in-memory snapshot at every new best epoch
Two problems: an MLP 64-128-64-10 on the 8x8 digits (1,257 train / 270 validation rows, 20 epochs), where
an epoch is short and a checkpoint small, and an MLP 784-512-512-10 on 5,000 x 784 random rows (5 epochs),
where a checkpoint is bigger. The arms run interleaved (the order rotates each round) after one untimed
warm-up each. Reported: median wall time per epoch, and the median over rounds of each arm's time over the
baseline's in the same round. Capture and write are also timed alone, which gives the ratio to expect; on
a shared machine the fits vary by ~10% between rounds, more than a small checkpoint costs.

    .venv/bin/python benchmarks/checkpoint_overhead.py             # ~2 min on 2 cores
    .venv/bin/python benchmarks/checkpoint_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from trainwell.config import TrainConfig
from trainwell.training.callbacks import Callback, TrainState
from trainwell.training.checkpoint import TENSORS_GLOB, Checkpointing, Resumable, save_checkpoint
from trainwell.training.loop import fit

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # X_train, y_train, X_val, y_val
ARMS: dict[str, dict] = {  # arm → its TrainConfig overrides
    "baseline": {"checkpoint_every": None, "checkpoint_minutes": None},
    "every=1": {"checkpoint_every": 1, "checkpoint_minutes": None},
    "default": {"checkpoint_every": None, "checkpoint_minutes": 1.0},
    "retries=3": {"checkpoint_every": None, "checkpoint_minutes": None, "divergence_retries": 3},
}
ON_DISK = ("every=1", "default")


@dataclass
class Problem:
    """One training job: data, the module builder, epochs."""

    name: str
    data: Data
    sizes: list[int]
    epochs: int

    def module(self) -> nn.Module:
        torch.manual_seed(0)  # the same initial weights in every arm
        layers: list[nn.Module] = []
        for width, units in zip(self.sizes[:-2], self.sizes[1:-1], strict=True):
            layers += [nn.Linear(width, units), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(self.sizes[-2], self.sizes[-1]))


class NewBests(Callback):
    """Counts epochs that set a new best: each costs the retries arm one in-memory snapshot."""

    def __init__(self) -> None:
        self.count = 0

    def on_epoch_end(self, state: TrainState) -> None:
        self.count += state.best_epoch == state.epoch


class DirectCost(Callback):
    """At the end of a fit, times one capture (a CPU copy of the loop's state) and one write, median of `n`."""

    def __init__(self, folder: Path, n: int = 15) -> None:
        self.folder, self.n = folder, n
        self.capture_s = self.write_s = 0.0

    def on_fit_end(self, state: TrainState) -> None:
        parts = Resumable(state.module, state.optimizer, [], torch.Generator(), torch.device("cpu"))
        captures, writes = [], []
        for _ in range(self.n):
            t0 = time.perf_counter()
            snapshot = parts.capture(state)
            t1 = time.perf_counter()
            save_checkpoint(self.folder, snapshot)
            captures.append(t1 - t0)
            writes.append(time.perf_counter() - t1)
        self.capture_s, self.write_s = statistics.median(captures), statistics.median(writes)


def digits() -> Data:
    """The 8x8 digits scaled to [0, 1]: the first 1,257 rows train, the next 270 validate."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:1257], y[:1257], X[1257:1527], y[1257:1527]


def random_wide(n: int = 5000, n_val: int = 500, features: int = 784, classes: int = 10) -> Data:
    """Gaussian rows labelled by a fixed random linear map, so validation loss keeps improving."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n + n_val, features)).astype(np.float32)
    y = (X @ rng.standard_normal((features, classes))).argmax(1)
    return X[:n], y[:n], X[n:], y[n:]


def run_arm(problem: Problem, arm: str, folder: Path, *extra: Callback) -> tuple[float, int]:
    """One fit; return wall seconds per epoch (captures and writes included) and the epochs that set a best."""
    cfg = TrainConfig(epochs=problem.epochs, batch_size=64, early_stopping=False, device="cpu", **ARMS[arm])
    checkpoints = Checkpointing(folder) if arm in ON_DISK else None
    bests = NewBests()
    module = problem.module()
    X, y, X_val, y_val = problem.data
    started = time.perf_counter()
    history = fit(module, X, y, val=(X_val, y_val), task="classification", cfg=cfg, seed=0,
                  callbacks=[bests, *extra], checkpoints=checkpoints)  # fmt: skip
    seconds = time.perf_counter() - started
    assert len(history) == problem.epochs and not any("diverged" in row for row in history)
    return seconds / problem.epochs, bests.count


def measure(problem: Problem, repeats: int, folder: Path) -> None:
    """Interleave the arms `repeats` rounds after a warm-up; print medians, paired ratios and the expected ones."""
    names = list(ARMS)
    times: dict[str, list[float]] = {a: [] for a in names}
    bests = 0
    direct = DirectCost(folder / "direct")
    for arm in names:  # warm-up: first-call allocations and page faults land in no arm's figure
        run_arm(problem, arm, folder / arm, *([direct] if arm == "baseline" else []))
    for r in range(repeats):
        for arm in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            per_epoch, bests = run_arm(problem, arm, folder / arm)
            times[arm].append(per_epoch)
    size = sum(p.stat().st_size for p in (folder / "every=1").glob(TENSORS_GLOB))
    params = sum(p.numel() for p in problem.module().parameters())
    saves = problem.epochs - 1  # every=1 writes after each epoch but the last (the caller saves the final model)
    cost = direct.capture_s + direct.write_s
    base = statistics.median(times["baseline"])
    expected = {  # seconds added per fit, from the costs timed alone
        "baseline": 0.0, "every=1": saves * cost, "default": 0.0,
        "retries=3": (1 + bests) * direct.capture_s,  # one capture at the start, one per new best
    }  # fmt: skip
    print(f"\n{problem.name}: {problem.epochs} epochs, {params:,} parameters, checkpoint {size / 1e6:.2f} MB "
          f"(weights, best weights, Adam moments); {bests} new-best epochs; {repeats} rounds")  # fmt: skip
    print(f"timed alone, median of {direct.n}: capture {direct.capture_s * 1e3:.2f} ms, "
          f"write {direct.write_s * 1e3:.2f} ms")  # fmt: skip
    print("arm          ms/epoch  ratio  per-round ratios  expected")
    for arm in names:
        ratios = [t / b for t, b in zip(times[arm], times["baseline"], strict=True)]  # paired within a round
        expect = 1 + expected[arm] / (base * problem.epochs)
        print(f"{arm:<11} {statistics.median(times[arm]) * 1e3:9.1f}  {statistics.median(ratios):5.3f}  "
              f"{min(ratios):.3f}-{max(ratios):.3f}       {expect:.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds for the digits MLP")
    parser.add_argument("--large-repeats", type=int, default=5, help="interleaved rounds for the large MLP")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the machine is shared; one thread keeps the arms comparable
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    problems: list[tuple[Problem, int]] = [
        (Problem("digits MLP 64-128-64-10, 1,257 rows", digits(), [64, 128, 64, 10], 20), args.repeats),
        (Problem("MLP 784-512-512-10, 5,000 rows", random_wide(), [784, 512, 512, 10], 5), args.large_repeats),
    ]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="checkpoint-overhead-") as tmp:
        for problem, repeats in problems:
            measure(problem, repeats, Path(tmp) / problem.name.split(",")[0].replace(" ", "_"))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
