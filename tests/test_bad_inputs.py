"""The bad-input catalogue: each plausible mistake gives a one-line UserError naming what to fix, or a recovery.

Cases are grouped by where the input enters: data files, the target, splits, metrics, the audit, the config and
the command line. A case listed under "recovers" must come back usable, never as a traceback.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from trainwell.config import SplitConfig, load_config, parse_overrides
from trainwell.data.audit import run_audit
from trainwell.data.schema import infer_schema, infer_task
from trainwell.data.sources import load_dataset, read_table
from trainwell.data.split import Splits, split_rows
from trainwell.data.target import check_split_classes, encode_target, labelled_rows
from trainwell.errors import UserError
from trainwell.evaluate.metrics import compute_metrics


def one_line_error(call: Callable[[], object], *words: str) -> str:
    """Run `call`, expect a one-line UserError holding every word; return the message."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)
    return message


# ---------------------------------------------------------------- data files: refused with one line

BAD_CSV: dict[str, tuple[bytes, list[str]]] = {
    "ragged row": (b"a,b,y\n1,2,3\n4,5,6,7\n1,2,3\n", ["line 3 has 4 fields but the header has 3", "quote"]),
    "every row has an extra field": (b"a,b,y\n1,2,3,4\n5,6,7,8\n", ["line 2 has 4 fields but the header has 3"]),
    "unclosed quote": (b'a,b,y\n1,2,3\n4,"five,6\n7,8,9\n', ['a quote (") opened on line 3 is never closed']),
    "duplicate header": (b"a,b,a,y\n1,2,3,4\n", ["duplicate column names: a", "rename"]),
    "latin-1 text": ("name,y\ncafé,1\n".encode("latin-1"), ["not UTF-8", "byte 0xe9 at offset 10", "latin-1"]),
    "cp1252 quotes late in the file": (b"a,y\n" + b"1,2\n" * 5000 + b"\x93x\x94,3\n", ["byte 0x93 at offset 20004"]),
    "utf-16 text": ("a,y\n1,2\n".encode("utf-16"), ["UTF-16", "save it as UTF-8"]),
    "binary data": (b"\x00\x01\x02\x03garbage", ["is binary", "offset 0"]),
    "parquet named .csv": (b"PAR1\x00\x00", ["is a Parquet file", "bad.parquet"]),
    "legacy Excel named .csv": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, ["Excel workbook", "export"]),
    "zstd-compressed": (b"(\xb5/\xfd" + b"\x00" * 16, ["zstd-compressed"]),
    "corrupt gzip": (b"\x1f\x8b\x08\x00" + b"\xff" * 40, ["not a readable gzip file"]),
    "empty file": (b"", ["is empty"]),
    "blank lines only": (b"\n\n\n", ["is empty"]),
    "header only": (b"a,b,y\n", ["has no rows"]),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_bad_csv_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    data, words = BAD_CSV[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    one_line_error(lambda: read_table(path), str(path), *words)
    assert path.read_bytes() == data  # reading never changes the file


def test_xlsx_named_csv_is_called_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    one_line_error(lambda: read_table(path), "Excel workbook")


def test_zip_with_several_files_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", "a,y\n1,2\n")
        zf.writestr("b.csv", "a,y\n3,4\n")
    one_line_error(lambda: read_table(path), str(path))


def test_unsupported_compressed_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "data.json.gz"
    path.write_bytes(gzip.compress(b"{}"))
    one_line_error(lambda: read_table(path), '".json.gz"', ".csv, .tsv (optionally .gz")


def test_nested_values_name_the_column(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"tags": [[1, 2], [3]], "y": [0, 1]}).to_parquet(path)
    one_line_error(lambda: read_table(path), 'column "tags"', "flatten")
    one_line_error(lambda: load_dataset(pd.DataFrame({"d": [{"a": 1}, None], "y": [0, 1]})), 'column "d"')


def test_file_larger_than_the_memory_budget_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": np.arange(20_000), "y": np.arange(20_000) % 2}).to_csv(path, index=False)
    monkeypatch.setenv("TRAINWELL_MEMORY_BUDGET_GB", "0.0001")  # 100 kB
    one_line_error(lambda: read_table(path), str(path), "needs about", "kB are available", "sample it", "head -n")
    parquet = tmp_path / "big.parquet"
    pd.DataFrame({"a": np.arange(20_000.0), "y": np.arange(20_000.0)}).to_parquet(parquet)
    one_line_error(lambda: read_table(parquet), str(parquet), "needs about")
    npz = tmp_path / "big.npz"
    np.savez(npz, X=np.zeros((20_000, 2)))
    one_line_error(lambda: read_table(npz), str(npz), "needs about")
    gz = tmp_path / "big.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))  # small on disk, large once read
    one_line_error(lambda: read_table(gz), str(gz), "needs about")
    monkeypatch.setenv("TRAINWELL_MEMORY_BUDGET_GB", "lots")
    one_line_error(lambda: read_table(path), "TRAINWELL_MEMORY_BUDGET_GB must be a number", "'lots'")
    monkeypatch.setenv("TRAINWELL_MEMORY_BUDGET_GB", "1")
    assert len(read_table(path)) == 20_000


# ---------------------------------------------------------------- data files: recovered, documented


def test_compressed_csv_is_read_by_content(tmp_path: Path) -> None:
    """.csv.gz/.bz2/.xz/.zip and .tsv.gz are read; a gzip file named plain .csv is read too (by its magic bytes)."""
    text = b"a,b,y\n1,x,0\n2,y,1\n"
    expected = pd.read_csv(io.BytesIO(text))
    files = {
        "d.csv.gz": gzip.compress(text), "d.csv.bz2": bz2.compress(text), "d.csv.xz": lzma.compress(text),
        "d.tsv.gz": gzip.compress(text.replace(b",", b"\t")), "gzip-but-named.csv": gzip.compress(text),
    }  # fmt: skip
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), expected, obj=name)
    with zipfile.ZipFile(tmp_path / "d.csv.zip", "w") as zf:
        zf.writestr("d.csv", text)
    pd.testing.assert_frame_equal(read_table(tmp_path / "d.csv.zip"), expected)


def test_latin1_inside_gzip_is_still_called_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "l1.csv.gz"
    path.write_bytes(gzip.compress("name,y\ncafé,1\n".encode("latin-1")))
    one_line_error(lambda: read_table(path), "not UTF-8", "byte 0xe9 at offset 10")


def test_utf8_with_bom_short_rows_and_trailing_separators_are_read(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfa,y\n1,2\n")
    assert list(read_table(bom).columns) == ["a", "y"]
    short = tmp_path / "short.csv"
    short.write_bytes(b"a,b,y\n1,2\n3,4,5\n")  # a row with fewer fields: its last values are missing
    frame = read_table(short)
    assert frame["y"].isna().tolist() == [True, False]
    trailing = tmp_path / "trailing.csv"
    trailing.write_bytes(b"a,b\n1,2,\n3,4,\n")  # a separator ending every data row: not an index column
    assert read_table(trailing).to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_thousands_separators_are_read_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "money.csv"
    path.write_bytes(b'amount,code,y\n"1,234",007,0\n"-12,345,678.5",12,1\n7,"1,2",0\n')
    frame = read_table(path)
    assert frame["amount"].tolist() == [1234.0, -12345678.5, 7.0]
    assert frame["code"].tolist() == ["007", "12", "1,2"]  # not every value a grouped number: left as text
    parquet = tmp_path / "money.parquet"
    pd.DataFrame({"amount": ["1,234", None, "5"]}).to_parquet(parquet)  # any source: the same rule
    assert read_table(parquet)["amount"].tolist()[::2] == [1234.0, 5.0]


def test_mixed_numbers_and_words_are_numeric_with_a_warning(tmp_path: Path) -> None:
    """Mostly numbers: numeric, the words become missing values and the audit warns; else categorical."""
    n = 40
    frame = pd.DataFrame({"mostly": [str(i) for i in range(n - 2)] + ["n/a", "unknown"],
                          "half": [str(i % 5) if i % 2 else f"w{i % 5}" for i in range(n)],
                          "objects": [1, "a", 2.5, None] * (n // 4), "y": [0, 1] * (n // 2)})  # fmt: skip
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    schema = infer_schema(read_table(path), "y")
    assert schema == {"mostly": "numeric", "half": "categorical", "objects": "categorical"}
    findings = run_audit(read_table(path), target="y", schema=schema)
    words = [f for f in findings if f.column == "mostly" and "not numbers" in f.message]
    assert len(words) == 1 and words[0].severity == "warning"
    assert words[0].evidence["examples"] == ["unknown"]  # "n/a" is one of pandas' missing-value markers
    mostly_numbers = pd.DataFrame({"o": pd.Series([*range(n - 1), "x"], dtype=object), "y": [0, 1] * (n // 2)})
    assert infer_schema(load_dataset(mostly_numbers).frame, "y") == {"o": "numeric"}


def test_integers_beyond_64_bits_are_read_as_text(tmp_path: Path) -> None:
    """pandas reads them as Python ints, which every number conversion refuses; they stay their digits."""
    path = tmp_path / "long.csv"
    path.write_text(f"account,y\n1{'0' * 400},1\n{'9' * 25},0\n7,1\n")
    frame = read_table(path)
    assert frame["account"].tolist() == [f"1{'0' * 400}", "9" * 25, "7"]
    assert infer_schema(frame, "y") == {"account": "numeric"}
    findings = run_audit(frame, target="y")
    assert any(f.column == "account" and "infinite" in f.message and len(f.message) < 120 for f in findings)


def test_huge_number_of_categories_is_an_id_and_inference_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 60_000
    codes = np.array([f"c{v}" for v in rng.integers(0, 80_000, n)])  # about 50k distinct in 60k rows
    frame = pd.DataFrame({"code": codes, "city": rng.choice(["a", "b", "c"], n), "y": rng.integers(0, 2, n)})
    started = time.perf_counter()
    schema = infer_schema(frame, "y")
    assert time.perf_counter() - started < 3
    assert schema == {"code": "id", "city": "categorical"}
    small = pd.DataFrame({"code": [f"c{i % 10}" for i in range(20)], "y": [0, 1] * 10})  # 50% unique, few rows
    assert infer_schema(small, "y") == {"code": "categorical"}


# ---------------------------------------------------------------- the target


def test_all_missing_target_names_the_target_not_a_feature() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [np.nan] * 3})
    one_line_error(lambda: labelled_rows(frame, "y", "d.csv"), 'd.csv: target "y" has no values (every row')
    one_line_error(lambda: encode_target(frame["y"], "classification", "y", "d.csv"), 'target "y" has no values')
    # the schema step says the same even when handed the rows without a target (an empty frame)
    one_line_error(lambda: infer_schema(frame[frame["y"].notna()], "y"), 'target "y" has no values')


def test_missing_target_rows_are_dropped_and_counted() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": ["a", None, "b", np.nan]})
    rows, dropped = labelled_rows(frame, "y", "d.csv")
    assert dropped == 2 and rows["x"].tolist() == [1, 3]
    one_line_error(lambda: encode_target(frame["y"], "classification", "y", "d.csv"), "2 missing value(s)")


def test_single_example_class_is_named_with_its_row_count() -> None:
    y = pd.Series(["a"] * 10 + ["b"] * 10 + ["lonely"])
    words = ["target \"label\" has 1 class(es) with a single row: 'lonely'", "drop those rows or merge"]
    one_line_error(lambda: encode_target(y, "classification", "label", "d.csv"), *words)
    many = pd.Series([f"c{i}" for i in range(30)] + ["a", "a"])
    one_line_error(lambda: encode_target(many, "classification", "label", "d.csv"), "30 class(es)", "(+25 more)")


def test_single_class_and_bad_regression_targets() -> None:
    one_line_error(lambda: encode_target(pd.Series(["a"] * 5), "classification", "y", "d.csv"), "single class 'a'")
    one_line_error(lambda: encode_target(pd.Series(["1", "x"]), "regression", "y", "d.csv"), "not numeric", "'x'")
    inf = pd.Series([1.0, np.inf, -np.inf])
    one_line_error(lambda: encode_target(inf, "regression", "y", "d.csv"), "2 infinite value(s)", "row 1")


def test_encoding_keeps_the_old_behaviour() -> None:
    y, classes = encode_target(pd.Series(np.array([2, 1, 2, 1], dtype=np.int64)), "classification", "y", "s")
    assert y.tolist() == [1, 0, 1, 0] and classes == [1, 2] and type(classes[0]) is int
    y, classes = encode_target(pd.Series(["1.5", "2"]), "regression", "y", "s")
    assert y.tolist() == [1.5, 2.0] and classes == []


def splits(train: list[int], validation: list[int], test: list[int]) -> Splits:
    return Splits(*(np.asarray(rows, dtype=np.int64) for rows in (train, validation, test)))


def test_class_missing_from_training_is_an_error_from_validation_a_warning() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    one_line_error(lambda: check_split_classes(y, splits([0, 1, 2, 3], [], [4, 5]), ["a", "b", "c"], "d.csv"),
                   "d.csv: class(es) 'c' (2 rows) have no row in the training split")  # fmt: skip
    found = check_split_classes(y, splits([0, 2, 4, 1], [3], [5]), ["a", "b", "c"], "d.csv")
    assert found == ["class(es) 'a', 'c' have no row in the validation split; per-class scores there leave them out",
                     "class(es) 'a', 'b' have no row in the test split; per-class scores there leave them out"]
    assert check_split_classes(np.array([1.0, 2.0]), splits([0], [], [1]), [], "d.csv") == []


@pytest.mark.parametrize("seed", range(20))
def test_a_class_too_rare_to_stratify_still_gets_a_training_row(seed: int) -> None:
    """Recovery: when stratifying fails, the random split keeps one row of each class for training."""
    frame = pd.DataFrame({"y": ["a"] * 6 + ["b"] * 6 + ["r"] * 2 + ["s"] * 2 + ["t"] * 2})
    y, classes = encode_target(frame["y"], "classification", "y", "d.csv")
    s = split_rows(frame, SplitConfig(validation=0.2, test=0.2), task="classification", target="y", seed=seed)
    assert s.method == "random"  # 4 test rows cannot hold 5 classes
    check_split_classes(y, s, classes, "d.csv")  # no class without a training row (a plain shuffle: 16 of 40 seeds)
    assert set(y[s.train]) == set(range(len(classes)))


def test_split_errors_are_one_line() -> None:
    tiny = pd.DataFrame({"x": [1, 2], "y": [0, 1]})
    one_line_error(lambda: split_rows(tiny, SplitConfig(), task="classification", target="y", seed=0),
                   "split: 2 rows are too few", "split.test 0.15 (1 row)", "no training row")  # fmt: skip
    empty = tiny.iloc[:0]
    one_line_error(lambda: split_rows(empty, SplitConfig(), task="classification", target="y", seed=0),
                   "no rows to split")  # fmt: skip
    one_line_error(lambda: split_rows(tiny, SplitConfig(validation=0.5, test=0.5), task="regression",
                                      target="y", seed=0), "must be below 1")  # fmt: skip


def test_fewer_test_rows_than_classes_recovers() -> None:
    frame = pd.DataFrame({"y": list("abcdefgh") * 2})
    s = split_rows(frame, SplitConfig(validation=0.0, test=0.1), task="classification", target="y", seed=0)
    y, classes = encode_target(frame["y"], "classification", "y", "d.csv")
    warnings = check_split_classes(y, s, classes, "d.csv")
    assert len(warnings) == 1 and "test split" in warnings[0]


# ---------------------------------------------------------------- metrics


def test_metrics_with_a_single_class_or_absent_classes() -> None:
    """log_loss is over every label (labels=); roc_auc is left out when y holds one class."""
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]])
    m = compute_metrics("classification", np.array([0, 0, 0]), np.array([0, 1, 0]), proba, n_classes=2)
    assert "roc_auc" not in m and m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8])))
    narrow = compute_metrics("classification", np.array([0, 1, 2]), np.array([0, 1, 1]), proba, n_classes=3)
    assert np.isfinite(narrow["log_loss"]) and len(narrow["confusion_matrix"]) == 3


def test_metrics_with_non_finite_outputs() -> None:
    y = np.array([0, 1, 1])
    bad = np.array([[np.nan, np.nan], [0.4, 0.6], [0.8, 0.2]])
    m = compute_metrics("classification", y, np.array([0.0, 1.0, np.nan]), bad, n_classes=2)
    assert np.isnan(m["log_loss"]) and np.isnan(m["roc_auc"]) and m["accuracy"] == pytest.approx(2 / 3)
    r = compute_metrics("regression", np.array([0.0, 1.0, 2.0]), np.array([np.inf, 1.0, 2.0]))
    assert r["mse"] == np.inf and np.isnan(r["r2"])
    r = compute_metrics("regression", np.array([0.0, 1.0]), np.array([np.nan, 1.0]))
    assert np.isnan(r["mae"])
    huge = compute_metrics("regression", np.array([0.0, 1.0]), np.array([1e308, -1e308]))
    assert huge["mse"] == np.inf


# ---------------------------------------------------------------- the audit


def audit_frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["u", "v"], n),
                          "y": rng.choice(["p", "q"], n)})  # fmt: skip
    cut = np.arange(n)
    return frame, {"train": cut[: n * 7 // 10], "validation": cut[n * 7 // 10 : n * 85 // 100],
                   "test": cut[n * 85 // 100 :]}  # fmt: skip


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e308, -1e308, "column of inf"])
def test_audit_survives_infinite_and_huge_values(value: object) -> None:
    frame, parts = audit_frame()
    if value == "column of inf":
        frame["a"] = np.inf
    else:
        frame.loc[[3, 50, 100], "a"] = value
    findings = run_audit(frame, target="y", splits=parts)
    infinite = [f for f in findings if f.column == "a" and "infinite" in f.message]
    huge = [f for f in findings if f.column == "a" and "beyond float32's range" in f.message]
    if isinstance(value, float) and np.isinf(value) or value == "column of inf":
        assert len(infinite) == 1 and infinite[0].severity == "warning" and infinite[0].check == "missing"
        assert not huge
    else:
        assert not infinite and len(huge) == 1 and huge[0].severity == "warning"


def test_audit_survives_an_infinite_regression_target() -> None:
    frame, parts = audit_frame()
    frame["y"] = np.random.default_rng(1).normal(size=len(frame))
    frame.loc[[5, 6], "y"] = [np.inf, 1e308]
    findings = run_audit(frame, target="y", task="regression", splits=parts)
    assert any(f.column == "y" and "1 of 120 values are infinite" in f.message for f in findings)


# ---------------------------------------------------------------- the config


def test_config_file_problems_are_one_line(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café\ndata: {source: x.csv}\n".encode("latin-1"))
    one_line_error(lambda: load_config(latin), str(latin), "not UTF-8 text (byte 0xe9 at offset 9)", "save it as UTF-8")
    one_line_error(lambda: load_config(tmp_path), "is a folder")
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("data:\n\tsource: x.csv\n")
    one_line_error(lambda: load_config(tabs), "not valid YAML at line 2")
    twice = tmp_path / "twice.yaml"
    twice.write_text("data: {source: x.csv}\ntrain: {lr: 0.1}\nseed: 1\ntrain: {epochs: 3}\n")
    one_line_error(lambda: load_config(twice), "not valid YAML at line 4", 'duplicate key "train"')
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: ok\ndata: {source: x.csv}\n")
    assert load_config(bom).name == "ok"


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("train.lr=[1,", ['"train.lr=[1,"', "not valid YAML"]),
        ("train.lr={a: 1", ["not valid YAML"]),
        ('name="unclosed', ["not valid YAML"]),
        ("train.lr", ["section.field=value"]),
        ("=3", ['"=3"', "section.field=value"]),
        ("train.=1", ["section.field=value"]),
        (".lr=1", ["section.field=value"]),
        ("train..lr=1", ["section.field=value"]),
        ("train. lr=1", ["section.field=value"]),
    ],
)
def test_malformed_override_names_itself(override: str, words: list[str]) -> None:
    one_line_error(lambda: parse_overrides([override]), *words)


def test_override_problems_after_parsing() -> None:
    one_line_error(lambda: parse_overrides(["train=1", "train.lr=2"]), 'conflicts with another override of "train"')
    base = {"data": {"source": "x.csv"}}
    one_line_error(lambda: load_config(base, parse_overrides(["train.lr=fast"])), 'field "train.lr"', "'fast'")
    one_line_error(lambda: load_config(base, parse_overrides(["train.lrr=1"])), 'unknown field "train.lrr"')
    one_line_error(lambda: load_config(base, parse_overrides(["train=5"])), 'field "train"')
    long = "x" * 500
    message = one_line_error(lambda: load_config(base, parse_overrides([f"train.epochs={long}"])), "...")
    assert len(message) < 300
    assert parse_overrides(["data.source='a: b.csv'", "train.lr="]) == {"data": {"source": "a: b.csv"},
                                                                        "train": {"lr": None}}  # fmt: skip


# ---------------------------------------------------------------- the command line


def assert_one_error_line(code: int, out: str, err: str, *words: str) -> None:
    lines = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, (code, out, err)
    assert "Traceback" not in out + err
    for word in words:
        assert word in " ".join(err.split()), (word, err)


def test_cli_ragged_csv(cli, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_bytes(b"a,b,y\n1,2,0\n3,4,5,1\n")
    assert_one_error_line(*cli("train", "--data", path, "--target", "y", "-q"), "line 3 has 4 fields")


def test_cli_latin1_config(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_bytes("name: café\ndata: {source: builtin:iris}\n".encode("latin-1"))
    assert_one_error_line(*cli("train", cfg, "-q"), "not UTF-8 text")


def test_cli_malformed_set(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "builtin:iris"}}))
    assert_one_error_line(*cli("train", cfg, "--set", "train.lr=[1,", "-q"), 'override "train.lr=[1,"')
    assert_one_error_line(*cli("train", cfg, "--set", "train..lr=1", "-q"), "section.field=value")


def test_cli_all_missing_target(cli, tmp_path: Path) -> None:
    path = tmp_path / "nolabel.csv"
    pd.DataFrame({"x": range(10), "y": [None] * 10}).to_csv(path, index=False)
    assert_one_error_line(*cli("train", "--data", path, "--target", "y", "-q"), 'target "y" has no values')


def test_cli_memory_budget(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.csv"
    pd.DataFrame({"x": range(5000), "y": [0, 1] * 2500}).to_csv(path, index=False)
    monkeypatch.setenv("TRAINWELL_MEMORY_BUDGET_GB", "0.00001")
    assert_one_error_line(*cli("train", "--data", path, "--target", "y", "-q"), "needs about", "available")


def test_cli_audit_reports_infinite_values(cli, tmp_path: Path) -> None:
    frame, _ = audit_frame()
    frame.loc[[1, 2], "a"] = np.inf
    path = tmp_path / "inf.csv"
    frame.to_csv(path, index=False)  # written as "inf", read back as infinity
    code, out, err = cli("audit", path, "--target", "y", "--json")
    assert code == 0, err
    assert any(f["column"] == "a" and "infinite" in f["message"] for f in yaml.safe_load(out)["findings"])


def test_infer_task_on_an_infinite_target_is_regression() -> None:
    assert infer_task(pd.Series([1.0, 2.0, np.inf])) == "regression"


# ---------------------------------------------------------------- through `trainwell train`, end to end


def _train_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "t": np.arange(n), "y": np.where(x > 0, "a", "b")})


def _train(frame: pd.DataFrame, tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    import trainwell

    settings = {"data.target": "y", "model": "logistic_regression", "validation.explain": False,
                "fairness.compare": False} | overrides  # fmt: skip
    return trainwell.train(data=frame, run_dir=tmp_path / "run", quiet=True, **settings)


def test_train_refuses_a_class_with_a_single_row(tmp_path: Path) -> None:
    frame = _train_frame()
    frame.loc[5, "y"] = "lonely"
    with pytest.raises(UserError, match="lonely"):
        _train(frame, tmp_path)
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_class_that_only_the_test_split_holds(tmp_path: Path) -> None:
    frame = _train_frame()
    frame.loc[55:, "y"] = "late"  # split by time: the last rows, and so this class, land in test only
    with pytest.raises(UserError, match="'late'.*no row in the training split"):
        _train(frame, tmp_path, **{"split.time_column": "t"})


def test_train_refuses_an_infinite_regression_target(tmp_path: Path) -> None:
    frame = _train_frame().assign(y=lambda f: f["x"] * 2.0)
    frame.loc[3, "y"] = np.inf
    with pytest.raises(UserError, match='target "y"'):
        _train(frame, tmp_path, model="linear_regression")


def test_train_warns_when_a_class_is_missing_from_validation(tmp_path: Path) -> None:
    frame = _train_frame(80)
    frame.loc[[10, 78], "y"] = "rare"  # by time: one row in train, one in test, none in validation
    run = _train(frame, tmp_path, **{"split.stratify": False, "split.time_column": "t", "split.validation": 0.1,
                                     "split.test": 0.05})  # fmt: skip
    findings = [f for f in run.metrics["audit"]["findings"] if "no row in the" in f["message"]]
    assert findings and findings[0]["severity"] == "warning" and "'rare'" in findings[0]["message"]
