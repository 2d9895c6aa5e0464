"""Splits are disjoint, cover every row, match the fractions, repeat for a seed, and never leak groups or time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainwell.config import SplitConfig
from trainwell.data.split import Splits, split_rows
from trainwell.errors import UserError

FAST = settings(max_examples=40, deadline=None)


def parts(s: Splits) -> list[np.ndarray]:
    return [s.train, s.validation, s.test]


def assert_partition(s: Splits, n: int) -> None:
    """Disjoint, int64, covering 0..n-1 exactly once."""
    joined = np.concatenate(parts(s))
    assert all(p.dtype == np.int64 for p in parts(s))
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))


def labelled(n: int, n_classes: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, n_classes, n)})


@FAST
@given(
    n=st.integers(10, 300),
    validation=st.sampled_from([0.0, 0.1, 0.15, 0.3]),
    test=st.sampled_from([0.1, 0.2, 0.35]),
    seed=st.integers(0, 2**31 - 1),
    stratify=st.booleans(),
)
def test_partition_sizes_and_determinism(n: int, validation: float, test: float, seed: int, stratify: bool) -> None:
    frame = labelled(n, 3, seed)
    cfg = SplitConfig(validation=validation, test=test, stratify=stratify)
    s = split_rows(frame, cfg, task="classification", target="y", seed=seed)
    assert_partition(s, n)
    assert abs(len(s.test) - test * n) <= 1 and len(s.test) >= 1
    assert abs(len(s.validation) - validation * n) <= 1 and (len(s.validation) > 0) == (validation > 0)
    again = split_rows(frame, cfg, task="classification", target="y", seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts(s), parts(again), strict=True))
    assert s.summary(frame) == again.summary(frame)


@FAST
@given(n=st.integers(60, 400), n_classes=st.integers(2, 5), seed=st.integers(0, 10_000))
def test_stratification_keeps_class_proportions(n: int, n_classes: int, seed: int) -> None:
    frame = labelled(n, n_classes, seed)
    s = split_rows(frame, SplitConfig(validation=0.2, test=0.2), task="classification", target="y", seed=seed)
    assert s.method == "stratified"
    share = frame["y"].value_counts(normalize=True)
    for rows, tolerance in ((s.test, 1), (s.validation, 2)):
        counts = frame["y"].iloc[rows].value_counts().reindex(share.index, fill_value=0)
        assert (abs(counts - share * len(rows)) <= tolerance).all()


def test_rare_class_falls_back_to_random_without_crashing() -> None:
    frame = pd.DataFrame({"y": ["a"] * 30 + ["b"] * 30 + ["lonely"]})
    s = split_rows(frame, SplitConfig(), task="classification", target="y", seed=0)
    assert s.method == "random"
    assert_partition(s, len(frame))


def test_regression_and_stratify_off_are_random() -> None:
    frame = labelled(50, 2, 0)
    assert split_rows(frame, SplitConfig(), task="regression", target="x", seed=0).method == "random"
    no = split_rows(frame, SplitConfig(stratify=False), task="classification", target="y", seed=0)
    assert no.method == "random"


def test_seed_changes_the_split_and_summary_fingerprints() -> None:
    frame = labelled(100, 2, 0)
    a = split_rows(frame, SplitConfig(), task="classification", target="y", seed=0)
    b = split_rows(frame, SplitConfig(), task="classification", target="y", seed=1)
    sa, sb = a.summary(frame), b.summary(frame)
    assert set(sa) == {"train", "validation", "test"}
    assert sa["test"]["rows"] == len(a.test) and len(sa["test"]["fingerprint"]) == 16
    int(sa["test"]["fingerprint"], 16)
    assert sa["test"]["fingerprint"] != sb["test"]["fingerprint"]


def test_fingerprint_follows_index_values_not_positions() -> None:
    frame = labelled(40, 2, 0)
    s = split_rows(frame, SplitConfig(), task="classification", target="y", seed=0)
    shifted = frame.set_axis(frame.index + 1000)
    assert s.summary(frame)["test"]["fingerprint"] != s.summary(shifted)["test"]["fingerprint"]


def test_fractions_leaving_no_train_rows_name_the_fields() -> None:
    with pytest.raises(UserError, match=r"split\.validation \+ split\.test must be below 1"):
        split_rows(labelled(50, 2, 0), SplitConfig(validation=0.5, test=0.5), task="regression", target=None, seed=0)


def test_too_few_rows_is_a_user_error() -> None:
    with pytest.raises(UserError, match="2 rows are too few"):
        split_rows(labelled(2, 2, 0), SplitConfig(), task="classification", target="y", seed=0)


# ---------------------------------------------------------------- groups


@FAST
@given(sizes=st.lists(st.integers(1, 12), min_size=3, max_size=40), seed=st.integers(0, 10_000))
def test_group_split_never_shares_a_group(sizes: list[int], seed: int) -> None:
    groups = np.repeat([f"g{i}" for i in range(len(sizes))], sizes)
    frame = pd.DataFrame({"patient": groups, "y": np.arange(len(groups)) % 2})
    if len(frame) < 3:
        return
    s = split_rows(frame, SplitConfig(group_column="patient"), task="classification", target="y", seed=seed)
    assert s.method == "group"
    assert_partition(s, len(frame))
    sets = [set(frame["patient"].iloc[p]) for p in parts(s)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert all(len(p) > 0 for p in parts(s))


def test_group_split_sizes_track_the_fractions_with_many_small_groups() -> None:
    frame = pd.DataFrame({"g": np.repeat(np.arange(200), 3)})
    s = split_rows(frame, SplitConfig(validation=0.15, test=0.15, group_column="g"), task="regression",
                   target=None, seed=0)  # fmt: skip
    assert abs(len(s.test) - 90) <= 3 and abs(len(s.validation) - 90) <= 3


def test_group_column_errors() -> None:
    frame = pd.DataFrame({"patient": ["a", "a", "b", "b"], "y": [0, 1, 0, 1]})
    with pytest.raises(UserError, match=r'split\.group_column "patiant".*did you mean "patient"'):
        split_rows(frame, SplitConfig(group_column="patiant"), task="classification", target="y", seed=0)
    with pytest.raises(UserError, match="has 2 distinct value.*at least 3"):
        split_rows(frame, SplitConfig(group_column="patient"), task="classification", target="y", seed=0)


# ---------------------------------------------------------------- time


@FAST
@given(
    times=st.lists(st.integers(0, 60), min_size=12, max_size=200),
    validation=st.sampled_from([0.0, 0.15, 0.2]),
)
def test_time_split_orders_and_never_splits_a_timestamp(times: list[int], validation: float) -> None:
    frame = pd.DataFrame({"day": pd.to_datetime("2024-01-01") + pd.to_timedelta(times, unit="D")})
    cfg = SplitConfig(validation=validation, test=0.2, time_column="day")
    try:
        s = split_rows(frame, cfg, task="regression", target=None, seed=0)
    except UserError as exc:
        assert "too few distinct times" in str(exc)
        assert frame["day"].nunique() < 10
        return
    assert_partition(s, len(frame))
    day = frame["day"]
    spans = [(day.iloc[p].min(), day.iloc[p].max()) for p in parts(s) if len(p)]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_time_split_sizes_with_unique_string_dates() -> None:
    dates = pd.date_range("2020-01-01", periods=100, freq="D").strftime("%d %b %Y")
    frame = pd.DataFrame({"when": np.random.default_rng(0).permutation(dates)})
    s = split_rows(frame, SplitConfig(time_column="when"), task="regression", target=None, seed=0)
    assert (s.method, len(s.train), len(s.validation), len(s.test)) == ("time", 70, 15, 15)
    latest = pd.to_datetime(frame["when"], format="%d %b %Y")
    assert latest.iloc[s.test].min() == pd.Timestamp("2020-03-26")


def test_time_column_errors() -> None:
    frame = pd.DataFrame({"when": ["2020-01-01", "garbage", "2020-01-03", "2020-01-04"] * 5})
    with pytest.raises(UserError, match=r'split\.time_column "whn".*did you mean "when"'):
        split_rows(frame, SplitConfig(time_column="whn"), task="regression", target=None, seed=0)
    with pytest.raises(UserError, match=r"has 5 missing or unreadable time\(s\) \(e\.g\. 'garbage'\)"):
        split_rows(frame, SplitConfig(time_column="when"), task="regression", target=None, seed=0)
    same = pd.DataFrame({"when": [5] * 20})
    with pytest.raises(UserError, match="too few distinct times"):
        split_rows(same, SplitConfig(time_column="when"), task="regression", target=None, seed=0)


def test_group_and_time_together_is_refused() -> None:
    frame = pd.DataFrame({"g": [1, 2, 3] * 4, "t": range(12)})
    with pytest.raises(UserError, match="not both"):
        split_rows(frame, SplitConfig(group_column="g", time_column="t"), task="regression", target=None, seed=0)
