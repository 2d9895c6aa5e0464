"""Resumable checkpoints of the training loop: everything `fit` needs to continue bit for bit.

A `Snapshot` is the loop's full state at an epoch boundary, split the way it is stored: tensors (weights,
optimizer buffers, RNG states as uint8) for safetensors and plain values (optimizer hyperparameters,
scheduler states, history, early-stopping bookkeeping) for JSON; no pickle anywhere. The same snapshot
serves a divergence retry in memory. On disk a checkpoint is two files in one folder:

    checkpoint-<epoch>.safetensors   module.<name>, best.<name>, optimizer.state.<i>.<key>, rng.<which>
    checkpoint.json                  the rest, plus the tensors file's name and sha256

Each is written atomically and the JSON last, so the JSON always names a complete tensors file; the
tensors file of a new checkpoint has a new name, so a kill between the two renames leaves the previous
pair intact and consistent (the older tensors file is deleted only after the new JSON is in place).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from trainwell.artifacts import file_digest, load_tensors
from trainwell.errors import UserError, first_line
from trainwell.files import atomic_path, write_text
from trainwell.training.callbacks import TrainState

FORMAT = 1
META = "checkpoint.json"
TENSORS_GLOB = "checkpoint-*.safetensors"


@dataclass(frozen=True)
class Checkpointing:
    """Where `fit` keeps its resumable checkpoint, and whether to continue from the one found there."""

    directory: Path
    resume: bool = False  # False: a checkpoint already there is removed and training starts fresh


@dataclass
class Snapshot:
    """The loop's state at an epoch boundary: tensors for safetensors, JSON-ready values for the rest."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    source: str = "in memory"  # the file it was read from, for error messages


@dataclass
class Resumable:
    """The objects whose combined state lets `fit` continue exactly where it stopped."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    schedulers: list[LRScheduler]
    generator: torch.Generator  # the shuffling order
    device: torch.device

    def capture(self, state: TrainState) -> Snapshot:
        """Copy everything to the CPU, so later training steps cannot change the snapshot."""
        tensors = {f"module.{k}": _cpu(v) for k, v in self.module.state_dict().items()}
        tensors |= {f"best.{k}": _cpu(v) for k, v in state.best_weights.items()}
        opt = self.optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for i, values in opt["state"].items():
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.state.{i}.{key}"] = _cpu(value)
                else:  # e.g. SGD's momentum_buffer before it exists (None)
                    scalars.setdefault(str(i), {})[key] = value
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.shuffle"] = self.generator.get_state()
        if self.device.type == "cuda":  # dropout masks on the GPU come from its own generator
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {
            "format": FORMAT, "epoch": state.epoch, "retries": state.retries,
            "best_value": state.best_value, "best_epoch": state.best_epoch,
            "history": [dict(row) for row in state.history],
            "optimizer": {"type": type(self.optimizer).__name__, "param_groups": opt["param_groups"],
                          "state": scalars},
            "schedulers": [{"type": type(s).__name__, "state": s.state_dict()} for s in self.schedulers],
        }  # fmt: skip
        return Snapshot(tensors, _encode(meta))  # new containers all the way down: a deep copy

    def restore(self, snapshot: Snapshot, state: TrainState) -> None:
        """Put every object back as captured; a snapshot of another model or optimizer is a UserError."""
        try:
            meta = _decode(snapshot.meta)
            self._check_matches(snapshot, meta)
            self._restore(snapshot.tensors, meta, state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # an edited checkpoint.json
            raise UserError(f"checkpoint {snapshot.source} is malformed ({type(exc).__name__}: "
                            f"{first_line(exc)}); remove it or start a new run") from None  # fmt: skip

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], state: TrainState) -> None:
        self.module.load_state_dict(_prefixed(tensors, "module."))
        opt_state: dict[int, dict[str, Any]] = {}
        for key, value in _prefixed(tensors, "optimizer.state.").items():
            i, name = key.split(".", 1)
            opt_state.setdefault(int(i), {})[name] = value.clone()
        for i, values in meta["optimizer"]["state"].items():
            opt_state.setdefault(int(i), {}).update(values)
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": meta["optimizer"]["param_groups"]})
        for scheduler, saved in zip(self.schedulers, meta["schedulers"], strict=True):
            scheduler.load_state_dict(saved["state"])
        torch.set_rng_state(tensors["rng.torch"].clone())
        self.generator.set_state(tensors["rng.shuffle"].clone())
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"].clone(), self.device)
        state.epoch, state.retries, state.stop = meta["epoch"], meta["retries"], False
        state.best_value, state.best_epoch = meta["best_value"], meta["best_epoch"]
        state.best_weights = {k: v.clone().to(self.device) for k, v in _prefixed(tensors, "best.").items()}
        state.history = [dict(row) for row in meta["history"]]

    def _check_matches(self, snapshot: Snapshot, meta: dict[str, Any]) -> None:
        expected = {k: tuple(v.shape) for k, v in self.module.state_dict().items()}
        for prefix in ("module.", "best."):
            found = {k: tuple(v.shape) for k, v in _prefixed(snapshot.tensors, prefix).items()}
            if found != expected:
                raise UserError(f"checkpoint {snapshot.source} is from a different model; remove it or start a new run")
        kinds = [meta["optimizer"]["type"], *(s["type"] for s in meta["schedulers"])]
        if kinds != [type(self.optimizer).__name__, *(type(s).__name__ for s in self.schedulers)]:
            raise UserError(f"checkpoint {snapshot.source} was written with another optimizer or scheduler "
                            f"({', '.join(kinds)}); remove it or start a new run")  # fmt: skip


class Checkpointer:
    """Writes a checkpoint every `every` epochs and/or once `minutes` have passed since the last one."""

    def __init__(self, directory: Path, every: int | None, minutes: float | None) -> None:
        self.directory, self.every, self.minutes = Path(directory), every, minutes
        self.last = time.monotonic()

    def due(self, epoch: int) -> bool:
        by_epoch = self.every is not None and epoch % self.every == 0
        return by_epoch or (self.minutes is not None and time.monotonic() - self.last >= 60 * self.minutes)

    def save(self, snapshot: Snapshot) -> None:
        save_checkpoint(self.directory, snapshot)
        self.last = time.monotonic()


def save_checkpoint(directory: Path, snapshot: Snapshot) -> Path:
    """Write the snapshot's tensors, then the JSON naming them and their sha256; return the JSON's path."""
    directory = Path(directory)
    name = f"checkpoint-{snapshot.meta['epoch']:05d}.safetensors"
    data = save({k: v.contiguous() for k, v in snapshot.tensors.items()})
    with atomic_path(directory / name) as tmp:
        tmp.write_bytes(data)
    meta = snapshot.meta | {"tensors": name, "sha256": hashlib.sha256(data).hexdigest()}
    write_text(directory / META, json.dumps(meta, allow_nan=False) + "\n")  # no indent: C encoder, 5x faster
    for old in directory.glob(TENSORS_GLOB):  # earlier checkpoints, now that the new JSON is in place
        if old.name != name:
            old.unlink(missing_ok=True)
    return directory / META


def load_checkpoint(directory: Path) -> Snapshot | None:
    """The checkpoint in `directory`, or None when there is none; a damaged or altered one is a UserError."""
    path = Path(directory) / META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        tensors_path = path.parent / Path(meta["tensors"]).name
        sha, fmt = meta["sha256"], meta["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = type(exc).__name__
        raise UserError(f"checkpoint {path} is unreadable ({reason}); remove it or start a new run") from None
    if fmt != FORMAT:
        raise UserError(f"checkpoint {path} has format {fmt}, this trainwell reads {FORMAT}; start a new run")
    if not tensors_path.is_file() or file_digest(tensors_path) != sha:
        raise UserError(f"checkpoint {tensors_path} is missing or does not match the sha256 in {path}; it was "
                        "altered or damaged - remove the checkpoint folder or start a new run")  # fmt: skip
    return Snapshot(load_tensors(tensors_path), meta, source=str(tensors_path))


def remove_checkpoint(directory: Path) -> None:
    """Delete a checkpoint (the JSON first, so no half of it is ever read as whole)."""
    directory = Path(directory)
    (directory / META).unlink(missing_ok=True)
    for old in directory.glob(TENSORS_GLOB):
        old.unlink(missing_ok=True)


# ---------------------------------------------------------------- helpers


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _encode(value: Any) -> Any:
    """JSON-ready values: non-finite floats become {"__float__": "inf"} (plain JSON has no inf or NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"__float__"}:
            return float(value["__float__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
