"""The preparation pipeline: raw feature columns in, one dense float32 matrix out.

It is a single scikit-learn Pipeline, fitted on the training split only (so nothing about validation
or test rows leaks into scaling, imputation or vocabularies) and saved beside the model with skops,
so predictions on new files are prepared exactly as training rows were. Predict-time surprises do
not crash it: a stray string in a numeric column becomes missing and is imputed, an unseen category
is encoded as infrequent/unknown, unparsable dates become missing.

The small transformers below are proper scikit-learn estimators (constructors only store arguments,
learned state ends in `_`) defined in this module, so skops can save and reload them without pickle.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from trainwell.artifacts import load_skops, save_skops
from trainwell.config import ColumnType, PrepareConfig
from trainwell.data.schema import FALSE_WORDS, TRUE_WORDS, flag_word, parse_datetimes
from trainwell.errors import UserError

_PANDAS_PARTS = {"dayofweek": "day_of_week"}  # config name → pandas accessor (dayofweek is deprecated)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
TEXT_TERMS = 200  # vocabulary size per text column: enough signal, bounded width


# ---------------------------------------------------------------- public API


def build_preparer(schema: dict[str, ColumnType], cfg: PrepareConfig) -> Pipeline:
    """An unfitted Pipeline: DataFrame with the schema's columns → dense float32 array.

    Columns typed `id` are dropped. Output columns are grouped by kind (numeric, missing-value
    indicators, boolean, categorical, datetime, text); once fitted, `feature_names` names each one as the
    user wrote the column (`get_feature_names_out()` keeps scikit-learn's `num__age` names).

    Raises:
        UserError: every column is an identifier, so nothing is left to learn from.
    """
    by_kind: dict[str, list[str]] = {}
    for column, kind in schema.items():
        by_kind.setdefault(kind, []).append(column)
    steps: list[tuple[str, Any, list[str]]] = []
    if numeric := by_kind.get("numeric"):
        steps.append(("num", _numeric_pipeline(cfg), numeric))
        if cfg.missing_indicators:
            indicator = MissingIndicator(features="missing-only", error_on_new=False)
            steps.append(("missing", Pipeline([("numbers", ToNumeric()), ("indicator", indicator)]), numeric))
    if boolean := by_kind.get("boolean"):
        impute = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
        steps.append(("bool", Pipeline([("flags", ToBoolean()), ("impute", impute)]), boolean))
    if categorical := by_kind.get("categorical"):
        steps.append(("cat", _categorical_pipeline(cfg), categorical))
    if dates := by_kind.get("datetime"):
        parts = DatetimeParts(parts=list(cfg.datetime_parts))
        steps.append(("date", Pipeline([("parts", parts), *_impute_and_scale(cfg, "median")]), dates))
    if text := by_kind.get("text"):
        steps.append(("text", TextFeatures(max_features=TEXT_TERMS, min_df=2), text))
    if not steps:
        raise UserError("every feature column is an identifier (type id); give data.column_types for a real feature")
    columns = ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=True)
    return Pipeline([("select", SelectColumns(columns=list(schema))), ("columns", columns), ("float32", ToFloat32())])


def save_preparer(preparer: Any, path: str | Path) -> None:
    """Save a fitted preparer with skops (no pickle), atomically; its types must be on SKOPS_ALLOWED."""
    save_skops(preparer, path)


def load_preparer(path: str | Path) -> Any:
    """Load a preparer saved by `save_preparer`, refusing any type trainwell never saves.

    Raises:
        UserError: the file is missing or not a skops file, or it holds a type not on SKOPS_ALLOWED.
    """
    return load_skops(path)


# ---------------------------------------------------------------- the prepared features, in the user's terms

OTHER = "(other)"  # the category of a one-hot column that stands for the rare and the unseen ones

FeatureKind = Literal["numeric", "missing", "boolean", "onehot", "ordinal", "datetime", "text"]


@dataclass(frozen=True)
class PreparedFeature:
    """One column of the preparer's output: what the user calls it, where it comes from, in which units."""

    name: str  # unique: age, age (missing), city=paris, signup.month, review:"great"
    column: str  # the user's column it is made from
    kind: FeatureKind
    offset: float = 0.0  # numeric and datetime parts: original value = offset + scale * prepared value
    scale: float = 1.0
    category: str | None = None  # one-hot: the category this 0/1 column marks
    levels: tuple[str, ...] = ()  # missing, boolean, ordinal: what the prepared values 0, 1, 2... stand for

    def original(self, values: Any) -> np.ndarray:
        """Prepared values back in the column's own units (identity for every kind but numeric and datetime)."""
        return self.offset + self.scale * np.asarray(values, dtype=np.float64)


def feature_names(preparer: Pipeline) -> list[str]:
    """The fitted preparer's output columns named as the user wrote them: unique, no `num__` prefixes.

    `age`, `age (missing)` (its missing-value indicator), `member` (a flag), `city=paris` (one-hot; the
    column of rare and unseen categories is `city=(other)`), `city` (ordinal codes), `signup.month`
    (a datetime part), `review:"great"` (a TF-IDF term). A user's own column name always stays as it is;
    a made-up name that collides with one, or with another made-up name, gets " #2", " #3"...
    """
    return [f.name for f in describe_features(preparer)]


def describe_features(preparer: Pipeline) -> list[PreparedFeature]:
    """Every output column of a fitted preparer, in order: its name (see `feature_names`), column and units.

    Raises:
        RuntimeError: a step's described width differs from its output width (a new step kind not described).
    """
    columns = preparer.named_steps["columns"]
    described: list[PreparedFeature] = []
    for step, transformer, inputs in columns.transformers_:
        if step == "remainder":
            continue
        block = _DESCRIBE[step](transformer, [str(c) for c in inputs])
        width = columns.output_indices_[step]
        if len(block) != width.stop - width.start:
            raise RuntimeError(f"preparation step {step!r} makes {width.stop - width.start} columns but "
                               f"{len(block)} are described")  # fmt: skip
        described += block
    return _unique(described)


def _affine(scaler: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) per column such that original = offset + scale * scaled; every scaler here is affine."""
    if scaler == "passthrough":
        return np.zeros(width), np.ones(width)
    offset = scaler.inverse_transform(np.zeros((1, width)))[0]
    return offset, scaler.inverse_transform(np.ones((1, width)))[0] - offset


def _numeric_features(pipeline: Pipeline, inputs: list[str]) -> list[PreparedFeature]:
    offset, scale = _affine(pipeline.named_steps["scale"], len(inputs))
    return [PreparedFeature(c, c, "numeric", float(o), float(s)) for c, o, s in zip(inputs, offset, scale, strict=True)]


def _missing_features(pipeline: Pipeline, inputs: list[str]) -> list[PreparedFeature]:
    flagged = pipeline.named_steps["indicator"].features_  # the columns that had gaps in training
    return [PreparedFeature(f"{inputs[i]} (missing)", inputs[i], "missing", levels=("present", "missing"))
            for i in flagged]  # fmt: skip


def _boolean_features(pipeline: Pipeline, inputs: list[str]) -> list[PreparedFeature]:
    flags = pipeline.named_steps["flags"]
    out = []
    for c, false, true in zip(inputs, flags.false_words_, flags.true_words_, strict=True):
        # two other values (f/m) read as themselves; the usual words (yes/no, 1/0, true/false...) as false/true
        levels = (false[0], true[0]) if len(false) == len(true) == 1 else ("false", "true")
        out.append(PreparedFeature(c, c, "boolean", levels=levels))
    return out


def _categorical_features(pipeline: Pipeline, inputs: list[str]) -> list[PreparedFeature]:
    encoder = pipeline.named_steps["encode"]
    if isinstance(encoder, OrdinalEncoder):
        return [PreparedFeature(c, c, "ordinal", levels=tuple(str(v) for v in cats))
                for c, cats in zip(inputs, encoder.categories_, strict=True)]  # fmt: skip
    rare = getattr(encoder, "infrequent_categories_", [None] * len(inputs))
    out = []
    # named by position ("0_paris"): the text before the first "_" is then the column, whatever its name holds
    for name in encoder.get_feature_names_out([str(i) for i in range(len(inputs))]):
        i, category = name.split("_", 1)
        column = inputs[int(i)]
        category = OTHER if category == "infrequent_sklearn" and rare[int(i)] is not None else category
        out.append(PreparedFeature(f"{column}={category}", column, "onehot", category=category))
    return out


def _datetime_features(pipeline: Pipeline, inputs: list[str]) -> list[PreparedFeature]:
    parts = pipeline.named_steps["parts"]
    names = parts.get_feature_names_out(inputs)
    offset, scale = _affine(pipeline.named_steps["scale"], len(names))
    sources = [c for c in inputs for _ in parts.parts or []]
    return [PreparedFeature(str(n), c, "datetime", float(o), float(s))
            for n, c, o, s in zip(names, sources, offset, scale, strict=True)]  # fmt: skip


def _text_features(text: TextFeatures, inputs: list[str]) -> list[PreparedFeature]:
    names = text.get_feature_names_out(inputs)
    sources = [c for c, v in zip(inputs, text.vectorizers_, strict=True) if v is not None
               for _ in v.get_feature_names_out()]  # fmt: skip
    return [PreparedFeature(str(n), c, "text") for n, c in zip(names, sources, strict=True)]


_DESCRIBE = {"num": _numeric_features, "missing": _missing_features, "bool": _boolean_features,
             "cat": _categorical_features, "date": _datetime_features, "text": _text_features}  # fmt: skip


def _unique(features: list[PreparedFeature]) -> list[PreparedFeature]:
    """Names made unique: the user's own column names first and unchanged, then made-up ones with " #2"..."""
    taken: set[str] = set()
    names = [""] * len(features)
    for own in (True, False):
        for i, f in enumerate(features):
            if (f.name == f.column) == own:
                name, n = f.name, 2
                while name in taken:
                    name, n = f"{f.name} #{n}", n + 1
                taken.add(name)
                names[i] = name
    return [f if f.name == name else replace(f, name=name) for f, name in zip(features, names, strict=True)]


# ---------------------------------------------------------------- pipelines per kind


def _scaler(scaling: str) -> Any:
    """The configured scaler, or "passthrough" for none."""
    scalers = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
    return scalers[scaling]() if scaling in scalers else "passthrough"


def _impute_and_scale(cfg: PrepareConfig, strategy: str) -> list[tuple[str, Any]]:
    """Imputation then scaling; constant imputation fills numbers with 0.

    keep_empty_features: a column empty in the training split is filled (with 0) rather than dropped
    with a warning, so the output width never depends on which rows the split drew.
    """
    impute = SimpleImputer(strategy=strategy, fill_value=0.0, keep_empty_features=True)
    return [("impute", impute), ("scale", _scaler(cfg.scaling))]


def _numeric_pipeline(cfg: PrepareConfig) -> Pipeline:
    """Coerce to numbers → clip outliers (optional) → impute → scale."""
    steps: list[tuple[str, Any]] = [("numbers", ToNumeric())]
    if cfg.clip_outliers is not None:
        steps.append(("clip", OutlierClipper(factor=cfg.clip_outliers)))
    return Pipeline(steps + _impute_and_scale(cfg, cfg.impute_numeric))


def _categorical_pipeline(cfg: PrepareConfig) -> Pipeline:
    """Values as strings → impute (constant adds a "missing" category) → one-hot or ordinal codes."""
    impute = SimpleImputer(strategy=cfg.impute_categorical, fill_value="missing", keep_empty_features=True)
    if cfg.encoding == "onehot":
        encoder: Any = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=cfg.max_categories,
                                     sparse_output=False)  # fmt: skip
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return Pipeline([("strings", ToStrings()), ("impute", impute), ("encode", encoder)])


# ---------------------------------------------------------------- transformers


def _frame(X: Any) -> pd.DataFrame:
    """Any 2-D input as a DataFrame (ColumnTransformer passes DataFrames; arrays get positional names)."""
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        return X.to_frame()
    array = np.asarray(X, dtype=object)
    return pd.DataFrame(array.reshape(-1, 1) if array.ndim == 1 else array)


class SelectColumns(TransformerMixin, BaseEstimator):
    """Pick the training columns by name and order; a missing one is a UserError naming it."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> SelectColumns:
        self.transform(X)
        self.n_features_in_ = len(self.columns)
        self.feature_names_in_ = np.asarray(self.columns, dtype=object)
        return self

    def transform(self, X: Any) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            array = np.asarray(X)
            if array.ndim != 2 or array.shape[1] != len(self.columns):
                raise UserError(f"expected a table with the {len(self.columns)} columns {', '.join(self.columns[:10])}")
            return pd.DataFrame(array, columns=self.columns)
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise UserError(f"the data lacks column(s) the preparation needs: {', '.join(map(str, missing[:10]))}")
        return X[list(self.columns)]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.columns, dtype=object)


class ToNumeric(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Numbers as float64; anything unparsable (a stray "?" or "n/a"), ±inf and values beyond float32's range
    become missing (NaN)."""

    def fit(self, X: Any, y: Any = None) -> ToNumeric:
        validate_data(self, X, reset=True, skip_check_array=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        frame = _frame(X)
        out = np.empty(frame.shape, dtype=np.float64)
        numeric = [j for j, kind in enumerate(frame.dtypes) if pd.api.types.is_numeric_dtype(kind)]
        if numeric:  # numbers already: one block copy (a per-column loop costs ~1 ms a column on a small request)
            out[:, numeric] = frame.iloc[:, numeric].to_numpy(np.float64, na_value=np.nan)
        for j in sorted(set(range(frame.shape[1])) - set(numeric)):  # text that may hold numbers
            out[:, j] = pd.to_numeric(frame.iloc[:, j], errors="coerce").astype(np.float64).to_numpy(na_value=np.nan)
        out[~np.isfinite(out) | (np.abs(out) > _FLOAT32_MAX)] = np.nan  # 1e308 would overflow float32 features
        return out


class OutlierClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip values beyond `factor` interquartile ranges outside the training quartiles (NaN stays NaN)."""

    def __init__(self, factor: float = 3.0) -> None:
        self.factor = factor

    def fit(self, X: Any, y: Any = None) -> OutlierClipper:
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": a column empty in training
            q1, q3 = np.nanpercentile(X, [25, 75], axis=0)
        iqr = q3 - q1
        self.lower_ = np.nan_to_num(q1 - self.factor * iqr, nan=-np.inf)
        self.upper_ = np.nan_to_num(q3 + self.factor * iqr, nan=np.inf)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "lower_")
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return np.clip(X, self.lower_, self.upper_)


class ToBoolean(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Flags as 0.0/1.0: true/false, yes/no, 1/0... or, for any other two values, the later one sorted is 1.

    Values not seen in training become NaN, for the imputer that follows.
    """

    def fit(self, X: Any, y: Any = None) -> ToBoolean:
        validate_data(self, X, reset=True, skip_check_array=True)
        frame = _frame(X)
        self.true_words_: list[list[str]] = []
        self.false_words_: list[list[str]] = []
        for name, column in frame.items():
            words = sorted({flag_word(v) for v in pd.unique(column.dropna())})
            if set(words) <= TRUE_WORDS | FALSE_WORDS:
                true, false = sorted(TRUE_WORDS), sorted(FALSE_WORDS)
            elif len(words) <= 2:
                true, false = words[1:], words[:1]
            else:
                raise UserError(f'column "{name}" is typed boolean but holds {len(words)} values (e.g. '
                                f"{', '.join(words[:4])}); set data.column_types.{name}: categorical")  # fmt: skip
            self.true_words_.append(true)
            self.false_words_.append(false)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "true_words_")
        frame = _frame(X)
        out = np.full(frame.shape, np.nan)
        for j in range(frame.shape[1]):
            codes, uniques = pd.factorize(frame.iloc[:, j])
            words = [flag_word(u) for u in uniques]
            values = [1.0 if w in self.true_words_[j] else 0.0 if w in self.false_words_[j] else np.nan for w in words]
            out[:, j] = np.append(values, np.nan)[codes]  # code -1 (missing) picks the trailing NaN
        return out


def _token(value: Any) -> Any:
    """A category as a string; 3, 3.0 and "3" are the same category. Missing stays NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value).strip()


class ToStrings(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Categories as strings (object array), so mixed int/str columns encode cleanly; NaN marks missing."""

    def fit(self, X: Any, y: Any = None) -> ToStrings:
        validate_data(self, X, reset=True, skip_check_array=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        frame = _frame(X)
        out = np.empty(frame.shape, dtype=object)
        for j in range(frame.shape[1]):
            codes, uniques = pd.factorize(frame.iloc[:, j])
            out[:, j] = np.array([_token(u) for u in uniques] + [np.nan], dtype=object)[codes]
        return out


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Dates → the chosen parts (year, month, day, dayofweek, hour, minute) in UTC; unparsable → NaN."""

    def __init__(self, parts: list[str] | None = None) -> None:
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DatetimeParts:
        validate_data(self, X, reset=True, skip_check_array=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        frame, parts = _frame(X), list(self.parts or [])
        out = np.full((len(frame), frame.shape[1] * len(parts)), np.nan)
        for j in range(frame.shape[1]):
            dates = parse_datetimes(frame.iloc[:, j]).dt
            for k, part in enumerate(parts):
                values = getattr(dates, _PANDAS_PARTS.get(part, part)).astype("float64")
                out[:, j * len(parts) + k] = values.to_numpy(na_value=np.nan)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = _input_names(self, input_features)
        return np.asarray([f"{c}.{p}" for c in names for p in self.parts or []], dtype=object)


class TextFeatures(TransformerMixin, BaseEstimator):
    """TF-IDF per text column with a bounded vocabulary; missing text is an empty document.

    A column whose training text has no term in `min_df` rows retries with min_df=1, and a column
    with no terms at all contributes no features rather than failing the run.
    """

    def __init__(self, max_features: int = TEXT_TERMS, min_df: int = 2) -> None:
        self.max_features = max_features
        self.min_df = min_df

    def fit(self, X: Any, y: Any = None) -> TextFeatures:
        validate_data(self, X, reset=True, skip_check_array=True)
        frame = _frame(X)
        self.vectorizers_: list[TfidfVectorizer | None] = []
        for j in range(frame.shape[1]):
            docs, fitted = _documents(frame.iloc[:, j]), None
            for min_df in dict.fromkeys([self.min_df, 1]):
                try:
                    fitted = TfidfVectorizer(max_features=self.max_features, min_df=min_df).fit(docs)
                    break
                except ValueError:  # empty vocabulary
                    continue
            self.vectorizers_.append(fitted)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "vectorizers_")
        frame = _frame(X)
        blocks = [np.zeros((len(frame), 0))]
        for j, vectorizer in enumerate(self.vectorizers_):
            if vectorizer is not None:
                blocks.append(vectorizer.transform(_documents(frame.iloc[:, j])).toarray())
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = _input_names(self, input_features)
        out = [f'{c}:"{term}"' for c, v in zip(names, self.vectorizers_, strict=True) if v is not None
               for term in v.get_feature_names_out()]  # fmt: skip
        return np.asarray(out, dtype=object)


def _documents(column: pd.Series) -> list[str]:
    """Text values as strings; missing is the empty document."""
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in column]


class ToFloat32(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """The final dense float32 matrix; values beyond float32's range are clipped, not turned into inf."""

    def fit(self, X: Any, y: Any = None) -> ToFloat32:
        validate_data(self, X, reset=True, skip_check_array=True)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        limit = np.finfo(np.float32).max
        return np.clip(np.asarray(X, dtype=np.float64), -limit, limit).astype(np.float32)


def _input_names(estimator: BaseEstimator, input_features: Any) -> list[str]:
    """The input column names a transformer was fitted on (or was given)."""
    if input_features is not None:
        return [str(c) for c in input_features]
    names = getattr(estimator, "feature_names_in_", None)
    return [str(c) for c in names] if names is not None else [f"x{i}" for i in range(estimator.n_features_in_)]
