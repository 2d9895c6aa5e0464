"""Model versions inside a run: v1 is the model the run was trained with; `trainwell update` adds v2, v3, ...

Each later version is a sealed folder `versions/vN/` (its `model/` and `version.json` with a SHA-256 manifest,
like run.json's). Which version answers is `versions/active.json`, replaced atomically, with the history of
promotions, so `rollback` knows where to go back and a server notices a promotion by the file's change.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from trainwell.artifacts import build_manifest, verify_manifest
from trainwell.errors import UserError
from trainwell.files import write_json

VERSIONS = "versions"
ACTIVE = "active.json"
FIRST = "v1"


def active_path(run_dir: Path) -> Path:
    return Path(run_dir) / VERSIONS / ACTIVE


def active_version(run_dir: Path) -> str:
    """The version that answers: v1 unless a later one was promoted."""
    path = active_path(run_dir)
    if not path.is_file():
        return FIRST
    try:
        name = json.loads(path.read_text())["active"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__}); fix it with `trainwell promote` or delete it "
                        "to go back to v1") from None  # fmt: skip
    if name != FIRST and not (Path(run_dir) / VERSIONS / name / "version.json").is_file():
        raise UserError(f"{path} names version {name!r}, which {run_dir} does not hold; `trainwell versions` lists "
                        "them")  # fmt: skip
    return str(name)


def version_dir(run_dir: Path, name: str) -> Path:
    """The folder holding version `name`'s `model/`: the run itself for v1."""
    return Path(run_dir) if name == FIRST else Path(run_dir) / VERSIONS / name


def load_version_info(run_dir: Path, name: str) -> dict[str, Any]:
    """version.json of a later version, after checking its files against its manifest."""
    folder = version_dir(run_dir, name)
    path = folder / "version.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no version {name}; `trainwell versions` lists them") from None
    except ValueError as exc:
        raise UserError(f"{path} is damaged (not valid JSON: {exc})") from None
    verify_manifest(folder, info["manifest"])
    return info


def list_versions(run_dir: Path) -> list[dict[str, Any]]:
    """Every version, oldest first, with its evaluation and whether it is the active one."""
    run_dir = Path(run_dir)
    active = active_version(run_dir)
    rows = [{"version": FIRST, "parent": None, "method": "trained", "active": active == FIRST}]
    folder = run_dir / VERSIONS
    names = sorted((p.name for p in folder.glob("v*") if (p / "version.json").is_file()), key=lambda n: int(n[1:]))
    for name in names:
        info = json.loads((folder / name / "version.json").read_text())
        rows.append({k: v for k, v in info.items() if k != "manifest"} | {"active": active == name})
    return rows


def next_version(run_dir: Path) -> str:
    return f"v{max(int(r['version'][1:]) for r in list_versions(run_dir)) + 1}"


def seal_version(folder: Path, info: dict[str, Any]) -> None:
    """Write version.json with the manifest of everything in `folder`: written last, so a crash leaves no
    version that looks complete."""
    write_json(folder / "version.json", info | {"manifest": build_manifest(folder, exclude=("version.json",))})


def set_active(run_dir: Path, name: str, reason: str) -> None:
    """Make `name` the answering version (atomically), keeping the history for `rollback`."""
    path = active_path(run_dir)
    history = json.loads(path.read_text())["history"] if path.is_file() else [
        {"version": FIRST, "at": None, "reason": "trained"}]  # fmt: skip
    if name != FIRST:
        load_version_info(run_dir, name)  # never point at a damaged or missing version
    history.append({"version": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "reason": reason})
    write_json(path, {"active": name, "history": history})


def rollback_target(run_dir: Path) -> str:
    """The version active before the current one."""
    path = active_path(run_dir)
    history = json.loads(path.read_text())["history"] if path.is_file() else []
    current = active_version(run_dir)
    earlier = [h["version"] for h in history[:-1] if h["version"] != current]
    if not earlier:
        raise UserError(f"{run_dir}: nothing to roll back to ({current} is the only version that was active)")
    return str(earlier[-1])
