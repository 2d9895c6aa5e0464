"""Property tests for the parsers: any table file, config file or `--set` string gives a result or a UserError.

Never another exception, never a message over several lines, and the input file's bytes never change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwell.config import AuditConfig, ExperimentConfig, load_config, parse_overrides
from trainwell.data.audit import run_audit
from trainwell.data.schema import infer_schema, infer_task
from trainwell.data.sources import read_table
from trainwell.data.target import encode_target, labelled_rows
from trainwell.errors import UserError

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(QUICK, max_examples=20)  # examples that run the audit's models

NAMES = st.sampled_from(["a", "a ", "A", "a.1", "b", "é", "名前", "", "y", "Unnamed: 0", "1", "x,y", 'q"t'])
CELLS = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 10**30, 10**400, "inf", "-inf", "NaN", "", " ", "1,234", "?", "n/a", "2024-01-31",
                     "true"]),  # fmt: skip
    st.text(max_size=12),
)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """Small frames of mixed cells under possibly repeated, empty or odd column names."""
    names = draw(st.lists(NAMES, min_size=1, max_size=5))
    rows = draw(st.integers(0, 12))
    columns = {f"{i}": draw(st.lists(CELLS, min_size=rows, max_size=rows)) for i in range(len(names))}
    frame = pd.DataFrame(columns, dtype=object)
    frame.columns = names
    return frame


def outcome(call: object) -> object:
    """Call it; a UserError is a fine answer as long as it is one line."""
    try:
        return call()  # type: ignore[operator]
    except UserError as exc:
        assert "\n" not in str(exc), str(exc)
        return exc


def downstream(frame: pd.DataFrame) -> None:
    """What training does next with a table: schema, target, audit; each returns or raises a UserError."""
    target = frame.columns[-1]
    if not isinstance(outcome(lambda: infer_schema(frame, target)), dict):
        return
    rows = outcome(lambda: labelled_rows(frame, target, "t"))
    if isinstance(rows, UserError):
        return
    labelled = rows[0]
    task = outcome(lambda: infer_task(labelled[target]))
    if not isinstance(task, str):
        return
    outcome(lambda: encode_target(labelled[target], task, target, "t"))
    outcome(lambda: run_audit(frame, target=target, config=AuditConfig(skip=["label_noise"])))


@SLOW
@given(frame=tables(), sep=st.sampled_from([",", "\t"]), compress=st.booleans())
def test_any_written_table_reads_or_says_why(frame: pd.DataFrame, sep: str, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("t.csv" if sep == "," else "t.tsv")
        if compress:
            path = path.with_name(path.name + ".gz")
        frame.to_csv(path, sep=sep, index=False)
        before = path.read_bytes()
        result = outcome(lambda: read_table(path))
        assert path.read_bytes() == before
        if isinstance(result, pd.DataFrame):
            assert list(result.columns) == [str(c) for c in frame.columns] or any(n == "" for n in frame.columns)
            downstream(result)


@QUICK
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".csv.gz", ".parquet", ".npz"]))
def test_any_bytes_read_or_say_why(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"raw{suffix}"
        path.write_bytes(data)
        result = outcome(lambda: read_table(path))
        assert path.read_bytes() == data
        assert isinstance(result, (pd.DataFrame, UserError))


def read_unchanged(path: Path) -> None:
    """Read a generated file: a table (that the pipeline then takes) or a UserError, and the file unchanged."""
    before = path.read_bytes()
    result = outcome(lambda: read_table(path))
    assert path.read_bytes() == before
    if isinstance(result, pd.DataFrame):
        downstream(result)


@QUICK
@given(text=st.text(alphabet=st.sampled_from(list('ab,"\n\r\t é1.-;') + ["\x00", "\ufeff"]), max_size=80))
def test_any_csv_text_reads_or_says_why(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "text.csv"
        path.write_text(text, encoding="utf-8")
        read_unchanged(path)


@SLOW
@given(frame=tables())
def test_any_parquet_table_reads_or_says_why(frame: pd.DataFrame) -> None:
    frame = frame.loc[:, ~pd.Index(frame.columns).duplicated()]  # Parquet itself refuses duplicate names
    frame = frame.map(lambda v: None if v is None else str(v))  # one type per column, as Parquet stores it
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        frame.to_parquet(path)
        read_unchanged(path)


@SLOW
@given(array=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=30), width=st.integers(1, 3))
def test_any_npz_reads_or_says_why(array: list[float], width: int) -> None:
    X = np.asarray(array[: len(array) // width * width] or array[:1]).reshape(-1, width if len(array) >= width else 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.npz"
        np.savez(path, X=X, y=np.arange(len(X)) % 2)
        result = outcome(lambda: read_table(path))
        assert isinstance(result, pd.DataFrame)
        downstream(result)


OVERRIDE_TEXT = st.text(alphabet=st.sampled_from(list("train.lr=model.name:[]{},'\" 01-e!&*|>#%@`\n\t") + ["é"]),
                        max_size=30)  # fmt: skip


@QUICK
@given(pairs=st.lists(OVERRIDE_TEXT, max_size=3))
def test_any_set_string_parses_or_says_why(pairs: list[str]) -> None:
    parsed = outcome(lambda: parse_overrides(pairs))
    if isinstance(parsed, dict):
        config = outcome(lambda: load_config({"data": {"source": "x.csv"}}, parsed))
        assert isinstance(config, (ExperimentConfig, UserError))


@QUICK
@given(data=st.one_of(st.binary(max_size=200), OVERRIDE_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_config_file_loads_or_says_why(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exp.yaml"
        path.write_bytes(data)
        config = outcome(lambda: load_config(path))
        assert path.read_bytes() == data
        assert isinstance(config, (ExperimentConfig, UserError))
