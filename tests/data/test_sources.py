"""Sources: every builtin loads offline with its target and classes; files round-trip; bad files say which."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainwell.data.sources import Dataset, list_builtin, load_dataset, read_table
from trainwell.errors import UserError

BUILTINS = {
    # name: (rows, columns incl. target, target, classes or None for regression, image_shape)
    "iris": (150, 5, "species", {"setosa", "versicolor", "virginica"}, None),
    "wine": (178, 14, "cultivar", {"class_0", "class_1", "class_2"}, None),
    "breast_cancer": (569, 31, "diagnosis", {"malignant", "benign"}, None),
    "digits": (1797, 65, "label", set(range(10)), (1, 8, 8)),
    "diabetes": (442, 11, "progression", None, None),
    "mnist": (5000, 785, "label", set(range(10)), (1, 28, 28)),
    "german_credit": (1000, 10, "risk", {"good", "bad"}, None),
}


@pytest.mark.parametrize("name", list(BUILTINS))
def test_builtin_loads_with_target_and_classes(name: str) -> None:
    rows, cols, target, classes, image_shape = BUILTINS[name]
    ds = load_dataset(f"builtin:{name}")
    assert ds.frame.shape == (rows, cols)
    assert ds.target == target and ds.name == f"builtin:{name}"
    assert ds.image_shape == image_shape
    assert list(ds.frame.index) == list(range(rows))
    assert len(ds.fingerprint) == 64
    y = ds.frame[target]
    if classes is None:
        assert y.dtype == np.float64 and y.nunique() > 100
    else:
        assert set(y.unique().tolist()) == classes
    if image_shape:
        assert list(ds.frame.columns[:-1]) == [f"pixel_{i}" for i in range(int(np.prod(image_shape)))]


def test_mnist_is_balanced_with_0_to_255_pixels() -> None:
    ds = load_dataset("builtin:mnist")
    assert ds.frame["label"].value_counts().tolist() == [500] * 10
    pixels = ds.frame.drop(columns="label").to_numpy()
    assert pixels.min() == 0 and pixels.max() == 255


def test_builtin_fingerprint_is_stable_and_distinct() -> None:
    assert load_dataset("builtin:iris").fingerprint == load_dataset("builtin:iris").fingerprint
    assert load_dataset("builtin:iris").fingerprint != load_dataset("builtin:wine").fingerprint


def test_list_builtin_names_every_dataset_with_a_description() -> None:
    listed = dict(list_builtin())
    assert set(listed) == set(BUILTINS)
    assert all(isinstance(d, str) and len(d) > 10 for d in listed.values())


def test_unknown_builtin_suggests_the_closest() -> None:
    with pytest.raises(UserError, match=r'unknown dataset "builtin:irs" \(did you mean "builtin:iris"\?\)'):
        load_dataset("builtin:irs")


def test_caller_target_overrides_builtin_target() -> None:
    ds = load_dataset("builtin:diabetes", target="bmi")
    assert ds.target == "bmi"


# ---------------------------------------------------------------- files


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.5, 2.0, np.nan], "b": ["x", "y", "z"], "label": [0, 1, 0]})


def test_csv_round_trip_and_file_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    sample_frame().to_csv(path, index=False)
    ds = load_dataset(path, target="label")
    pd.testing.assert_frame_equal(ds.frame, sample_frame(), check_dtype=False)
    assert ds.name == str(path) and ds.target == "label" and ds.image_shape is None
    assert ds.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_tsv_and_read_table(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    sample_frame().to_csv(path, sep="\t", index=False)
    pd.testing.assert_frame_equal(read_table(path), sample_frame(), check_dtype=False)


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    sample_frame().to_parquet(path)
    ds = load_dataset(path, target="label")
    pd.testing.assert_frame_equal(ds.frame, sample_frame(), check_dtype=False)


def test_npz_table_with_default_target(tmp_path: Path) -> None:
    X, y = np.arange(12.0).reshape(4, 3), np.array([0, 1, 1, 0])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load_dataset(tmp_path / "d.npz")
    assert list(ds.frame.columns) == ["x0", "x1", "x2", "y"] and ds.target == "y"
    np.testing.assert_array_equal(ds.frame[["x0", "x1", "x2"]].to_numpy(), X)
    np.testing.assert_array_equal(ds.frame["y"].to_numpy(), y)


def test_npz_without_y_has_no_default_target(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)))
    assert load_dataset(tmp_path / "d.npz").target is None


def test_npz_grey_images_are_flattened_row_major(tmp_path: Path) -> None:
    X = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.savez(tmp_path / "img.npz", X=X, y=np.array([1, 0]))
    ds = load_dataset(tmp_path / "img.npz")
    assert ds.image_shape == (1, 3, 4)
    np.testing.assert_array_equal(ds.frame.drop(columns="y").to_numpy(), X.reshape(2, -1))


def test_npz_channels_last_images_become_channels_first(tmp_path: Path) -> None:
    X = np.random.default_rng(0).integers(0, 255, size=(2, 5, 6, 3))
    np.savez(tmp_path / "rgb.npz", X=X)
    ds = load_dataset(tmp_path / "rgb.npz")
    assert ds.image_shape == (3, 5, 6)
    np.testing.assert_array_equal(ds.frame.to_numpy().reshape(2, 3, 5, 6), X.transpose(0, 3, 1, 2))


def test_dataframe_source_resets_index_and_names_columns() -> None:
    frame = pd.DataFrame(np.eye(3), index=[10, 20, 30])
    ds = load_dataset(frame)
    assert isinstance(ds, Dataset) and ds.name == "dataframe"
    assert list(ds.frame.index) == [0, 1, 2] and list(ds.frame.columns) == ["0", "1", "2"]
    changed = frame.copy()
    changed.iloc[0, 0] = 5.0
    assert load_dataset(frame).fingerprint == ds.fingerprint != load_dataset(changed).fingerprint


# ---------------------------------------------------------------- bad input


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_FILES = {
    "missing": (lambda d: d / "nope.csv", "not found"),
    "empty": (lambda d: write(d / "empty.csv", b""), "is empty"),
    "header_only": (lambda d: write(d / "head.csv", b"a,b\n"), "has no rows"),
    "extension": (lambda d: write(d / "data.xlsx", b"x"), 'unsupported extension ".xlsx"'),
    "bad_csv": (lambda d: write(d / "bad.csv", b"a,b\n1,2\n3,4,5,6,7\n"), "line 3 has 5 fields but the header has 2"),
    "binary_csv": (lambda d: write(d / "bin.csv", bytes(range(128, 256)) * 4), "not UTF-8 text (byte 0x80 at offset 0"),
    "bad_parquet": (lambda d: write(d / "bad.parquet", b"not parquet at all"), "not a readable Parquet"),
    "bad_npz": (lambda d: write(d / "bad.npz", b"not a zip"), "not a readable .npz"),
    "folder": (lambda d: (d / "dir.csv").mkdir() or d / "dir.csv", "is a folder"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_a_one_line_user_error_naming_it(tmp_path: Path, case: str) -> None:
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(UserError) as info:
        load_dataset(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_npz_without_x_lists_its_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", features=np.ones((2, 2)))
    with pytest.raises(UserError, match=r"d\.npz has no array named X \(found: features\)"):
        load_dataset(tmp_path / "d.npz")


def test_npz_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(UserError, match=r"obj\.npz is not a readable \.npz"):
        load_dataset(tmp_path / "obj.npz")


def test_npz_y_length_must_match(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.ones(2))
    with pytest.raises(UserError, match=r"y has shape \(2,\) but X has 3 rows"):
        load_dataset(tmp_path / "d.npz")


def test_target_not_a_column_suggests_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    sample_frame().to_csv(path, index=False)
    with pytest.raises(UserError, match=r'target "lable" is not a column of .*data\.csv \(did you mean "label"\?\)'):
        load_dataset(path, target="lable")


def test_duplicate_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(UserError, match="duplicate column names: a"):
        load_dataset(frame)
