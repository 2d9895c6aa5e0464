"""Drift: does new data still look like the data the model was trained on?

At training time `reference_profile` records, per input column (ids, free text and dates aside), what the
training rows looked like (numeric:
decile edges, the share of rows in each bin, a seeded sample of values; categorical: category shares; the share
missing) and the distribution of the model's predictions; it is saved as JSON in the run (no raw table). Later
`drift_report` compares new rows with it: the population stability index (PSI) for every column and for the
predictions, and a test from scipy (two-sample Kolmogorov-Smirnov for numbers, chi-square for categories).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

BINS = 10
SAMPLE = 1_000  # numeric values kept per column for the KS test
PSI_WARN, PSI_ALERT = 0.1, 0.25  # the usual reading: <0.1 stable, 0.1-0.25 moderate shift, >0.25 major shift
P_ALERT = 0.01
EPS = 1e-4  # floor for empty bins in the PSI (log of zero)


def reference_profile(frame: pd.DataFrame, schema: dict[str, str], predictions: np.ndarray, task: str, *,
                      seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The training rows' profile: one entry per input column, and the predictions'."""
    rng = np.random.default_rng(seed)
    columns = {}
    for column, kind in schema.items():
        if column not in frame.columns or kind in ("id", "text", "datetime"):  # dates move on by nature
            continue
        values = frame[column]
        entry: dict[str, Any] = {"type": "numeric" if kind == "numeric" else "categorical",
                                 "missing": float(values.isna().mean())}  # fmt: skip
        if entry["type"] == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(np.float64)
            numbers = numbers[np.isfinite(numbers)]
            if not len(numbers):
                continue
            edges = np.unique(np.quantile(numbers, np.linspace(0, 1, BINS + 1)[1:-1]))
            sample = rng.choice(numbers, min(SAMPLE, len(numbers)), replace=False).round(6)
            entry |= {"edges": edges.tolist(), "shares": _shares_numeric(numbers, edges).tolist(),
                      "sample": sample.tolist()}  # fmt: skip
        else:
            entry["shares"] = values.dropna().astype(str).value_counts(normalize=True).round(8).to_dict()
        columns[str(column)] = entry
    return {"rows": len(frame), "columns": columns, "predictions": _prediction_profile(predictions, task)}


def drift_report(profile: dict[str, Any], frame: pd.DataFrame, predictions: np.ndarray, task: str) -> dict[str, Any]:
    """Per-column and prediction drift of `frame` against the training profile, with an overall alert."""
    features = []
    for column, ref in profile["columns"].items():
        if column not in frame.columns:
            features.append({"column": column, "status": "missing", "psi": None, "p_value": None,
                             "detail": "the column is absent from the new data"})  # fmt: skip
            continue
        features.append(_column_drift(column, ref, frame[column]))
    prediction = _prediction_drift(profile["predictions"], predictions, task)
    drifted = [f["column"] for f in features if f["status"] in ("drift", "missing")]
    status = "alert" if drifted or prediction["status"] == "drift" else (
        "warning" if any(f["status"] == "warning" for f in features) or prediction["status"] == "warning" else "ok")
    summary = (f"{len(drifted)} of {len(features)} columns drifted ({', '.join(drifted[:5])}"
               f"{' ...' if len(drifted) > 5 else ''})" if drifted else "no column drifted")  # fmt: skip
    if prediction["psi"] is not None:
        summary += f"; predictions {prediction['status']} (PSI {prediction['psi']:.3f})"
    return {"status": status, "summary": summary, "rows": len(frame), "reference_rows": profile["rows"],
            "thresholds": {"psi_warning": PSI_WARN, "psi_alert": PSI_ALERT, "p_value": P_ALERT},
            "features": sorted(features, key=lambda f: -(f["psi"] or 0.0)), "predictions": prediction}  # fmt: skip


def _column_drift(column: str, ref: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {"column": column, "type": ref["type"], "missing_reference": ref["missing"],
                           "missing_now": float(values.isna().mean())}  # fmt: skip
    if ref["type"] == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(np.float64)
        numbers = numbers[np.isfinite(numbers)]
        if not len(numbers):
            return out | {"status": "drift", "psi": None, "p_value": None, "detail": "no numeric value in the new data"}
        now = _shares_numeric(numbers, np.asarray(ref["edges"]))
        psi = _psi(np.asarray(ref["shares"]), now)
        p_value = float(stats.ks_2samp(np.asarray(ref["sample"]), numbers).pvalue)
        out["test"] = "kolmogorov_smirnov"
        out["mean_reference"], out["mean_now"] = float(np.mean(ref["sample"])), float(numbers.mean())
    else:
        counts = values.dropna().astype(str).value_counts()
        categories = sorted(set(ref["shares"]) | set(counts.index))
        before = np.array([ref["shares"].get(c, 0.0) for c in categories])
        now = np.array([counts.get(c, 0) for c in categories], dtype=float)
        psi = _psi(before, now / max(now.sum(), 1.0))
        expected = before * now.sum()
        table = np.vstack([np.maximum(expected, EPS), now])[:, (expected + now) > 0]
        p_value = float(stats.chi2_contingency(table)[1]) if table.shape[1] > 1 and now.sum() else 1.0
        new = [c for c in counts.index if c not in ref["shares"]]
        out["test"], out["new_categories"] = "chi_square", new[:10]
    status = "drift" if psi > PSI_ALERT or (psi > PSI_WARN and p_value < P_ALERT) else (
        "warning" if psi > PSI_WARN else "ok")  # fmt: skip
    return out | {"status": status, "psi": round(float(psi), 6), "p_value": p_value}


def _prediction_profile(predictions: np.ndarray, task: str) -> dict[str, Any]:
    p = np.asarray(predictions)
    if p.ndim > 1 or not len(p):
        return {}
    if task in ("regression",):
        edges = np.unique(np.quantile(p.astype(float), np.linspace(0, 1, BINS + 1)[1:-1]))
        return {"type": "numeric", "edges": edges.tolist(), "shares": _shares_numeric(p.astype(float), edges).tolist()}
    return {"type": "categorical", "shares": pd.Series(p.astype(str)).value_counts(normalize=True).to_dict()}


def _prediction_drift(ref: dict[str, Any], predictions: np.ndarray, task: str) -> dict[str, Any]:
    p = np.asarray(predictions)
    if not ref or p.ndim > 1 or not len(p):
        return {"status": "not_checked", "psi": None}
    if ref["type"] == "numeric":
        psi = _psi(np.asarray(ref["shares"]), _shares_numeric(p.astype(float), np.asarray(ref["edges"])))
    else:
        now = pd.Series(p.astype(str)).value_counts(normalize=True)
        categories = sorted(set(ref["shares"]) | set(now.index))
        psi = _psi(np.array([ref["shares"].get(c, 0.0) for c in categories]),
                   np.array([now.get(c, 0.0) for c in categories]))  # fmt: skip
    status = "drift" if psi > PSI_ALERT else "warning" if psi > PSI_WARN else "ok"
    return {"status": status, "psi": round(float(psi), 6)}


def _shares_numeric(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def _psi(before: np.ndarray, now: np.ndarray) -> float:
    """Population stability index: sum((now - before) * ln(now / before)) over bins, empty bins floored."""
    b, n = np.maximum(before, EPS), np.maximum(now, EPS)
    value = float(np.sum((n - b) * np.log(n / b)))
    return value if math.isfinite(value) else float("inf")
