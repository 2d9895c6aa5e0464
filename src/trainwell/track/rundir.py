"""The run directory: claimed before any work, built in a hidden staging folder, renamed into place when whole.

`claim` checks the destination and takes the hidden `.NAME.partial` folder under an exclusive lock (flock,
released by the kernel when the process dies) before a single row is loaded, so a bad `--run-dir` fails in
a second and two processes never train into one folder. Checkpoints live in the staging folder, which makes
an interrupted run resumable (`claim(..., resume=True)`). `finish` fsyncs every file and renames: a folder
under its real name is always a complete run. Unfinished ones are listed and removed by `trainwell clean`.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainwell.artifacts import fsync_tree
from trainwell.errors import UserError

VERSIONED = ("trainwell", "torch", "numpy", "pandas", "scikit-learn", "lightgbm", "skops", "safetensors")
STAGING_SUFFIX = ".partial"
LOCK = ".lock"  # inside the staging folder: flock'ed while a process works on it, holds its pid and host
CHECKPOINTS = "checkpoints"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    """runs/NAME-YYYYmmdd-HHMMSS, with a counter if that exists already; NAME must be a plain name."""
    if not _SAFE_NAME.match(name):
        raise UserError(f'name "{name}" must be a plain name (letters, digits, "-", "_", "."), not a path; '
                        "use --run-dir to choose the folder")  # fmt: skip
    stem = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = stem, 1
    while path.exists() or staging_path(path).exists():
        i += 1
        path = Path(f"{stem}-{i}")
    return path


def staging_path(final: str | Path) -> Path:
    """The hidden folder a run is built in: runs/.NAME.partial for runs/NAME."""
    final = Path(final)
    return final.parent / f".{final.name}{STAGING_SUFFIX}"


def is_staging(path: str | Path) -> bool:
    """Whether `path` is an unfinished run's staging folder (this version's or an older `.partial-PID` one)."""
    name = Path(path).name
    return name.startswith(".") and (name.endswith(STAGING_SUFFIX) or f"{STAGING_SUFFIX}-" in name)


def final_path(staging: str | Path) -> Path:
    """runs/NAME for runs/.NAME.partial."""
    staging = Path(staging)
    return staging.parent / staging.name[1:].split(STAGING_SUFFIX)[0]


@dataclass
class Stage:
    """A claimed run: the staging folder being written, where it goes, and the lock held on it."""

    final: Path
    path: Path
    lock_fd: int
    resumed: bool = False
    done: bool = False

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def finish(self) -> Path:
        """fsync everything, then rename the staging folder to its final name; returns the final path."""
        (self.path / LOCK).unlink(missing_ok=True)
        fsync_tree(self.path)
        if self.final.is_dir() and not any(self.final.iterdir()):
            self.final.rmdir()  # an empty folder the user made beforehand
        os.rename(self.path, self.final)
        _fsync_dir(self.final.parent)
        self.done = True
        self.release()
        return self.final

    def abandon(self) -> bool:
        """After a failure: keep the folder when it holds a checkpoint to resume from, else remove it.

        Returns whether it was kept.
        """
        if self.done:
            return False
        keep = _resumable(self.path)
        if not keep:
            shutil.rmtree(self.path, ignore_errors=True)
        self.release()
        return keep

    def release(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)  # closing drops the flock
            self.lock_fd = -1


def claim(final: str | Path, *, resume: bool = False) -> Stage:
    """Check the destination and lock its staging folder before any work; see the module docstring.

    Raises:
        UserError: the destination is a file, a non-empty folder or not writable; another process is
            training into it; an unfinished run is in the way (without `resume`) or missing (with it).
    """
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise UserError(f"--run-dir {final} is a file; give the path of a new folder")
    if final.is_dir() and any(final.iterdir()):
        done = (final / "run.json").is_file()
        raise UserError(f"run directory {final} already exists and is not empty"
                        + ("; it is a finished run, nothing to resume" if resume and done else
                           "; choose another --run-dir")) from None  # fmt: skip
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {final.parent}: {exc.strerror}; choose another --run-dir") from None
    if not os.access(final.parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write in {final.parent} (permission denied); choose another --run-dir")
    path = staging_path(final)
    if resume and not path.is_dir():
        raise UserError(f"nothing to resume for {final}: there is no unfinished run ({path.name}) beside it")
    if not resume:
        try:
            path.mkdir()
        except FileExistsError:
            holder = lock_holder(path)
            if holder:
                raise UserError(f"another trainwell process ({holder}) is training into {final}; "
                                "wait for it or choose another --run-dir") from None  # fmt: skip
            if not _resumable(path):  # a stopped run with nothing to resume from: safe to start over
                shutil.rmtree(path)
                return claim(final)
            raise UserError(f"an unfinished run of {final} is in {path}; resume it with `trainwell train --resume "
                            f"{final}` or delete it with `trainwell clean {final.parent}`") from None  # fmt: skip
        except OSError as exc:
            raise UserError(f"cannot create {path}: {exc.strerror}; choose another --run-dir") from None
    fd = _lock(path)
    if fd < 0:
        raise UserError(f"another trainwell process ({lock_holder(path)}) is training into {final}; wait for it")
    return Stage(final, path, fd, resumed=resume)


def lock_holder(staging: Path) -> str | None:
    """'pid N on HOST' when a live process holds the staging folder's lock, else None."""
    fd = _lock(staging)
    if fd >= 0:
        os.close(fd)
        return None
    try:
        info = json.loads((staging / LOCK).read_text() or "{}")
    except (OSError, ValueError):
        return "a process"
    return f"pid {info.get('pid')} on {info.get('host')}"


def _lock(staging: Path) -> int:
    """An fd holding an exclusive flock on the staging folder's lock file (with our pid in it), or -1 if held."""
    fd = os.open(staging / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
    return fd


def unfinished_runs(root: str | Path) -> list[dict[str, Any]]:
    """Staging folders under `root` (two levels deep): where each was going, whether a process holds it."""
    root = Path(root)
    found = [p for pattern in (".*", "*/.*") for p in root.glob(pattern) if p.is_dir() and is_staging(p)]
    out = []
    for path in sorted(found):
        active = lock_holder(path) if (path / LOCK).exists() else None
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        out.append({"path": path, "final": final_path(path), "active": active, "bytes": size,
                    "resumable": _resumable(path),
                    "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))})  # fmt: skip
    return out


def _resumable(staging: Path) -> bool:
    """Whether a staging folder holds a checkpoint to resume from."""
    return (staging / CHECKPOINTS / "checkpoint.json").is_file()  # written last: its tensors file is whole


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def check_output(output: str | Path, *, inputs: tuple[str | Path, ...] = (), force: bool = False) -> Path:
    """Refuse an output path before any work: an existing file (unless `force`), an input, a run folder's file.

    Raises:
        UserError: the path is a folder, exists without `force`, is one of `inputs`, lies inside a run
            folder (finished or not), or its folder cannot be written.
    """
    output = Path(output)
    resolved = output.resolve()
    for given in inputs:
        if Path(given).exists() and resolved == Path(given).resolve():
            raise UserError(f"--output {output} is an input of this command; write the results elsewhere")
    for folder in resolved.parents:
        if (folder / "run.json").is_file() or is_staging(folder):
            raise UserError(f"--output {output} is inside the run folder {folder}; run folders are never written "
                            "into, choose a path outside it")  # fmt: skip
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file path")
    if output.exists() and not force:
        raise UserError(f"--output {output} already exists; pass --force to replace it")
    parent = resolved.parent
    if not parent.is_dir():
        raise UserError(f"--output {output}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--output {output}: cannot write in {parent} (permission denied)")
    return output
