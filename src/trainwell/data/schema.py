"""Schema inference: what kind of values each column holds, and whether the target asks for classification.

The type of a column decides how it is prepared (scaled, one-hot encoded, parsed as dates, vectorised
as text, or dropped as an identifier). Inference only looks at the data; `data.column_types`
overrides it for any column, and `trainwell init` prints the inferred types so they can be checked.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from trainwell.config import ColumnType, Task
from trainwell.errors import UserError, did_you_mean

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})
_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|idx|index|key|pk|no|number)$|[a-z](Id|ID)$|^Unnamed: ?\d+$",
                      re.IGNORECASE)  # fmt: skip
_SAMPLE = 500  # values inspected for string rules; enough to decide, bounded for wide or long tables
_CLASS_LIMIT = 20  # integer targets with at most this many distinct values are classes
_MANY_CATEGORIES = 1000  # more distinct strings than this, over half of them unique: not a category


def infer_schema(
    frame: pd.DataFrame,
    target: str | None,
    overrides: dict[str, ColumnType] | None = None,
    features: list[str] | None = None,
    drop: list[str] | None = None,
) -> dict[str, ColumnType]:
    """The type of each feature column, in frame order; overrides win over inference.

    Feature columns are `features` if given, else every column but the target; `drop` is removed
    from either. Inference rules, first match wins:

    - boolean: bool dtype, or exactly two distinct values that read as a flag (0/1, true/false,
      yes/no, t/f, y/n, on/off, any case);
    - datetime: a datetime dtype;
    - numeric dtype: `id` when the values are integers, unique per row and the name looks like an
      identifier (id, *_id, customerId, uuid, index, key, pandas' "Unnamed: 0"), else `numeric`;
    - strings (sampled), and objects mixing strings with numbers (judged by their text): `numeric`
      when at least 90% parse as numbers (the rest, e.g. "?" marking gaps or stray words, become
      missing values in preparation, and the audit's missing check warns about them); `datetime`
      when at least 90% contain a digit and parse as dates; `id` when the name looks like an
      identifier, or at least 20 values are 95% unique single short tokens; `text` when the median
      value has 3+ words and over half are distinct; `id` when over 1,000 distinct values make up
      more than half the rows (too many to one-hot encode, too unique to generalise);
      otherwise `categorical`;
    - anything else (category dtype, other objects): `categorical`.

    Raises:
        UserError: a named column does not exist, the target has no value, the target is listed as a
            feature, no feature is left, or a feature column is entirely empty.
    """
    overrides = dict(overrides or {})
    _check_columns(frame, features or [], "data.features")
    _check_columns(frame, drop or [], "data.drop")
    _check_columns(frame, overrides, "data.column_types")
    if target is not None and target in frame.columns and not frame[target].notna().any():
        raise UserError(f'target "{target}" has no values (every row is missing); '
                        "fill it in or choose another data.target")  # fmt: skip
    if features is not None and target is not None and target in features:
        raise UserError(f'data.features lists the target "{target}"; remove it (the target is never a feature)')
    chosen = set(features) if features is not None else set(frame.columns) - {target}
    chosen -= set(drop or [])
    columns = [c for c in frame.columns if c in chosen]
    if not columns:
        raise UserError("no feature columns left after data.features/data.drop; keep at least one column")
    schema: dict[str, ColumnType] = {}
    for name in columns:
        series = frame[name]
        if overrides.get(name) != "id" and not series.notna().any():
            raise UserError(f'column "{name}" is entirely empty; drop it with data.drop: [{name}]')
        schema[name] = overrides[name] if name in overrides else infer_column(series)
    return schema


def infer_column(series: pd.Series) -> ColumnType:
    """The type of one column by the rules listed in `infer_schema`."""
    values = series.dropna()
    name = str(series.name)
    if pd.api.types.is_bool_dtype(series) or _is_flag(values):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        return "id" if looks_like_id_name(name) and _unique_integers(values) else "numeric"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    if not all(isinstance(v, (str, int, float, np.number)) for v in values.iloc[:_SAMPLE]):
        return "categorical"
    return _infer_strings(name, values.astype(str))


def infer_task(y: pd.Series) -> Task:
    """classification for labels (non-numeric, boolean, or a few distinct integers), else regression.

    Integer-valued numbers are classes when there are at most 20 distinct values, or at most 5% of
    the rows are distinct values; set `data.task` when this guess is wrong.
    """
    values = y.dropna()
    if values.empty:
        raise UserError(f'target "{y.name}" is entirely empty; choose another data.target')
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    numbers = values.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
        return "regression"
    distinct = len(np.unique(numbers))
    few = distinct <= _CLASS_LIMIT or distinct <= 0.05 * len(numbers)
    return "classification" if few else "regression"


# ---------------------------------------------------------------- rules


def _infer_strings(name: str, values: pd.Series) -> ColumnType:
    """String rules: numbers in disguise, dates, identifiers, free text, categories."""
    sample = values.iloc[:_SAMPLE].str.strip()
    if sample.empty:
        return "categorical"
    if pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.9:
        return "id" if looks_like_id_name(name) and _unique_integers(pd.to_numeric(values, errors="coerce")) \
            else "numeric"  # fmt: skip
    if sample.str.contains(r"\d").mean() >= 0.9 and parse_datetimes(sample).notna().mean() >= 0.9:
        return "datetime"
    unique_ratio = values.nunique() / len(values)
    single_tokens = not sample.str.contains(r"\s").any() and sample.str.len().max() <= 64
    if (looks_like_id_name(name) and unique_ratio == 1.0) or (
        len(values) >= 20 and unique_ratio >= 0.95 and single_tokens
    ):
        return "id"
    if sample.str.split().str.len().median() >= 3 and unique_ratio > 0.5:
        return "text"
    if len(values) * unique_ratio > _MANY_CATEGORIES and unique_ratio > 0.5:
        return "id"
    return "categorical"


def _is_flag(values: pd.Series) -> bool:
    """Exactly two distinct values, one reading as true and the other as false (0/1, yes/no, ...)."""
    distinct = pd.unique(values)
    if len(distinct) != 2:
        return False
    words = {flag_word(v) for v in distinct}
    return len(words & TRUE_WORDS) == 1 and len(words & FALSE_WORDS) == 1


def flag_word(value: object) -> str:
    """A value as the word a flag test compares: 1.0 → "1", True → "true", " Yes " → "yes"."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.number)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip().lower()


def looks_like_id_name(name: str) -> bool:
    """id, user_id, customerId, uuid, order_no, row index, or the "Unnamed: 0" column pandas writes for an index
    (the one rule: schema inference and the audit both use it)."""
    return bool(_ID_NAME.search(name.strip()))


def _unique_integers(values: pd.Series) -> bool:
    """Every value an integer and no value repeated (rows identified by it)."""
    if values.empty or values.isna().any():
        return False
    numbers = values.to_numpy(dtype=np.float64)
    return bool(np.all(numbers == np.round(numbers))) and values.is_unique


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Parse strings as UTC datetimes; unparsable values become NaT.

    One inferred format is tried first (fast); when that loses values, each value is parsed on its
    own (format="mixed"). Naive times are read as UTC so mixed time zones compare correctly.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" is expected for non-dates
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
        lost = parsed.isna() & values.notna()
        if lost.any():
            retry = pd.to_datetime(values[lost], errors="coerce", utc=True, format="mixed")
            parsed = parsed.where(~lost, retry)
    return parsed


def _check_columns(frame: pd.DataFrame, names: Iterable[str], field: str) -> None:
    """Every name in `names` is a column of `frame`, else a UserError naming the config field."""
    for name in names:
        if name not in frame.columns:
            raise UserError(
                f'{field} names column "{name}", which is not in the data{did_you_mean(name, frame.columns)}'
            )
