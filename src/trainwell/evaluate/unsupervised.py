"""Scores for models without a target: cluster quality, variance kept, anomalies found; the sweep choosing k.

Every function returns plain JSON-ready values. A metric that is undefined on the data (silhouette of one
cluster, ROC-AUC when the label column holds one class) is NaN with its reason under "skipped", never an
exception: a degenerate result is itself what the report must show.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from trainwell.errors import UserError, unknown
from trainwell.models.unsupervised import TASKS, fit_unsupervised, get_unsupervised

SILHOUETTE_ROWS = 5_000  # silhouette is O(n²) in time and memory: it is computed on a seeded sample this large
NO_STRUCTURE = 0.25  # silhouette below this: the clusters are no better than cuts through one cloud
GOOD_SEPARATION = 0.5  # silhouette above this: compact, well-separated clusters (Kaufman & Rousseeuw's "reasonable")
VARIANCE_TARGET = 0.95  # the share of variance a reduction should keep, and the sweep's default threshold
VARIANCE_LOW = 0.80  # below this much variance kept, the components lose a fifth of the information
FLAG_TOLERANCE = 0.5  # a flagged share within ±50% of the contamination (at least ±1 point) is as configured
POOR_AUC = 0.7  # a detector ranking true anomalies above normal rows less often than this finds little
MAX_REFITS = 12  # sizes a sweep fits one by one, at most (a PCA-like model needs one fit for every size)
CRITERIA = ("silhouette", "davies_bouldin", "calinski_harabasz", "bic", "explained_variance")
_LOWER_IS_BETTER = {"davies_bouldin", "bic"}


# ---------------------------------------------------------------- clustering


def clustering_metrics(
    X: np.ndarray, labels: np.ndarray, y_true: np.ndarray | None = None, *, seed: int = 0,
    max_rows: int = SILHOUETTE_ROWS,
) -> dict[str, Any]:  # fmt: skip
    """Internal cluster quality (on rows not marked noise, -1), and agreement with `y_true` when given.

    Silhouette is computed on a seeded sample of at most `max_rows` clustered rows; Davies-Bouldin and
    Calinski-Harabasz on all of them. External scores (adjusted Rand, NMI, homogeneity, completeness) use every
    row, noise counted as one more label.
    """
    X, labels = np.asarray(X), np.asarray(labels)
    clustered = labels != -1
    n_clusters = len(np.unique(labels[clustered]))
    out: dict[str, Any] = {"n_clusters": n_clusters, "noise_share": float(np.mean(~clustered)) if len(labels) else 0.0}
    skipped: dict[str, str] = {}
    reason = _internal_undefined(n_clusters, int(clustered.sum()))
    for name in ("silhouette", "davies_bouldin", "calinski_harabasz"):
        out[name] = math.nan
        if reason:
            skipped[name] = reason
    if not reason:
        Xc, lc = X[clustered], labels[clustered]
        out["silhouette"] = _silhouette(Xc, lc, seed, max_rows)
        out["davies_bouldin"] = float(skm.davies_bouldin_score(Xc, lc))
        out["calinski_harabasz"] = float(skm.calinski_harabasz_score(Xc, lc))
        if math.isnan(out["silhouette"]):
            skipped["silhouette"] = f"the {max_rows}-row sample held a single cluster"
    if y_true is not None:
        y_true = np.asarray(y_true)
        if len(y_true) != len(labels):
            raise UserError(f"the label column has {len(y_true)} values for {len(labels)} rows; give one per row")
        out |= {"adjusted_rand": float(skm.adjusted_rand_score(y_true, labels)),
                "normalized_mutual_info": float(skm.normalized_mutual_info_score(y_true, labels)),
                "homogeneity": float(skm.homogeneity_score(y_true, labels)),
                "completeness": float(skm.completeness_score(y_true, labels))}  # fmt: skip
    return out | {"skipped": skipped}


def _internal_undefined(n_clusters: int, n_clustered: int) -> str:
    """Why silhouette and co. are undefined here, or '' when they are defined (2 ≤ clusters < rows)."""
    if n_clustered == 0:
        return "every row is noise (-1): no cluster to score"
    if n_clusters < 2:
        return "a single cluster: there is nothing to separate"
    if n_clusters >= n_clustered:
        return "every row is its own cluster"
    return ""


def _silhouette(X: np.ndarray, labels: np.ndarray, seed: int, max_rows: int) -> float:
    """Mean silhouette on a seeded sample of at most `max_rows` rows; NaN when the sample holds one cluster."""
    if len(X) > max_rows:
        keep = np.random.default_rng(seed).choice(len(X), max_rows, replace=False)
        X, labels = X[keep], labels[keep]
    n = len(np.unique(labels))
    return float(skm.silhouette_score(X, labels)) if 2 <= n < len(X) else math.nan


# ---------------------------------------------------------------- dimensionality reduction


def reduction_metrics(model: Any, X: np.ndarray) -> dict[str, Any]:
    """Variance kept by a fitted reducer: per component (PCA-like models) and by reconstructing `X`.

    `variance_kept` is 1 - (squared reconstruction error) / (total variance of X), for any model with
    `inverse_transform` (the autoencoder included); for PCA it equals the cumulative explained variance ratio.
    """
    X = np.asarray(X, dtype=np.float64)
    codes = model.transform(X)
    out: dict[str, Any] = {"n_components": int(codes.shape[1])}
    ratios = getattr(model, "explained_variance_ratio_", None)  # scikit-learn's PCA, IncrementalPCA, TruncatedSVD
    if ratios is not None:
        out["explained_variance_ratio"] = [float(r) for r in ratios]
        out["cumulative_explained_variance"] = [float(c) for c in np.cumsum(ratios)]
    if hasattr(model, "inverse_transform"):
        error = np.square(X - model.inverse_transform(codes)).sum(axis=1)  # (N,)
        total = np.square(X - X.mean(axis=0)).sum()
        out["reconstruction_error"] = float(error.mean() / X.shape[1])  # mean squared error per value
        out["variance_kept"] = float(1 - error.sum() / total) if total > 0 else math.nan
    return out


# ---------------------------------------------------------------- anomaly detection


def anomaly_metrics(
    scores: np.ndarray, flags: np.ndarray, y_true: np.ndarray | None = None, *, contamination: float | None = None
) -> dict[str, Any]:
    """Share flagged and, with a 0/1 label (1 = anomaly), how well the scores rank the true anomalies.

    Args:
        scores: (N,) higher for more anomalous rows (`models.unsupervised.anomaly_outputs` gives them).
        flags: (N,) True where the detector calls the row an anomaly.
        y_true: optional (N,) 0/1 or bool, 1 = a known anomaly; used only for scoring.
        contamination: the share the detector was told to expect; precision is measured at that many top rows.
    """
    scores, flags = np.asarray(scores, dtype=np.float64), np.asarray(flags, dtype=bool)
    out: dict[str, Any] = {"flagged_share": float(flags.mean()) if len(flags) else 0.0}
    skipped: dict[str, str] = {}
    if contamination is not None:
        out["contamination"] = float(contamination)
    if y_true is not None:
        truth = _anomaly_labels(y_true, len(scores))
        rate = contamination if contamination is not None else out["flagged_share"]
        top = max(1, round(rate * len(scores)))
        out["precision_at_contamination"] = float(truth[np.argsort(-scores, kind="stable")[:top]].mean())
        out["flag_precision"] = float(truth[flags].mean()) if flags.any() else math.nan
        out["flag_recall"] = float(flags[truth].mean()) if truth.any() else math.nan
        if truth.all() or not truth.any():
            out["roc_auc"] = out["average_precision"] = math.nan
            skipped["roc_auc"] = skipped["average_precision"] = "the label column holds one class only"
        else:
            out["roc_auc"] = float(skm.roc_auc_score(truth, scores))
            out["average_precision"] = float(skm.average_precision_score(truth, scores))
    return out | {"skipped": skipped}


def _anomaly_labels(y_true: np.ndarray, n: int) -> np.ndarray:
    """A 0/1 or boolean label column as booleans (True = anomaly); anything else is a UserError."""
    y = np.asarray(y_true)
    if len(y) != n:
        raise UserError(f"the label column has {len(y)} values for {n} rows; give one per row")
    if y.dtype != bool and not np.isin(y, [0, 1]).all():
        raise UserError("the label column for anomaly detection must be 0/1 or true/false (1 = anomaly); "
                        f"found values such as {np.unique(y)[:3].tolist()}")  # fmt: skip
    return y.astype(bool)


# ---------------------------------------------------------------- one split of a run


def split_scores(
    task: str, model: Any, X: np.ndarray, outputs: tuple[np.ndarray, np.ndarray | None], labels: np.ndarray | None,
    *, seed: int = 0, contamination: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The metrics of one split for metrics.json: the task's scores, undefined ones null with their reason.

    `model` is the fitted scikit-learn estimator; `outputs` what the run's model gave for these rows;
    `labels` label codes with -1 for rows without a label (external scores use the labelled rows), or None.
    """
    known = labels is not None and bool((np.asarray(labels) >= 0).any())
    mask = np.asarray(labels) >= 0 if known else None
    if task == "clustering":
        out = clustering_metrics(X, outputs[0], labels if known and mask.all() else None, seed=seed)  # type: ignore[union-attr]
        if known and not mask.all():  # type: ignore[union-attr]
            external = clustering_metrics(X[mask], outputs[0][mask], labels[mask], seed=seed)  # type: ignore[index]
            out |= {k: external[k] for k in ("adjusted_rand", "normalized_mutual_info", "homogeneity", "completeness")}
    elif task == "anomaly_detection":
        scores, flags = outputs[1], outputs[0].astype(bool)
        out = anomaly_metrics(scores, flags, contamination=contamination)  # type: ignore[arg-type]
        if known:
            out = anomaly_metrics(scores[mask], flags[mask], labels[mask], contamination=contamination)  # type: ignore[index]
            out["flagged_share"] = float(flags.mean())
    else:
        out = reduction_metrics(model, X) | {"skipped": {}}
    return {k: _json_number(v) for k, v in out.items()}


def _json_number(value: Any) -> Any:
    """NaN and infinities → None: metrics.json stays strict JSON; the reason sits under "skipped"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------- choosing k


@dataclass
class SweepResult:
    """The chosen number of clusters/components and the curve behind the choice, for the report."""

    param: str  # n_clusters or n_components
    criterion: str
    chosen: int
    curve: list[dict[str, float]]  # [{"value": k, "score": s}], in the order tried; NaN where undefined
    skipped: list[int] = field(default_factory=list)  # candidates the data is too small for
    note: str = ""
    threshold: float | None = None  # explained_variance: the share of variance the chosen size must keep

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep(
    name: str, params: dict[str, Any], X: np.ndarray, values: list[int], *, seed: int, criterion: str = "auto",
    threshold: float = VARIANCE_TARGET, max_rows: int = SILHOUETTE_ROWS,
) -> SweepResult:  # fmt: skip
    """Fit `name` once per candidate size and pick one by `criterion`.

    Criteria: silhouette (max), davies_bouldin (min), calinski_harabasz (max), bic (min; gaussian_mixture),
    explained_variance (the smallest size keeping `threshold` of the variance). "auto": bic for models with a
    likelihood, silhouette for other clusterers, explained_variance for reducers. Candidates larger than the
    data allows are skipped (listed in the result); ties go to the smaller size.
    """
    spec = get_unsupervised(name)
    if spec.size_param is None or spec.max_size is None:
        raise UserError(f"model {name} has no number of clusters or components to sweep; set its parameters, "
                        "or sweep kmeans, gaussian_mixture or pca")  # fmt: skip
    X = np.asarray(X)
    limit = spec.max_size(*X.shape)
    usable = sorted({int(v) for v in values if 1 <= int(v) <= limit})
    if not usable:
        raise UserError(f"none of the sweep values {sorted(values)} fits {name} on {X.shape[0]} rows x "
                        f"{X.shape[1]} features (at most {limit}); sweep smaller values")  # fmt: skip
    criterion = _resolve_criterion(criterion, spec.task, name)
    curve = _variance_curve(name, params, X, usable, seed) if criterion == "explained_variance" else []
    if not curve and criterion == "explained_variance" and len(usable) > MAX_REFITS:  # one fit per size: thin
        usable = sorted({usable[round(i)] for i in np.linspace(0, len(usable) - 1, MAX_REFITS)})
    for value in usable if not curve else []:
        model = fit_unsupervised(name, {**params, spec.size_param: value}, X, seed=seed)
        curve.append({"value": value, "score": _score(model, X, criterion, seed, max_rows)})
    chosen, note = _choose(curve, criterion, threshold)
    skipped = sorted({int(v) for v in values} - set(usable))
    kept = threshold if criterion == "explained_variance" else None
    return SweepResult(spec.size_param, criterion, chosen, curve, skipped, note, kept)


def _variance_curve(name: str, params: dict[str, Any], X: np.ndarray, values: list[int],
                    seed: int) -> list[dict[str, float]]:  # fmt: skip
    """The whole explained-variance curve from one fit at the largest size, for models that report each
    component's share (PCA and kin: the first k components do not depend on how many are kept); [] otherwise."""
    spec = get_unsupervised(name)
    model = fit_unsupervised(name, {**params, spec.size_param: max(values)}, X, seed=seed)  # type: ignore[dict-item]
    ratios = getattr(model, "explained_variance_ratio_", None)
    if ratios is None:
        return []
    cumulative = np.cumsum(ratios)
    return [{"value": v, "score": float(cumulative[v - 1])} for v in values]


def _resolve_criterion(criterion: str, task: str, name: str) -> str:
    """The criterion `auto` stands for, after checking the one given fits the task."""
    if criterion == "auto":
        return get_unsupervised(name).sweep_criterion
    if criterion not in CRITERIA:
        raise unknown("sweep criterion", criterion, CRITERIA)
    if (criterion == "explained_variance") != (task == "dimensionality_reduction"):
        raise UserError(f'sweep criterion "{criterion}" does not fit {task} ({name}); use auto')
    return criterion


def _score(model: Any, X: np.ndarray, criterion: str, seed: int, max_rows: int) -> float:
    """One candidate's score under `criterion`; NaN where it is undefined (one cluster found)."""
    if criterion == "explained_variance":
        found = reduction_metrics(model, X)
        cumulative = found.get("cumulative_explained_variance")
        return cumulative[-1] if cumulative else found.get("variance_kept", math.nan)
    if criterion == "bic":
        if not hasattr(model, "bic"):
            raise UserError('sweep criterion "bic" needs a model with a likelihood (gaussian_mixture); use silhouette')
        return float(model.bic(X))
    return float(clustering_metrics(X, model.predict(X), seed=seed, max_rows=max_rows)[criterion])


def _choose(curve: list[dict[str, float]], criterion: str, threshold: float) -> tuple[int, str]:
    """The chosen value from a sweep curve, and a note when the choice is a fallback."""
    scored = [p for p in curve if math.isfinite(p["score"])]
    if not scored:
        return int(curve[0]["value"]), f"{criterion} was undefined for every candidate; kept the smallest"
    if criterion == "explained_variance":
        enough = [p for p in scored if p["score"] >= threshold]
        if enough:
            return int(enough[0]["value"]), ""
        best = scored[-1]
        return int(best["value"]), f"no candidate keeps {threshold:.0%} of the variance ({best['score']:.1%} at most)"
    sign = 1.0 if criterion in _LOWER_IS_BETTER else -1.0
    best = min(scored, key=lambda p: (sign * p["score"], p["value"]))
    return int(best["value"]), ""


# ---------------------------------------------------------------- diagnosis


def diagnose_unsupervised(task: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """A verdict, one sentence and advice from the metrics of one unsupervised fit; JSON-ready."""
    judge = {"clustering": _diagnose_clusters, "dimensionality_reduction": _diagnose_reduction,
             "anomaly_detection": _diagnose_anomalies}.get(task)  # fmt: skip
    if judge is None:
        raise unknown("unsupervised task", task, TASKS)
    metrics = {k: math.nan if v is None else v for k, v in metrics.items()}  # null in metrics.json: undefined
    verdict, summary, advice = judge(metrics)
    evidence = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"verdict": verdict, "summary": summary, "evidence": evidence, "advice": advice}


def _diagnose_clusters(m: dict[str, Any]) -> tuple[str, str, list[str]]:
    silhouette, noise, k = m.get("silhouette", math.nan), m.get("noise_share", 0.0), m.get("n_clusters", 0)
    if not math.isfinite(silhouette):
        reason = m.get("skipped", {}).get("silhouette", "the clusters cannot be scored")
        return "degenerate", f"no usable clustering: {reason}", [
            "for dbscan raise eps or lower min_samples; for hdbscan lower min_cluster_size",
            "or use kmeans with n_clusters: auto to choose k by silhouette"]  # fmt: skip
    if silhouette < NO_STRUCTURE:
        return (
            "no_structure",
            f"no cluster structure: silhouette {silhouette:.2f} (below {NO_STRUCTURE})",
            [
                "the rows form one cloud, or the features hide the groups: scale the features, drop irrelevant ones",
                "try pca first, or another n_clusters; treat these clusters as arbitrary cuts",
            ],
        )
    noisy = f"; {noise:.0%} of rows are noise" if noise > 0 else ""
    if silhouette > GOOD_SEPARATION:
        return (
            "good_separation",
            f"good separation: {k} clusters, silhouette {silhouette:.2f}{noisy}",
            ["the clusters are compact and apart; check them against what the rows mean before using them"],
        )
    return (
        "weak_structure",
        f"weak structure: {k} clusters, silhouette {silhouette:.2f}{noisy}",
        ["the clusters overlap: sweep n_clusters, or try gaussian_mixture (elliptical) or hdbscan (any shape)"],
    )


def _diagnose_reduction(m: dict[str, Any]) -> tuple[str, str, list[str]]:
    cumulative = m.get("cumulative_explained_variance")
    kept = cumulative[-1] if cumulative else m.get("variance_kept", math.nan)
    n = m.get("n_components", 0)
    if not math.isfinite(kept):
        return "unknown", "the variance kept could not be measured (constant features)", []
    sentence = f"{n} components keep {kept:.0%} of the variance"
    if kept >= VARIANCE_TARGET:
        return "enough_components", sentence, ["fewer components may do: sweep n_components with auto"]
    if kept >= VARIANCE_LOW:
        return "some_loss", sentence, [f"raise n_components to keep {VARIANCE_TARGET:.0%} (n_components: auto)"]
    return "information_lost", sentence, [
        f"raise n_components (n_components: auto picks the fewest keeping {VARIANCE_TARGET:.0%})",
        "or the structure is nonlinear: try the autoencoder"]  # fmt: skip


def _diagnose_anomalies(m: dict[str, Any]) -> tuple[str, str, list[str]]:
    share, expected, auc = m.get("flagged_share", 0.0), m.get("contamination"), m.get("roc_auc", math.nan)
    if math.isfinite(auc) and auc < POOR_AUC:
        return (
            "poor_detection",
            f"the scores barely separate the labelled anomalies: ROC-AUC {auc:.2f}",
            ["try another detector (isolation_forest, local_outlier_factor) or scale the features"],
        )
    if expected is None:
        return "flagged", f"{share:.1%} of rows flagged", ["set contamination to the share of anomalies you expect"]
    sentence = f"{share:.1%} of rows flagged, {expected:.1%} expected"
    if abs(share - expected) <= max(FLAG_TOLERANCE * expected, 0.01):
        good = f"; ROC-AUC {auc:.2f}" if math.isfinite(auc) else ""
        return "as_expected", sentence + good, ["inspect the top-scored rows to confirm they are real anomalies"]
    if share > expected:
        return "over_flagging", sentence, ["new rows differ from the training rows, or lower-density regions are "
                                           "normal here: check for drift, or raise contamination"]  # fmt: skip
    return "under_flagging", sentence, ["fewer rows pass the cut than expected: lower contamination, or the "
                                        "anomalies resemble normal rows in these features"]  # fmt: skip
