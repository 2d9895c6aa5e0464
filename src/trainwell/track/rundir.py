"""The run directory: built in a hidden staging folder and renamed into place only when complete.

A crash, Ctrl-C or error leaves at most a hidden `.NAME.partial-*` folder behind: a run that exists
under its real name is always complete, and an existing run is never overwritten.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trainwell.errors import UserError

VERSIONED = ("trainwell", "torch", "numpy", "pandas", "scikit-learn", "lightgbm", "skops", "safetensors")


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    """runs/NAME-YYYYmmdd-HHMMSS, with a counter if that exists already."""
    stem = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = stem, 1
    while path.exists():
        i += 1
        path = Path(f"{stem}-{i}")
    return path


@contextmanager
def staged_run_dir(final: str | Path) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes `final` in one rename, on failure it is removed."""
    final = Path(final)
    if final.exists() and any(final.iterdir()):
        raise UserError(f"run directory {final} already exists and is not empty; choose another --run-dir")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if final.exists():
            final.rmdir()  # an empty folder the user made beforehand
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
