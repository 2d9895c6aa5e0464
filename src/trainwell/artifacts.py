"""Reading back what a run saved without running code: one skops allow-list, finite tensors, file digests.

Run folders are downloaded and shared, so every file read from one is treated as hostile. A skops file may
hold only the exact types trainwell itself saves (a type name can make skops call that function with
arguments from the file), tensors must be finite, and a SHA-256 manifest tells an altered file from the
saved one. This module sits at the bottom: stdlib, numpy and `trainwell.errors` only; skops, safetensors
and torch are imported inside the functions that need them (`import skops.io` alone takes a second).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainwell.errors import UserError

if TYPE_CHECKING:
    import torch

# Every type name `skops.io.get_untrusted_types` reports for an object trainwell saves, and nothing else:
# classes only, never a function (a function on this list could be called with arguments from the file).
# Derived by saving every registry model (classification with 2 and 3 classes, regression; each parameter
# that changes the fitted object's types: penalties, class weights, knn metrics on few and many features,
# lightgbm with and without early stopping, voting/stacking over every classical member, exponentiated-gradient
# predictors) and preparers over every column kind and option (scalings, onehot/ordinal, imputations,
# clip_outliers, missing indicators), with scikit-learn 1.9, lightgbm 4.7, skops 0.16. tests/test_artifacts.py
# saves the same evidence and checks it matches this list exactly; `save_skops` refuses any other type, so a
# new model type fails its first save until its types are reviewed and added here.
SKOPS_ALLOWED: frozenset[str] = frozenset({
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
    "trainwell.data.prepare.DatetimeParts",
    "trainwell.data.prepare.OutlierClipper",
    "trainwell.data.prepare.SelectColumns",
    "trainwell.data.prepare.TextFeatures",
    "trainwell.data.prepare.ToBoolean",
    "trainwell.data.prepare.ToFloat32",
    "trainwell.data.prepare.ToNumeric",
    "trainwell.data.prepare.ToStrings",
    "trainwell.models.unsupervised.InductiveClusterer",
})  # fmt: skip

# What reading a damaged or altered skops file raises, observed by corrupting and mutating saved files: a broken
# zip, then (from skops) missing keys, wrong value types, unknown loaders, state that does not fit its class,
# and nesting deeper than Python's JSON parser or skops' recursive tree walk can follow.
_MALFORMED = (zipfile.BadZipFile, KeyError, TypeError, AttributeError, ValueError, RecursionError)
_CHUNK = 1 << 20


# ---------------------------------------------------------------- skops


def save_skops(obj: Any, path: str | Path) -> None:
    """Save `obj` with skops, atomically, after checking every type in it is on SKOPS_ALLOWED.

    Raises:
        TypeError: the object holds a type not on the allow-list (a developer error: review and add it).
    """
    import skops.io as sio

    data = sio.dumps(obj)
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - SKOPS_ALLOWED)
    if unknown:
        raise TypeError(f"refusing to save {path}: {type(obj).__name__} holds types not on SKOPS_ALLOWED: "
                        f"{', '.join(unknown)}; check each cannot run code or touch files, then add it to "
                        "SKOPS_ALLOWED in trainwell/artifacts.py")  # fmt: skip
    _write_atomic(Path(path), data)


def load_skops(path: str | Path) -> Any:
    """Load a skops file saved by `save_skops`, refusing any type trainwell never saves.

    Raises:
        UserError: the file is missing, not a skops file, malformed, or holds a type not on SKOPS_ALLOWED.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found; the run folder is incomplete, train it again")
    try:
        _check_stored_zip(path)
        found = sio.get_untrusted_types(file=path)
        refused = [name for name in found if name not in SKOPS_ALLOWED]
        if refused:
            raise UserError(f"refusing to load {path}: it holds types trainwell never saves: {', '.join(refused)}; "
                            "the file was altered or comes from elsewhere")  # fmt: skip
        return sio.load(path, trusted=found)
    except _MALFORMED as exc:
        raise UserError(f"{path} is not a skops file trainwell can read ({type(exc).__name__}); it is damaged "
                        "or was altered: train again") from None  # fmt: skip


# ---------------------------------------------------------------- tensors


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor in a safetensors file, after checking the file is whole and its floats are finite.

    Raises:
        UserError: the file is missing, truncated or garbled, or a floating tensor holds NaN/inf.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found; the run folder is incomplete, train it again")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path} is not a readable safetensors file ({reason}); the file is damaged, "
                        "train again") from None  # fmt: skip
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f'{path}: tensor "{name}" holds NaN/inf values; the file is damaged, train again')
    return tensors


# ---------------------------------------------------------------- manifest


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex; read in chunks so large weights never sit in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(directory: str | Path, exclude: tuple[str, ...] = ("run.json",)) -> dict[str, dict[str, Any]]:
    """{relative posix path: {"sha256", "bytes"}} for every file under `directory`, sorted; `exclude` by path."""
    directory = Path(directory)
    return {rel: {"sha256": file_digest(directory / rel), "bytes": (directory / rel).stat().st_size}
            for rel in _files(directory) if rel not in exclude}  # fmt: skip


def verify_manifest(directory: str | Path, manifest: dict[str, Any]) -> None:
    """Check every listed file is there with its size and digest, and model/ holds nothing unlisted.

    Raises:
        UserError: naming the first file that is missing, truncated, changed or extra in model/.
    """
    directory = Path(directory)
    if not isinstance(manifest, dict):
        raise UserError(f"{directory}: the manifest is malformed; the run was altered, train it again")
    for rel, entry in sorted(manifest.items()):
        path = directory / rel
        if not (_inside(rel) and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int)):  # fmt: skip
            raise UserError(f"{directory}: the manifest entry {json.dumps(rel)} is malformed; the run was altered, "
                            "train it again")  # fmt: skip
        if not path.is_file():
            raise UserError(f"{path}: is missing; the run folder is incomplete, copy it again or train again")
        size = path.stat().st_size
        if size < entry["bytes"]:
            raise UserError(f"{path}: is truncated ({size} bytes, expected {entry['bytes']}); copy the run again")
        if size != entry["bytes"]:
            raise UserError(f"{path}: changed since the run was saved ({size} bytes, expected {entry['bytes']})")
        if file_digest(path) != entry["sha256"]:
            raise UserError(f"{path}: changed since the run was saved (sha256 mismatch); copy the run again "
                            "or train again")  # fmt: skip
    for rel in _files(directory / "model"):
        if f"model/{rel}" not in manifest:
            raise UserError(f"{directory / 'model' / rel}: not part of the saved run (an extra file in model/ "
                            "could be loaded); delete it")  # fmt: skip


def fsync_tree(directory: str | Path) -> None:
    """Flush every file and folder under `directory` to disk, so a rename that publishes it is durable."""
    for root, _dirs, files in os.walk(directory, topdown=False):
        for name in [*files, "."]:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# ---------------------------------------------------------------- helpers


def _files(directory: Path) -> list[str]:
    """Files under `directory` as sorted relative posix paths, skipping hidden temp files of atomic writes."""
    if not directory.is_dir():
        return []
    found = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if not (name.startswith(".") and name.endswith(".tmp")):
                found.append(Path(root, name).relative_to(directory).as_posix())
    return sorted(found)


def _check_stored_zip(path: Path) -> None:
    """Refuse what `save_skops` never writes: a zip without schema.json or with compressed/encrypted members.

    Stored members only means nothing is decompressed, so a small file cannot expand into gigabytes.
    """
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    if "schema.json" not in {m.filename for m in members} or any(
        m.compress_type != zipfile.ZIP_STORED or m.flag_bits & 0x1 for m in members
    ):
        raise zipfile.BadZipFile("not an uncompressed skops archive")


def _inside(rel: str) -> bool:
    """A manifest key that names a file inside the run (no absolute path, no `..`)."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a hidden temp file beside `path`, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
