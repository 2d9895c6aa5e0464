"""Data audit: find the mistakes that make a model look better than it is, before it is trained.

Every check returns `Finding`s, each with a severity, the evidence and a fix. The cheap checks read every
row; the model-based ones (single-feature leakage, label noise) use a seeded sample of `max_rows` rows.

Severities: `error` means the reported scores cannot be trusted (leakage, rows shared across splits);
`warning` means they probably mislead (ID-like features, imbalance, label noise, shift); `info` is worth
knowing (gaps, outliers). `check_fail` turns blocking findings into a UserError per `audit.fail_on`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from trainwell.config import CHECKS, AuditConfig, ColumnType, Task
from trainwell.data.schema import TRUE_WORDS, flag_word, infer_column, infer_task, looks_like_id_name, parse_datetimes
from trainwell.errors import UserError

Severity = Literal["info", "warning", "error"]
_RANK = {"error": 0, "warning": 1, "info": 2}
_SHOWN = 20  # row ids / values listed in evidence; the counts are always complete
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # preparation clips to this; training in float32 overflows past it
_LARGEST = 1e30  # values are clipped to ±this for the models: they work in float32, whose sums overflow near 3e38


@dataclass
class Finding:
    """One problem: which check, how bad, where, what was seen and how to fix it."""

    check: str
    severity: Severity
    column: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Ctx:
    """What every check reads: the frame, the resolved schema and the settings."""

    frame: pd.DataFrame
    target: str | None
    task: Task | None
    schema: dict[str, ColumnType]
    splits: dict[str, np.ndarray] | None
    time_column: str | None
    config: AuditConfig
    seed: int

    def features(self, *types: str) -> list[str]:
        """Feature columns (never the target or an id), optionally only the given types."""
        return [c for c, t in self.schema.items() if t != "id" and (not types or t in types)]

    def sample(self) -> pd.DataFrame:
        """Rows with a usable target (present; finite for regression), at most `max_rows`, drawn with the seed."""
        rows = self.frame
        if self.target is not None:
            usable = rows[self.target].notna()
            if self.task == "regression":
                usable &= np.isfinite(pd.to_numeric(rows[self.target], errors="coerce").astype("float64"))
            rows = rows[usable]
        n = self.config.max_rows
        return rows.sample(n, random_state=self.seed) if len(rows) > n else rows


def run_audit(
    frame: pd.DataFrame,
    *,
    target: str | None,
    task: Task | None = None,
    schema: dict[str, ColumnType] | None = None,
    splits: dict[str, np.ndarray] | None = None,
    config: AuditConfig | None = None,
    time_column: str | None = None,
    seed: int = 0,
) -> list[Finding]:
    """Run every enabled check; findings come back most severe first.

    Args:
        frame: the raw rows: the feature columns, the target, and the label-time column if any.
        schema: feature column -> type, from `infer_schema`; exactly these columns are audited as
            features. None: every column but the target, types inferred.
        splits: row positions into `frame` for "train", "validation", "test"; enables the
            split-overlap and shift checks.
        time_column: the split's time column, used as the label time unless the config names one.
    """
    config = config or AuditConfig()
    if target is not None and target not in frame.columns:
        raise UserError(f'audit: target "{target}" is not a column of the data; check data.target')
    label_time = config.label_time_column or time_column
    if label_time is not None and label_time not in frame.columns:
        raise UserError(f'audit.label_time_column "{label_time}" is not a column of the data; name an existing one')
    if schema is None:
        schema = {c: infer_column(frame[c]) for c in frame.columns if c != target}
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise UserError(f'audit: feature column "{missing[0]}" is not in the data; check data.features')
    if target is not None and task is None:
        task = infer_task(frame[target])
    ctx = _Ctx(frame, target, task, schema, splits, label_time, config, seed)
    findings: list[Finding] = []
    for name in CHECKS:
        if name not in config.skip:
            findings.extend(_CHECK_FUNCTIONS[name](ctx))
    return sorted(findings, key=lambda f: _RANK[f.severity])


def check_fail(findings: list[Finding], fail_on: Literal["error", "warning", "never"]) -> None:
    """Raise a one-line UserError listing the findings at or above `fail_on`; never: do nothing."""
    if fail_on == "never":
        return
    blocking = [f for f in findings if _RANK[f.severity] <= _RANK[fail_on]]
    if not blocking:
        return
    parts = [f"{f.check}" + (f' on "{f.column}"' if f.column else "") + f": {f.message}" for f in blocking[:3]]
    more = f" (+{len(blocking) - 3} more)" if len(blocking) > 3 else ""
    raise UserError(
        f"data audit found {len(blocking)} blocking finding(s) (audit.fail_on={fail_on}): " + "; ".join(parts)
        + more + f". Fix: {blocking[0].fix} Or set audit.fail_on=never to train anyway."
    )  # fmt: skip


def audit_summary(findings: list[Finding]) -> dict[str, Any]:
    """The JSON block for metrics.json: counts by severity and every finding."""
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    return {"counts": counts, "findings": [f.to_dict() for f in findings]}


# ---------------------------------------------------------------- cheap checks


def _missing(ctx: _Ctx) -> list[Finding]:
    """Gaps per column (a target gap is a warning: those rows cannot be used), and values that become gaps."""
    out = _unreadable_numbers(ctx)
    for name in [*ctx.schema, *([ctx.target] if ctx.target is not None else [])]:
        n = int(ctx.frame[name].isna().sum())
        if n == 0:
            continue
        share = n / len(ctx.frame)
        is_target = name == ctx.target
        severity: Severity = "warning" if is_target or share >= ctx.config.missing_warning else "info"
        fix = ("drop the rows without a label before training" if is_target else
               "preparation imputes it and adds an indicator; if mostly empty, drop it with data.drop")  # fmt: skip
        what = "target" if is_target else "column"
        out.append(Finding("missing", severity, name, f"{share:.1%} of the {what} values are missing",
                           {"missing": n, "share": round(share, 4)}, fix))  # fmt: skip
    return out


def _unreadable_numbers(ctx: _Ctx) -> list[Finding]:
    """Numeric columns holding inf/-inf or text (preparation turns both into gaps), or numbers float32 cannot hold."""
    columns = ctx.features("numeric")
    if ctx.target is not None and ctx.task == "regression":
        columns.append(ctx.target)
    out = []
    for name in columns:
        raw = ctx.frame[name]
        numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
        gap = ("fix or drop those rows (training refuses them in the target)" if name == ctx.target
               else "fix them at the source; preparation treats them as missing and imputes them")  # fmt: skip
        problems = (
            (np.isinf(numbers), "infinite (inf/-inf)", gap),
            (raw.notna() & numbers.isna(), "not numbers", gap),
            (numbers.abs().between(_FLOAT32_MAX, np.inf, inclusive="neither"), "beyond float32's range (3.4e38)",
             "rescale or fix them; preparation clips them to ±3.4e38, which can still overflow training"),
        )  # fmt: skip
        for bad, what, fix in problems:
            n = int(bad.sum())
            if n:
                examples = [_plain(v) for v in pd.unique(raw[bad])[:5]]
                example = repr(examples[0]) if len(repr(examples[0])) <= 40 else repr(examples[0])[:37] + "..."
                message = f"{n} of {len(raw)} values are {what}, e.g. {example}"
                out.append(Finding("missing", "warning", name, message,
                                   {"count": n, "share": round(n / len(raw), 4), "examples": examples,
                                    "rows": _ids(raw.index[bad])}, fix))  # fmt: skip
    return out


def _constant(ctx: _Ctx) -> list[Finding]:
    """Columns with one value (useless) or one dominant value (nearly useless, unstable splits)."""
    out = []
    for name in ctx.features():
        counts = ctx.frame[name].value_counts(dropna=False)
        top_share = counts.iloc[0] / len(ctx.frame) if len(counts) else 1.0
        evidence = {"distinct": int(len(counts)), "top_value": _plain(counts.index[0]) if len(counts) else None,
                    "top_share": round(float(top_share), 4)}  # fmt: skip
        if len(counts) <= 1:
            out.append(Finding("constant", "warning", name, "the column has a single value", evidence,
                               f"drop it with data.drop: [{name}]"))  # fmt: skip
        elif top_share >= ctx.config.near_constant:
            out.append(Finding("constant", "info", name, f"one value fills {top_share:.1%} of the rows", evidence,
                               f"check it carries signal; otherwise drop it with data.drop: [{name}]"))  # fmt: skip
    return out


def _id_like(ctx: _Ctx) -> list[Finding]:
    """Identifiers: fine when typed `id` (never a feature), a warning when used as a feature."""
    out = []
    for name, kind in ctx.schema.items():
        values = ctx.frame[name].dropna()
        if kind == "id":
            out.append(Finding("id_like", "info", name, "identifier column, not used as a feature",
                               {"distinct": int(values.nunique())}, "none needed"))  # fmt: skip
        elif kind not in ("datetime", "text") and _looks_like_id(name, values):
            out.append(Finding(
                "id_like", "warning", name, "values are unique per row like an identifier; a model can memorise rows",
                {"distinct": int(values.nunique()), "rows": len(values), "examples": [_plain(v) for v in values[:5]]},
                f"set data.column_types: {{{name}: id}} or drop it with data.drop: [{name}]",
            ))  # fmt: skip
    return out


def _looks_like_id(name: str, values: pd.Series) -> bool:
    """Unique strings, a unique integer run (0..n-1 style), or an id-like name with unique values."""
    if len(values) < 20 or values.nunique() < 0.95 * len(values):
        return False
    if looks_like_id_name(name):
        return True
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(np.float64)
        integers = bool(np.all(numbers == np.round(numbers)))
        return integers and values.is_unique and numbers.max() - numbers.min() + 1 <= 1.05 * len(values)
    return values.is_unique and not values.astype(str).str.contains(r"\s").any()


def _duplicates(ctx: _Ctx) -> list[Finding]:
    """Repeated rows (ids ignored) and rows whose features repeat with a different label."""
    columns = ctx.features() + ([ctx.target] if ctx.target is not None else [])
    if not columns:  # only identifier columns: nothing to compare
        return []
    dup = ctx.frame.duplicated(subset=columns)
    out = []
    if dup.any():
        n = int(dup.sum())
        out.append(Finding("duplicates", "warning" if n / len(dup) >= 0.01 else "info", None,
                           f"{n} rows repeat an earlier row exactly (identifier columns ignored)",
                           {"duplicates": n, "share": round(n / len(dup), 4), "rows": _ids(ctx.frame.index[dup])},
                           "set prepare.drop_duplicates: true so they are removed before splitting"))  # fmt: skip
    if ctx.target is not None and ctx.features():
        same_x = ctx.frame.duplicated(subset=ctx.features(), keep=False)
        conflict = same_x & ~ctx.frame.duplicated(subset=columns, keep=False)
        if conflict.any():
            n = int(conflict.sum())
            out.append(Finding("duplicates", "warning", None, f"{n} rows repeat features with another label",
                               {"conflicting": n, "rows": _ids(ctx.frame.index[conflict])},
                               "check the labels of these rows; no model can separate them"))  # fmt: skip
    return out


def _split_overlap(ctx: _Ctx) -> list[Finding]:
    """The same row (ids ignored) in two splits: the later split tests rows the model has seen."""
    columns = ctx.features() + ([ctx.target] if ctx.target is not None else [])
    if not ctx.splits or not columns:
        return []
    hashes = pd.util.hash_pandas_object(ctx.frame[columns], index=False).to_numpy()
    seen: dict[str, int] = {}
    rows: list[Any] = []
    names = [s for s in ("train", "validation", "test") if s in ctx.splits and len(ctx.splits[s])]
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            second_rows = np.asarray(ctx.splits[second])
            shared = np.isin(hashes[second_rows], hashes[np.asarray(ctx.splits[first])])
            if shared.any():
                seen[f"{first}/{second}"] = int(shared.sum())
                rows.extend(ctx.frame.index[second_rows[shared]])
    if not seen:
        return []
    return [Finding("split_overlap", "error", None,
                    "rows appear in more than one split: " + ", ".join(f"{n} in {k}" for k, n in seen.items()),
                    {"shared": seen, "rows": _ids(rows)},
                    "remove duplicates before splitting (prepare.drop_duplicates: true) or split by "
                    "split.group_column")]  # fmt: skip


def _imbalance(ctx: _Ctx) -> list[Finding]:
    """Class sizes: a rare class hides behind accuracy and may be missing from small splits."""
    if ctx.target is None or ctx.task != "classification":
        return []
    counts = ctx.frame[ctx.target].value_counts()
    if len(counts) < 2:
        return [Finding("imbalance", "error", ctx.target, "the target has a single class", {"classes": len(counts)},
                        "choose a target with at least two classes")]  # fmt: skip
    ratio = float(counts.iloc[0] / counts.iloc[-1])
    evidence = {"counts": {str(k): int(v) for k, v in counts.items()}, "ratio": round(ratio, 2)}
    rare = [str(k) for k, v in counts.items() if v < 10]
    if ratio >= ctx.config.imbalance_ratio or rare:
        message = f"largest/smallest class = {ratio:.1f}" + (f"; classes with < 10 rows: {rare}" if rare else "")
        return [Finding("imbalance", "warning", ctx.target, message, evidence,
                        "use model class_weight: balanced and judge by balanced_accuracy or F1; "
                        "collect more rows of the rare classes")]  # fmt: skip
    return []


def _outliers(ctx: _Ctx) -> list[Finding]:
    """Values beyond 3 IQRs outside the quartiles: data-entry errors or heavy tails."""
    out = []
    for name in ctx.features("numeric"):
        x = pd.to_numeric(ctx.frame[name], errors="coerce").astype("float64")
        x = x[np.isfinite(x)]  # inf is reported by the missing check
        if len(x) < 20:
            continue
        q1, q3 = np.quantile(x, [0.25, 0.75])
        with np.errstate(over="ignore"):  # quartiles near 1e308: the bounds overflow to ±inf, which is fine
            lo, hi = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
        far = (x < lo) | (x > hi)
        if q3 > q1 and far.any():
            n = int(far.sum())
            out.append(Finding("outliers", "info", name, f"{n} values lie beyond 3 IQRs from the quartiles",
                               {"outliers": n, "share": round(n / len(x), 4), "bounds": [float(lo), float(hi)],
                                "min": float(x.min()), "max": float(x.max()), "rows": _ids(x.index[far])},
                               "check them for entry errors; prepare.clip_outliers: 3 clips them"))  # fmt: skip
    return out


# ---------------------------------------------------------------- leakage


def _leakage(ctx: _Ctx) -> list[Finding]:
    """Per feature: a copy or monotone transform of the target, or a one-feature model near-perfect."""
    if ctx.target is None or ctx.task is None:
        return []
    rows = ctx.sample()
    y = _encode_target(rows[ctx.target], ctx.task)
    out = []
    names = [n for n in ctx.features("numeric", "boolean", "categorical", "datetime")
             if n not in ctx.config.trusted_columns and n != ctx.time_column]  # fmt: skip
    modelled = set(_screen(rows, names, y, ctx))
    for name in names:
        finding = _copy_of_target(name, rows[name], rows[ctx.target], y, ctx.schema[name])
        if finding is None and name in modelled:
            finding = _single_feature_model(name, rows[name], y, ctx)
        if finding is not None:
            out.append(finding)
    return out


def _screen(rows: pd.DataFrame, names: list[str], y: np.ndarray, ctx: _Ctx) -> list[str]:
    """All names, or on wide data the `max_model_features` with the largest univariate F statistic.

    Screening keeps the model-based checks fast on wide data (pixels, one-hot blocks) without projecting
    away the few columns that carry the signal, as principal components of independent features would.
    """
    limit = ctx.config.max_model_features
    if len(names) <= limit:
        return names
    from sklearn.feature_selection import f_classif, f_regression

    X = np.column_stack([_as_numbers(rows[n], ctx.schema[n]) for n in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant or empty columns have an undefined F and mean
        X = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        score = (f_classif if ctx.task == "classification" else f_regression)(np.nan_to_num(X), y)[0]
    return [names[i] for i in np.argsort(-np.nan_to_num(score, nan=-1.0))[:limit]]


def _copy_of_target(name: str, x: pd.Series, target: pd.Series, y: np.ndarray, kind: str) -> Finding | None:
    """A one-to-one relabelling of the target, or a numeric feature with Spearman |rho| ~ 1."""
    fix = f"drop it with data.drop: [{name}], or list it in audit.trusted_columns if known at prediction time"
    both = x.notna().to_numpy()
    if kind in ("numeric", "boolean", "datetime"):
        both = both & np.isfinite(_as_numbers(x, kind))
    pairs = pd.DataFrame({"x": x[both].astype(str), "y": target[both].astype(str)})
    forward, backward = pairs.groupby("x")["y"].nunique(), pairs.groupby("y")["x"].nunique()
    if both.sum() >= 20 and forward.max() == 1 and backward.max() == 1 and len(forward) <= 0.5 * both.sum():
        mapping = pairs.drop_duplicates().head(_SHOWN).set_index("x")["y"].to_dict()
        return Finding("leakage", "error", name, "the column is a one-to-one relabelling of the target",
                       {"mapping": mapping}, fix)  # fmt: skip
    if kind in ("numeric", "boolean", "datetime") and both.sum() >= 20:
        values = _as_numbers(x[both], kind)
        if values.max() > values.min() and y[both].max() > y[both].min():
            rho = float(stats.spearmanr(values, y[both]).statistic)
            if abs(rho) >= 0.999:
                return Finding("leakage", "error", name, f"the column is a monotone transform of the target "
                               f"(Spearman rho {rho:.4f})", {"spearman": round(rho, 6)}, fix)  # fmt: skip
    return None


def _single_feature_model(name: str, x: pd.Series, y: np.ndarray, ctx: _Ctx) -> Finding | None:
    """Cross-validate a model on this one feature; near-perfect means it encodes the answer."""
    kind = ctx.schema[name]
    classify = ctx.task == "classification"
    if len(y) < 20 or (classify and np.bincount(y).min() < 3):  # too few rows for three folds to mean anything
        return None
    folds = (StratifiedKFold if classify else KFold)(3, shuffle=True, random_state=ctx.seed)
    if kind == "categorical":
        pred = _category_lookup(x.astype(str).to_numpy(), y, folds, classify)
    else:
        tree = (DecisionTreeClassifier if classify else DecisionTreeRegressor)(
            max_depth=8, min_samples_leaf=3, random_state=ctx.seed
        )
        pred = cross_val_predict(tree, _as_numbers(x, kind)[:, None], y, cv=folds)
    score = float(balanced_accuracy_score(y, pred) if classify else r2_score(y, pred))
    if score < ctx.config.leakage_score:
        return None
    metric = "balanced accuracy" if classify else "R²"
    return Finding("leakage", "error", name, f"this feature alone predicts the target with cross-validated "
                   f"{metric} {score:.3f}", {"metric": metric, "score": round(score, 4)},
                   f"check that {name} is known before the label; otherwise drop it with data.drop: [{name}] "
                   "(audit.trusted_columns accepts it)")  # fmt: skip


def _category_lookup(x: np.ndarray, y: np.ndarray, folds: Any, classify: bool) -> np.ndarray:
    """Out-of-fold prediction from each category's majority class (or mean); unseen: the overall one."""
    pred = np.zeros(len(y), dtype=np.float64)
    for fit, held in folds.split(x.reshape(-1, 1), y):
        table = pd.Series(y[fit]).groupby(x[fit])
        lookup = table.agg(lambda s: s.mode().iloc[0]) if classify else table.mean()
        fallback = np.bincount(y[fit]).argmax() if classify else y[fit].mean()
        pred[held] = pd.Series(x[held]).map(lookup).fillna(fallback).to_numpy(np.float64)
    return pred.astype(np.int64) if classify else pred


def _future_timestamp(ctx: _Ctx) -> list[Finding]:
    """Datetime features later than the label time: the future leaked into the past."""
    if ctx.time_column is None:
        return []
    label_time = _datetimes(ctx.frame[ctx.time_column])
    out = []
    for name in ctx.features("datetime"):
        if name == ctx.time_column or name in ctx.config.trusted_columns:
            continue
        later = (_datetimes(ctx.frame[name]) > label_time).to_numpy()
        n = int(later.sum())
        if n:
            share = n / len(later)
            out.append(Finding("future_timestamp", "error" if share >= 0.01 else "warning", name,
                               f"{n} rows ({share:.1%}) have {name} after {ctx.time_column}, the label time",
                               {"later": n, "share": round(share, 4), "rows": _ids(ctx.frame.index[later])},
                               f"drop {name} or use only values recorded before {ctx.time_column}"))  # fmt: skip
    return out


# ---------------------------------------------------------------- label noise and shift


def _label_noise(ctx: _Ctx) -> list[Finding]:
    """Rows whose label an out-of-fold model confidently contradicts (confident learning, simplified)."""
    if ctx.target is None or ctx.task != "classification":
        return []
    rows = ctx.sample()
    y = _encode_target(rows[ctx.target], "classification")
    columns = ctx.features("numeric", "boolean", "categorical", "datetime")
    if not columns or len(np.unique(y)) < 2 or np.bincount(y).min() < 5:
        return []
    columns = _screen(rows, columns, y, ctx)  # wide data: the most informative features only
    X = np.column_stack([_as_numbers(rows[c], ctx.schema[c]) for c in columns])
    X = X[:, ~np.isnan(X).all(axis=0)]  # a column with no value (all inf, say) breaks the boosting's binning
    if X.shape[1] == 0:
        return []
    # shallow and regularised: an overconfident model would "contradict" many honest but hard labels
    model: Any = HistGradientBoostingClassifier(max_iter=50, max_depth=3, min_samples_leaf=20,
                                                l2_regularization=1.0, random_state=ctx.seed)  # fmt: skip
    # one thread: the model is small, and OpenMP threads stall when other processes share the cores
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
        warnings.simplefilter("ignore")
        proba = cross_val_predict(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=ctx.seed),
                                  method="predict_proba")  # fmt: skip
    given = proba[np.arange(len(y)), y]
    confident = ctx.config.noise_confidence
    suspect = np.flatnonzero((given <= 1 - confident) & (proba.max(axis=1) >= confident))
    if len(suspect) == 0:
        return []
    suspect = suspect[np.argsort(given[suspect])]  # most confident disagreement first
    share = len(suspect) / len(y)
    classes = np.unique(rows[ctx.target].astype(str))
    return [Finding("label_noise", "warning" if share >= ctx.config.noise_warning else "info", ctx.target,
                    f"{len(suspect)} of {len(y)} sampled labels are contradicted by a cross-validated model "
                    f"with probability >= {ctx.config.noise_confidence}",
                    {"suspects": len(suspect), "share": round(share, 4), "rows": _ids(rows.index[suspect]),
                     "suggested": [str(classes[k]) for k in proba[suspect[:_SHOWN]].argmax(axis=1)]},
                    "review these rows' labels; correct or drop the wrong ones")]  # fmt: skip


def _shift(ctx: _Ctx) -> list[Finding]:
    """Train vs test distribution per feature and target: PSI for the size, KS/chi-square for the doubt."""
    if not ctx.splits or not len(ctx.splits.get("train", [])) or not len(ctx.splits.get("test", [])):
        return []
    train, test = ctx.frame.iloc[ctx.splits["train"]], ctx.frame.iloc[ctx.splits["test"]]
    columns = {c: ctx.schema[c] for c in ctx.features("numeric", "boolean", "categorical")}
    if ctx.target is not None:
        columns[ctx.target] = "numeric" if ctx.task == "regression" else "categorical"
    out = []
    for name, kind in columns.items():
        a, b = train[name].dropna(), test[name].dropna()
        if len(a) < 10 or len(b) < 10:
            continue
        psi, p_value, test_name = _psi_numeric(a, b) if kind == "numeric" else _psi_categorical(a, b)
        if p_value >= 0.01 or psi < 0.1:
            continue
        severity: Severity = "warning" if psi >= ctx.config.shift_psi else "info"
        out.append(Finding("shift", severity, name, f"train and test distributions differ (PSI {psi:.2f}, "
                           f"{test_name} p={p_value:.1e})", {"psi": round(psi, 4), "p_value": float(p_value),
                           "test": test_name, "train_rows": len(a), "test_rows": len(b)},
                           "check how the test rows were collected; a time split expects some drift"))  # fmt: skip
    return out


def _psi_numeric(a: pd.Series, b: pd.Series) -> tuple[float, float, str]:
    """PSI over train deciles, with the two-sample Kolmogorov-Smirnov p-value."""
    x, z = (pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan) for s in (a, b))
    x, z = x[np.isfinite(x)], z[np.isfinite(z)]  # inf is reported by the missing check
    if len(x) < 10 or len(z) < 10:
        return 0.0, 1.0, "KS"
    edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)[1:-1]))
    p, q = (np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1) for v in (x, z))
    return _psi(p, q), float(stats.ks_2samp(x, z).pvalue), "KS"


def _psi_categorical(a: pd.Series, b: pd.Series) -> tuple[float, float, str]:
    """PSI over the categories of both splits, with the chi-square test of the 2xK table."""
    table = pd.crosstab(pd.concat([a.astype(str), b.astype(str)]), np.r_[np.zeros(len(a)), np.ones(len(b))])
    counts = table.to_numpy().T
    p_value = float(stats.chi2_contingency(counts).pvalue) if counts.shape[1] > 1 else 1.0
    return _psi(counts[0], counts[1]), p_value, "chi-square"


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index between two count vectors over the same bins."""
    p = np.clip(p / p.sum(), 1e-4, None)
    q = np.clip(q / q.sum(), 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


# ---------------------------------------------------------------- helpers


def _encode_target(target: pd.Series, task: Task) -> np.ndarray:
    """Class indices in sorted label order, or float values clipped to ±1e30 (what float32 models accept)."""
    if task == "regression":
        return np.clip(pd.to_numeric(target, errors="coerce").to_numpy(np.float64), -_LARGEST, _LARGEST)
    return np.unique(target.astype(str), return_inverse=True)[1].astype(np.int64)


def _as_numbers(x: pd.Series, kind: str) -> np.ndarray:
    """A column as floats for the model-based checks: dates as seconds, categories as codes, gaps as NaN.

    inf/-inf count as gaps (preparation imputes them); finite values beyond ±1e30 are clipped to it, so the
    tree models (float32 inside) accept 1e308; only the order of values matters to them.
    """
    if kind == "datetime":  # milliseconds hold any year pandas parses (nanoseconds overflow before 1677)
        times = _datetimes(x)
        ms = times.dt.tz_localize(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
        return np.where(times.isna().to_numpy(), np.nan, ms / 1000.0)
    if kind == "boolean" and not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)):
        x = x.map(lambda v: np.nan if pd.isna(v) else float(flag_word(v) in TRUE_WORDS))
    if kind in ("boolean", "numeric"):
        numbers = pd.to_numeric(x, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        return np.clip(np.where(np.isinf(numbers), np.nan, numbers), -_LARGEST, _LARGEST)
    codes = x.astype("category").cat.codes.to_numpy().astype(np.float64)
    return np.where(codes < 0, np.nan, codes)


def _datetimes(x: pd.Series) -> pd.Series:
    """Datetimes in UTC, whatever the column holds (dtype or strings)."""
    if pd.api.types.is_datetime64_any_dtype(x):
        return x.dt.tz_localize("UTC") if x.dt.tz is None else x.dt.tz_convert("UTC")
    return parse_datetimes(x.astype("string"))


def _ids(index: Any) -> list[Any]:
    """The first row ids, as plain values for JSON."""
    return [_plain(v) for v in list(index)[:_SHOWN]]


def _plain(value: Any) -> Any:
    """numpy scalars to Python, NaN to None, anything exotic to its string."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


_CHECK_FUNCTIONS = {
    "missing": _missing, "constant": _constant, "id_like": _id_like, "duplicates": _duplicates,
    "split_overlap": _split_overlap, "imbalance": _imbalance, "leakage": _leakage,
    "future_timestamp": _future_timestamp, "outliers": _outliers, "label_noise": _label_noise, "shift": _shift,
}  # fmt: skip
