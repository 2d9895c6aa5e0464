"""Train/validation/test splits without leakage: seeded, stratified, by group or by time.

The test split is held out for one final evaluation; validation guides model choice and early
stopping. Splits are row positions, disjoint and covering every row, identical for the same data,
config and seed, and summarised with fingerprints so two runs can be checked to share a test set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from trainwell.config import SplitConfig, Task
from trainwell.data.schema import parse_datetimes
from trainwell.errors import UserError, did_you_mean

SPLIT_NAMES = ("train", "validation", "test")


@dataclass
class Splits:
    """Row positions (int64, sorted) of each split into the frame that was split."""

    train: np.ndarray
    validation: np.ndarray  # empty when split.validation is 0
    test: np.ndarray
    method: str = "random"  # random, stratified, group or time: how the rows were assigned

    def summary(self, frame: pd.DataFrame) -> dict[str, dict]:
        """Rows per split and a fingerprint of which rows (by `frame.index` value) each one holds."""
        return {name: {"rows": len(getattr(self, name)), "fingerprint": rows_fingerprint(frame, getattr(self, name))}
                for name in SPLIT_NAMES}  # fmt: skip


def split_rows(frame: pd.DataFrame, cfg: SplitConfig, *, task: Task, target: str | None, seed: int) -> Splits:
    """Assign every row of `frame` to exactly one of train, validation and test.

    `split.time_column`: train is the earliest rows, test the latest, no timestamp in two splits.
    `split.group_column`: rows sharing a group value stay together. Otherwise a seeded random split,
    stratified by the target for classification when `split.stratify` and every class has enough rows.
    When some class is too rare to stratify, the split is random except that one row of every class is
    kept for training (so the model sees each class; validation or test may then lack it).

    Raises:
        UserError: no rows, fractions leave no training rows, too few rows/groups/times, or a named column
            is missing.
    """
    if cfg.validation + cfg.test >= 1:
        raise UserError(f"split.validation + split.test must be below 1 to leave training rows "
                        f"(got {cfg.validation} + {cfg.test})")  # fmt: skip
    if cfg.group_column and cfg.time_column:
        raise UserError("set split.group_column or split.time_column, not both")
    n_test, n_val = _sizes(len(frame), cfg)
    if cfg.time_column:
        return _by_time(_column(frame, cfg.time_column, "split.time_column"), n_val, n_test)
    if cfg.group_column:
        return _by_group(_column(frame, cfg.group_column, "split.group_column"), n_val, n_test, seed)
    labels = frame[target] if cfg.stratify and task == "classification" and target in frame.columns else None
    return _random(len(frame), n_val, n_test, seed, labels)


def _sizes(n: int, cfg: SplitConfig) -> tuple[int, int]:
    """Rows for test and validation: the fractions rounded, at least one each when requested."""
    if n == 0:
        raise UserError("split: no rows to split (every row was dropped, e.g. for a missing target); "
                        "check data.target and the data file")  # fmt: skip
    n_test = max(1, round(cfg.test * n))
    n_val = max(1, round(cfg.validation * n)) if cfg.validation > 0 else 0
    if n - n_test - n_val < 1:
        val = f" and split.validation {cfg.validation} ({n_val} row{'s' * (n_val != 1)})" if n_val else ""
        raise UserError(f"split: {n} rows are too few: split.test {cfg.test} ({n_test} row{'s' * (n_test != 1)}){val} "
                        "leave no training row; add rows or lower the fractions")  # fmt: skip
    return n_test, n_val


def _column(frame: pd.DataFrame, name: str, field: str) -> pd.Series:
    """A column named by a split setting, or a UserError with a suggestion."""
    if name not in frame.columns:
        raise UserError(f'{field} "{name}" is not a column of the data{did_you_mean(name, frame.columns)}')
    return frame[name]


def _make(train: np.ndarray, validation: np.ndarray, test: np.ndarray, method: str) -> Splits:
    """Splits with sorted int64 positions."""
    return Splits(*(np.sort(np.asarray(a, dtype=np.int64)) for a in (train, validation, test)), method=method)


def _random(n: int, n_val: int, n_test: int, seed: int, labels: pd.Series | None) -> Splits:
    """Seeded shuffle split; stratified by `labels` when possible, else random with a training row per class."""
    positions = np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    if labels is not None:
        strata = labels.astype(str).to_numpy()  # missing labels form their own stratum
        try:
            rest, test = train_test_split(positions, test_size=n_test, random_state=seed, stratify=strata)
            train, val = (rest, rest[:0]) if n_val == 0 else train_test_split(
                rest, test_size=n_val, random_state=seed, stratify=strata[rest])  # fmt: skip
            return _make(train, val, test, "stratified")
        except ValueError:  # a class with a single row, or fewer test rows than classes
            order = _first_of_each_class_last(order, strata, n_val + n_test)
    return _make(order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test], "random")


def _first_of_each_class_last(order: np.ndarray, strata: np.ndarray, held_out: int) -> np.ndarray:
    """Move each class's first shuffled row to the end (the training part), when enough rows remain to hold out."""
    _, first = np.unique(strata[order], return_index=True)
    keep = np.zeros(len(order), dtype=bool)
    keep[first] = True
    if len(order) - first.size < held_out:  # more classes than rows to spare: leave it to check_split_classes
        return order
    return np.concatenate([order[~keep], order[keep]])


def _by_group(groups: pd.Series, n_val: int, n_test: int, seed: int) -> Splits:
    """Whole groups in shuffled order fill test, then validation, then train, to about the target rows.

    A group goes to the split in which the middle of its rows falls, so split sizes land as close
    to the fractions as group sizes allow.
    """
    codes, uniques = pd.factorize(groups, use_na_sentinel=False)  # missing values form one group
    needed = 3 if n_val else 2
    if len(uniques) < needed:
        raise UserError(f'split.group_column "{groups.name}" has {len(uniques)} distinct value(s); '
                        f"a group split needs at least {needed}")  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))[order]
    middles = np.cumsum(sizes) - sizes / 2
    where = np.where(middles < n_test, 2, np.where(middles < n_test + n_val, 1, 0))  # 2 test, 1 val, 0 train
    where = _ensure_each(where, [2, 1, 0] if n_val else [2, 0])
    split_of_group = np.empty(len(uniques), dtype=np.int64)
    split_of_group[order] = where
    row_split = split_of_group[codes]
    return _make(*(np.flatnonzero(row_split == k) for k in (0, 1, 2)), method="group")


def _ensure_each(where: np.ndarray, wanted: list[int]) -> np.ndarray:
    """Give every wanted split at least one group, taking from the split holding the most groups."""
    where = where.copy()
    for split in wanted:
        if not (where == split).any():
            counts = {k: int((where == k).sum()) for k in wanted}
            donor = max(counts, key=lambda k: counts[k])
            where[np.flatnonzero(where == donor)[0]] = split
    return where


def _by_time(times: pd.Series, n_val: int, n_test: int) -> Splits:
    """Earliest rows train, latest test; a boundary never splits rows that share a timestamp."""
    keys = _time_keys(times)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    n = len(keys)
    cut_test = _tie_free_cut(sorted_keys, n - n_test, low=2 if n_val else 1, high=n - 1)
    cut_val = cut_test
    if n_val and cut_test is not None:
        cut_val = _tie_free_cut(sorted_keys, cut_test - n_val, low=1, high=cut_test - 1)
    if cut_test is None or cut_val is None:
        raise UserError(f'split.time_column "{times.name}" has too few distinct times for the requested '
                        "splits; lower split.validation/split.test or split at random")  # fmt: skip
    return _make(order[:cut_val], order[cut_val:cut_test], order[cut_test:], method="time")


def _time_keys(times: pd.Series) -> np.ndarray:
    """Times as sortable int64/float keys: numbers as they are, anything else parsed as dates."""
    if pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        keys = times.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(keys)
    else:
        parsed = parse_datetimes(times)
        bad = parsed.isna().to_numpy()
        keys = parsed.dt.tz_localize(None).to_numpy().astype(np.int64)  # in the parsed unit: any year fits
    if bad.any():
        example = times[bad].iloc[0]
        raise UserError(f'split.time_column "{times.name}" has {int(bad.sum())} missing or unreadable time(s) '
                        f"(e.g. {example!r}); fill or drop those rows")  # fmt: skip
    return keys


def _tie_free_cut(sorted_keys: np.ndarray, cut: int, low: int, high: int) -> int | None:
    """The position nearest `cut` within [low, high] where the key changes (rows before < rows after)."""
    if high < low:
        return None
    changes = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1  # positions where a new time starts
    changes = changes[(changes >= low) & (changes <= high)]
    if changes.size == 0:
        return None
    return int(changes[np.argmin(np.abs(changes - cut))])


def rows_fingerprint(frame: pd.DataFrame, positions: np.ndarray) -> str:
    """16 hex digits of sha256 over the sorted index values of the rows at `positions`."""
    ids = frame.index.to_numpy()[positions]
    if np.issubdtype(ids.dtype, np.integer):
        data = np.sort(ids.astype(np.int64)).tobytes()
    else:
        data = "\n".join(sorted(str(v) for v in ids)).encode()
    return hashlib.sha256(data).hexdigest()[:16]
