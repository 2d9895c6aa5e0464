"""The preparer learns on train only, survives messy predict rows, and reloads from skops bit for bit."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone

from trainwell.artifacts import SKOPS_ALLOWED
from trainwell.config import ColumnType, PrepareConfig
from trainwell.data.prepare import build_preparer, describe_features, feature_names, load_preparer, save_preparer
from trainwell.errors import UserError

SCHEMA: dict[str, ColumnType] = {
    "age": "numeric", "member": "boolean", "city": "categorical", "signup": "datetime", "review": "text",
}  # fmt: skip


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "plot", "acting", "great", "awful", "film", "slow"]
    return pd.DataFrame({
        "age": np.where(rng.random(n) < 0.15, np.nan, rng.normal(40, 10, n)),
        "member": rng.choice(["yes", "no"], n),
        "city": rng.choice(["paris", "lyon", "nice", None], n),
        "signup": pd.date_range("2021-01-01", periods=n, freq="29h").strftime("%Y-%m-%d %H:%M"),
        "review": [" ".join(rng.choice(words, 6)) for _ in range(n)],
    })  # fmt: skip


def names(preparer: Any) -> list[str]:
    return feature_names(preparer)


def column(X: np.ndarray, preparer: object, name: str) -> np.ndarray:
    return X[:, names(preparer).index(name)]


def messy_rows() -> pd.DataFrame:
    """Predict-time surprises: a stray string, an unseen city, an unknown flag, a bad date, missing text."""
    rows = frame(4, seed=1).astype(object)
    rows.loc[0, "age"] = "forty"
    rows.loc[1, "city"] = "tokyo"
    rows.loc[2, "member"] = "maybe"
    rows.loc[3, "signup"] = "not a date"
    rows.loc[3, "review"] = None
    return rows


def test_output_is_dense_float32_with_named_columns_and_no_nan() -> None:
    train = frame()
    preparer = build_preparer(SCHEMA, PrepareConfig())
    X = preparer.fit_transform(train)
    assert isinstance(X, np.ndarray) and X.dtype == np.float32 and not np.isnan(X).any()
    assert X.shape == (len(train), len(names(preparer)))
    assert names(preparer)[:3] == ["age", "age (missing)", "member"]
    assert {"city=paris", "city=missing", "signup.year", "signup.dayofweek"} <= set(names(preparer))
    assert 'review:"great"' in names(preparer)
    assert len(set(names(preparer))) == len(names(preparer)) and not any("__" in n for n in names(preparer))


def test_numeric_is_imputed_with_the_train_median_then_standardised() -> None:
    train = frame()
    preparer = build_preparer(SCHEMA, PrepareConfig(impute_numeric="median", scaling="standard"))
    X = preparer.fit_transform(train)
    age = column(X, preparer, "age")
    assert abs(age.mean()) < 1e-5 and abs(age.std() - 1) < 1e-5
    filled = train["age"].fillna(train["age"].median())
    expected_missing = (train["age"].median() - filled.mean()) / filled.std(ddof=0)
    np.testing.assert_allclose(age[train["age"].isna().to_numpy()], expected_missing, rtol=1e-5)
    np.testing.assert_array_equal(column(X, preparer, "age (missing)"), train["age"].isna())


def test_messy_predict_rows_are_handled_not_crashed() -> None:
    preparer = build_preparer(SCHEMA, PrepareConfig(scaling="none")).fit(frame())
    rows = messy_rows()
    X = preparer.transform(rows)
    assert X.dtype == np.float32 and not np.isnan(X).any()
    assert column(X, preparer, "age (missing)")[0] == 1  # "forty" became missing
    assert column(X, preparer, "age")[0] == pytest.approx(frame()["age"].median(), rel=1e-6)
    city = X[1, [i for i, n in enumerate(names(preparer)) if n.startswith("city=")]]
    assert city.sum() == 0  # unseen category: no known column lights up
    assert column(X, preparer, "member")[2] in (0.0, 1.0)  # imputed with the most frequent
    assert (X[3, [i for i, n in enumerate(names(preparer)) if n.startswith("review:")]] == 0).all()


def test_boolean_words_become_exact_zero_and_one() -> None:
    train = pd.DataFrame({"flag": ["yes", "no", "YES", None, "no"], "sex": ["m", "f", "f", "m", "m"]})
    preparer = build_preparer({"flag": "boolean", "sex": "boolean"}, PrepareConfig()).fit(train)
    X = preparer.transform(train)
    np.testing.assert_array_equal(X[:, 0], [1, 0, 1, 0, 0])  # missing → most frequent ("no")
    np.testing.assert_array_equal(X[:, 1], [1, 0, 0, 1, 1])  # other two values: sorted, the later is 1
    assert [f.levels for f in describe_features(preparer)] == [("false", "true"), ("f", "m")]


def test_boolean_override_on_a_many_valued_column_says_what_to_do() -> None:
    train = pd.DataFrame({"size": ["s", "m", "l"]})
    with pytest.raises(UserError, match=r'column "size" is typed boolean but holds 3 values.*categorical'):
        build_preparer({"size": "boolean"}, PrepareConfig()).fit(train)


def test_max_categories_groups_rare_ones_and_ordinal_marks_unknown() -> None:
    train = pd.DataFrame({"c": list("aaaaabbbbcccdde") + [3, 3.0, "3"]})
    onehot = build_preparer({"c": "categorical"}, PrepareConfig(max_categories=3)).fit(train)
    assert names(onehot) == ["c=a", "c=b", "c=(other)"]
    ordinal = build_preparer({"c": "categorical"}, PrepareConfig(encoding="ordinal")).fit(train)
    codes = ordinal.transform(pd.DataFrame({"c": ["a", "zzz", 3, "3.0"]}))[:, 0]
    assert codes[1] == -1 and codes[2] == ordinal.transform(pd.DataFrame({"c": ["3"]}))[0, 0] != -1
    assert codes[3] == -1  # "3.0" as text is not the number 3


def test_datetime_parts_are_extracted() -> None:
    train = pd.DataFrame({"t": ["2021-03-04 05:06", "2022-12-31 23:59", None]})
    cfg = PrepareConfig(scaling="none", datetime_parts=["year", "month", "day", "dayofweek", "hour", "minute"])
    X = build_preparer({"t": "datetime"}, cfg).fit_transform(train)
    np.testing.assert_array_equal(X[0], [2021, 3, 4, 3, 5, 6])  # a Thursday
    np.testing.assert_array_equal(X[1], [2022, 12, 31, 5, 23, 59])
    np.testing.assert_array_equal(X[2], np.median(X[:2], axis=0))


def test_text_vocabulary_is_bounded_and_needs_two_documents() -> None:
    train = pd.DataFrame({"t": ["red fox", "red dog", "blue whale"] * 2 + ["unique"]})
    preparer = build_preparer({"t": "text"}, PrepareConfig()).fit(train)
    assert names(preparer) == ['t:"blue"', 't:"dog"', 't:"fox"', 't:"red"', 't:"whale"']


def test_clip_outliers_uses_train_quartiles() -> None:
    values = np.append(np.arange(1.0, 21.0), 1000.0)
    train = pd.DataFrame({"x": values})
    preparer = build_preparer({"x": "numeric"}, PrepareConfig(clip_outliers=1.5, scaling="none")).fit(train)
    q1, q3 = np.percentile(values, [25, 75])
    upper, lower = q3 + 1.5 * (q3 - q1), q1 - 1.5 * (q3 - q1)
    X = preparer.transform(pd.DataFrame({"x": [1e6, -1e6, 10.0]}))[:, 0]
    np.testing.assert_allclose(X, [upper, lower, 10.0], rtol=1e-6)
    unclipped = build_preparer({"x": "numeric"}, PrepareConfig(scaling="none")).fit(train)
    assert unclipped.transform(pd.DataFrame({"x": [1e6]}))[0, 0] == 1e6


def test_learns_on_train_only() -> None:
    train, other = frame(seed=0), frame(seed=3)
    a = build_preparer(SCHEMA, PrepareConfig()).fit(train)
    b = build_preparer(SCHEMA, PrepareConfig()).fit(pd.concat([train, other]))
    assert not np.array_equal(a.transform(other), b.transform(other))
    np.testing.assert_array_equal(a.transform(other), clone(a).fit(train).transform(other))


def test_missing_column_at_predict_time_is_named() -> None:
    preparer = build_preparer(SCHEMA, PrepareConfig()).fit(frame())
    with pytest.raises(UserError, match="lacks column.*city"):
        preparer.transform(frame().drop(columns="city"))


def test_only_identifier_columns_is_a_user_error() -> None:
    with pytest.raises(UserError, match="every feature column is an identifier"):
        build_preparer({"id": "id"}, PrepareConfig())


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize(
    "cfg",
    [PrepareConfig(), PrepareConfig(clip_outliers=2.0, scaling="robust", encoding="ordinal", missing_indicators=False)],
)
def test_skops_round_trip_reproduces_transform_exactly(tmp_path: Path, cfg: PrepareConfig) -> None:
    preparer = build_preparer(SCHEMA, cfg).fit(frame())
    path = tmp_path / "model" / "preparer.skops"
    save_preparer(preparer, path)
    loaded = load_preparer(path)
    for rows in (frame(seed=5), messy_rows()):
        np.testing.assert_array_equal(loaded.transform(rows), preparer.transform(rows))
    assert names(loaded) == names(preparer)
    assert [p.name for p in path.parent.iterdir()] == ["preparer.skops"]  # no temp file left behind


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    from fractions import Fraction

    path = tmp_path / "evil.skops"
    path.write_bytes(sio.dumps({"payload": Fraction(1, 3)}))
    with pytest.raises(UserError, match=r"refusing to load .*evil\.skops.*fractions\.Fraction"):
        load_preparer(path)


def test_missing_or_corrupt_preparer_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_preparer(tmp_path / "none.skops")
    (tmp_path / "bad.skops").write_bytes(b"garbage")
    with pytest.raises(UserError, match="is not a skops file"):
        load_preparer(tmp_path / "bad.skops")


@pytest.mark.parametrize(
    ("name", "trusted"),
    [("trainwell.data.prepare.ToNumeric", True), ("numpy.dtype", True), ("builtins.eval", False),
     ("numpy.load", False), ("pandas.read_pickle", False), ("os.system", False), ("trainwellx.Evil", False)],
)  # fmt: skip
def test_trusted_type_rule(name: str, trusted: bool) -> None:
    assert (name in SKOPS_ALLOWED) is trusted  # scikit-learn estimators like Pipeline are trusted by skops itself


def test_columns_empty_in_the_training_split_keep_their_width_silently() -> None:
    train = pd.DataFrame({"n": [np.nan] * 4, "c": [None] * 4, "t": [None] * 4, "x": [1.0, 2.0, 3.0, 4.0]})
    schema: dict[str, ColumnType] = {"n": "numeric", "c": "categorical", "t": "text", "x": "numeric"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preparer = build_preparer(schema, PrepareConfig()).fit(train)
        X = preparer.transform(pd.DataFrame({"n": [5.0], "c": ["new"], "t": ["some words"], "x": [2.5]}))
    assert names(preparer) == ["n", "x", "n (missing)", "c=missing"]
    assert X.shape == (1, 4) and not np.isnan(X).any()


# ---------------------------------------------------------------- names and units in the user's terms


@pytest.mark.parametrize("scaling", ["standard", "minmax", "robust", "none"])
def test_described_features_match_the_output_columns_and_undo_the_scaling(scaling: str) -> None:
    """Each described column is the one the preparer writes, and `original` gives back the user's values."""
    train = frame()
    cfg = PrepareConfig(scaling=scaling, impute_numeric="median")  # type: ignore[arg-type]
    preparer = build_preparer(SCHEMA, cfg).fit(train)
    X = preparer.transform(train)
    described = describe_features(preparer)
    assert len(described) == X.shape[1] == len(preparer.get_feature_names_out())
    by_name = {f.name: (j, f) for j, f in enumerate(described)}
    j, age = by_name["age"]
    filled = train["age"].fillna(train["age"].median()).to_numpy()
    np.testing.assert_allclose(age.original(X[:, j]), filled, rtol=1e-5)
    j, month = by_name["signup.month"]
    np.testing.assert_allclose(month.original(X[:, j]), pd.to_datetime(train["signup"]).dt.month, rtol=1e-5)
    j, paris = by_name["city=paris"]
    assert paris.kind == "onehot" and paris.column == "city" and paris.category == "paris"
    np.testing.assert_array_equal(X[:, j], train["city"] == "paris")
    assert by_name["member"][1].levels == ("false", "true") and by_name["age (missing)"][1].kind == "missing"
    assert {f.column for f in described if f.kind == "text"} == {"review"}


def test_ordinal_codes_name_their_categories() -> None:
    train = pd.DataFrame({"size": ["s", "m", "l", "m"]})
    preparer = build_preparer({"size": "categorical"}, PrepareConfig(encoding="ordinal")).fit(train)
    (size,) = describe_features(preparer)
    codes = preparer.transform(train)[:, 0].astype(int)
    assert size.name == "size" and [size.levels[c] for c in codes] == ["s", "m", "l", "m"]


def test_colliding_names_keep_the_users_own_and_number_the_made_up_ones() -> None:
    """A numeric column literally called "city=paris" keeps its name; the one-hot column gets "#2"."""
    train = pd.DataFrame({"city": ["paris", "lyon", "paris"], "city=paris": [1.0, 2.0, np.nan],
                          "x (missing)": [1.0, 2.0, 3.0], "x": [np.nan, 1.0, 2.0]})  # fmt: skip
    schema: dict[str, ColumnType] = {"city": "categorical", "city=paris": "numeric", "x (missing)": "numeric",
                                     "x": "numeric"}  # fmt: skip
    preparer = build_preparer(schema, PrepareConfig()).fit(train)
    X = preparer.transform(train)
    got = names(preparer)
    assert got == ["city=paris", "x (missing)", "x", "city=paris (missing)", "x (missing) #2", "city=lyon",
                   "city=paris #2"]  # fmt: skip
    np.testing.assert_array_equal(X[:, got.index("city=paris #2")], [1, 0, 1])
    np.testing.assert_array_equal(X[:, got.index("x (missing) #2")], [1, 0, 0])
