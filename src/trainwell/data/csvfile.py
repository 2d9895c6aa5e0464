"""Reading CSV text files safely: compressed or not, UTF-8 only, every problem one line that names the file
and the line (ragged rows, unclosed quotes, duplicate headers, other encodings, binary formats named .csv)."""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from trainwell.errors import UserError, first_line, shown

_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"(\xb5/\xfd": "zstd",
          b"PAR1": "parquet", b"\xd0\xcf\x11\xe0": "excel"}  # fmt: skip
_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}


def magic(path: Path) -> str | None:
    """The compression or binary format the file's first bytes announce, or None for plain bytes."""
    with path.open("rb") as fh:
        head = fh.read(8)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def read_csv(path: Path, sep: str) -> pd.DataFrame:
    """pandas' CSV reader, compressed or not, with every problem turned into one line naming the file.

    Refused: duplicate header names (pandas would rename them a.1), rows with more fields than the header,
    an unclosed quote, text that is not UTF-8, binary data. Rows with fewer fields get missing values.
    """
    compression = _compression(path)
    head = _head(path, compression)
    _check_text(path, head)
    try:
        with warnings.catch_warnings():
            # index_col=False: extra fields on every row are an error, not the first column turned into the index
            warnings.simplefilter("error", pd.errors.ParserWarning)
            header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, compression=compression)
            _check_header(path, header)
            frame = pd.read_csv(path, sep=sep, compression=compression, index_col=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"data file {path} is empty (no header, no rows)") from None
    except UnicodeDecodeError:
        raise UserError(_not_utf8(path, compression)) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise UserError(_parse_problem(path, sep, compression, exc)) from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
        raise UserError(f"data file {path} is not a readable CSV: {first_line(exc)}") from None
    return frame


def _compression(path: Path) -> str | None:
    """The compression to read a CSV with, from its first bytes; a non-CSV binary format is a UserError."""
    kind = magic(path)
    if kind == "zip" and _is_workbook(path):
        kind = "excel"
    if kind == "parquet":
        raise UserError(f"data file {path} is a Parquet file, not CSV text; name it {path.stem}.parquet")
    if kind == "excel":
        raise UserError(f"data file {path} is an Excel workbook, not CSV text; export it as CSV (UTF-8)")
    if kind == "zstd":
        raise UserError(f"data file {path} is zstd-compressed; decompress it (zstd -d) or compress it with gzip")
    return kind


def _is_workbook(path: Path) -> bool:
    """A zip holding an Office document (.xlsx) rather than one compressed CSV."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "[Content_Types].xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


@contextlib.contextmanager
def _open_text_bytes(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    """The file's (decompressed) bytes as a stream; zip: its first member."""
    if compression == "zip":
        with zipfile.ZipFile(path) as zf:
            if not zf.namelist():
                raise UserError(f"data file {path} is an empty zip archive")
            with zf.open(zf.namelist()[0]) as member:
                yield member
        return
    opener = _OPENERS.get(compression or "", open)
    with opener(path, "rb") as fh:
        yield fh


def _head(path: Path, compression: str | None, size: int = 1 << 16) -> bytes:
    """The first `size` (decompressed) bytes, or a UserError when the compressed stream is broken."""
    try:
        with _open_text_bytes(path, compression) as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise UserError(f"data file {path} is not a readable {compression} file: {first_line(exc)}") from None


def _check_text(path: Path, head: bytes) -> None:
    """UTF-16 text and binary data (NUL bytes) are named before pandas calls them "not UTF-8"."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"data file {path} is UTF-16 text, not UTF-8; save it as UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise UserError(f"data file {path} is binary, not CSV text (byte 0x00 at offset {nul}); "
                        "give a UTF-8 CSV file")  # fmt: skip


def _check_header(path: Path, header: pd.DataFrame) -> None:
    """Duplicate names in the header row, read as written (pandas renames the second `a` to `a.1`)."""
    names = [str(v) for v in header.iloc[0].tolist() if isinstance(v, str)] if len(header) else []
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserError(f"data file {path} has duplicate column names: {shown(duplicated)}; rename them")


def _not_utf8(path: Path, compression: str | None) -> str:
    """Where the first byte that is not UTF-8 sits, and what the text probably is."""
    offset, carry = 0, b""
    with _open_text_bytes(path, compression) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            data = carry + chunk
            try:
                data.decode("utf-8")
                offset, carry = offset + len(data), b""
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data":  # a character cut by the chunk boundary
                    offset, carry = offset + exc.start, data[exc.start :]
                    continue
                byte, where = data[exc.start], offset + exc.start
                return (f"data file {path} is not UTF-8 text (byte 0x{byte:02x} at offset {where}; looks like "
                        "latin-1/cp1252); save it as UTF-8")  # fmt: skip
    return f"data file {path} is not UTF-8 text (it ends inside a character); save it as UTF-8"


_EXPECTED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parse_problem(path: Path, sep: str, compression: str | None, exc: Exception) -> str:
    """One line for a tokenizing error: the line with too many fields, or the quote that never closes."""
    text = str(exc)
    match = _EXPECTED.search(text)
    if match:
        expected, line, saw = match.groups()
        return _too_many_fields(path, sep, line, saw, expected)
    if "EOF inside string" in text or "EOF while scanning" in text:
        line = _unclosed_quote_line(path, compression)
        return (f'data file {path}: a quote (") opened on line {line} is never closed; close it, or remove the '
                "stray quote")  # fmt: skip
    if isinstance(exc, pd.errors.ParserWarning):  # more fields than the header on the first data rows
        found = _first_long_row(path, sep, compression)
        if found:
            return _too_many_fields(path, sep, *map(str, found))
    return f"data file {path} is not a readable CSV: {first_line(exc)}"


def _too_many_fields(path: Path, sep: str, line: str, saw: str, expected: str) -> str:
    name = "tabs" if sep == "\t" else f'"{sep}"'
    return (f"data file {path}: line {line} has {saw} fields but the header has {expected}; quote values that "
            f"contain {name}, or fix that line")  # fmt: skip


def _first_long_row(path: Path, sep: str, compression: str | None) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first row with more fields than the header (a trailing empty one aside)."""
    with _open_text_bytes(path, compression) as raw, io.TextIOWrapper(raw, "utf-8-sig", "replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        width = len(next(reader, []))
        for row in reader:
            if len(row) > width and not (len(row) == width + 1 and row[-1] == ""):
                return reader.line_num, len(row), width
    return None


def _unclosed_quote_line(path: Path, compression: str | None) -> int:
    """The line on which the last opened and never closed double quote starts."""
    opened_on, inside = 0, False
    with _open_text_bytes(path, compression) as raw, io.TextIOWrapper(raw, "utf-8-sig", "replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            for _ in range(line.count('"')):  # "" inside a quoted value toggles twice: no change
                inside = not inside
                if inside:
                    opened_on = number
    return opened_on
