"""Report sections for unsupervised runs: the clusters and their profiles, a 2-D projection, the sweep that chose
k, explained variance, the dendrogram and the anomaly scores. Registered like the others; each returns None for
a run with nothing for it (a supervised run, a model without that output).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trainwell.config import UNSUPERVISED_TASKS
from trainwell.report import plots
from trainwell.report.html import RunData, figures, fmt, note, section, table

SPLITS = ("train", "validation", "test")
# evaluate.unsupervised.VARIANCE_TARGET, the share a sweep on explained_variance aims for; not imported from
# there because that module pulls in torch, which the report never needs
VARIANCE_TARGET = 0.95
DIRECTION = {"silhouette": "higher is better", "calinski_harabasz": "higher is better",
             "davies_bouldin": "lower is better", "bic": "lower is better"}  # fmt: skip
MAX_PROFILE_ROWS = 50  # clusters listed in the profile table (HDBSCAN can find hundreds)
MAX_COMPONENTS = 100  # explained-variance bars drawn
DENDROGRAM_LEAVES = 30  # the dendrogram shows the last merges only: beyond ~30 leaves it is unreadable
TOP_ANOMALIES = 10


@section("clusters", "Clusters", order=25)
def clusters_section(data: RunData) -> str | None:
    """How many rows each cluster holds and what a typical row of it looks like, in the data's own units."""
    c = data.metrics.get("clusters")
    if data.task != "clustering" or not c or not c.get("sizes"):
        return None
    sizes = {_label(k): int(v) for k, v in c["sizes"].items()}
    names = sorted(sizes, key=plots.group_key)
    split, total, noise = str(c.get("split", "train")), sum(sizes.values()), sizes.get(plots.NOISE, 0)
    svg = plots.cluster_sizes(names, [sizes[n] for n in names], f"Cluster sizes ({split})")
    caption = f"{len(names) - (plots.NOISE in sizes)} clusters over {total:,} {split} rows"
    caption += f"; {noise:,} ({noise / total:.1%}) are noise (-1): rows no cluster claims." if noise else "."
    out = figures(svg, caption=caption)
    profiles = c.get("profiles") or {}
    columns = list(profiles.get("columns") or [])
    rows = sorted(profiles.get("rows") or [], key=lambda r: plots.group_key(_label(r.get("cluster"))))
    if rows and columns:
        body = [[_label(r.get("cluster")), r.get("size"), *(r.get(col) for col in columns)]
                for r in rows[:MAX_PROFILE_ROWS]]  # fmt: skip
        more = f" The first {MAX_PROFILE_ROWS} of {len(rows)} clusters." if len(rows) > MAX_PROFILE_ROWS else ""
        out += f"<h3>Profiles</h3>{table(['cluster', 'rows', *columns], body)}" + note(
            f"On the {split} rows. Numeric columns: the cluster's mean in the original units; other columns: "
            f"its most frequent value.{more}"
        )
    return out


@section("explained-variance", "Explained variance", order=26)
def variance_section(data: RunData) -> str | None:
    """Variance per component and cumulated for PCA-like models; the variance kept by reconstruction for all."""
    splits = [s for s in SPLITS if data.metrics.get(s)]
    if data.task != "dimensionality_reduction" or not splits:
        return None
    kept = _kept_sentence(data, splits)
    ratios = next((data.metrics[s]["explained_variance_ratio"] for s in splits
                   if data.metrics[s].get("explained_variance_ratio")), None)  # fmt: skip
    if not ratios:
        n = next((data.metrics[s].get("n_components") for s in splits if data.metrics[s].get("n_components")), None)
        head = f"{fmt(n)} components; this model gives no variance per component. " if n else ""
        return f"<p>{head}{kept}</p>" if head or kept else None
    r = np.nan_to_num(np.asarray(ratios, float))
    reached = np.flatnonzero(np.cumsum(r) >= VARIANCE_TARGET)
    caption = f"{len(r)} components keep {r.sum():.1%} of the variance of the rows they were fitted on; "
    caption += (f"the first {reached[0] + 1} keep {VARIANCE_TARGET:.0%}." if len(reached)
                else f"they do not reach {VARIANCE_TARGET:.0%}: more components would keep more.")  # fmt: skip
    if len(r) > MAX_COMPONENTS:
        caption += f" The first {MAX_COMPONENTS} are drawn."
    return figures(plots.explained_variance(r[:MAX_COMPONENTS], VARIANCE_TARGET), caption=caption) + (
        note(kept) if kept else ""
    )


def _kept_sentence(data: RunData, splits: list[str]) -> str:
    """Variance kept and reconstruction error per split, or why they are undefined."""
    parts = []
    for split in splits:
        m = data.metrics[split]
        if "variance_kept" not in m and "reconstruction_error" not in m:
            continue
        kept, error = m.get("variance_kept"), m.get("reconstruction_error")
        kept_text = f"{kept:.1%}" if kept is not None else _undefined(data, split, "variance_kept")
        error_text = f"{fmt(error)} per value" if error is not None else _undefined(data, split, "reconstruction_error")
        parts.append(f"{split}: variance kept {kept_text}, reconstruction error {error_text}")
    return ("Reconstructing the rows from the components — " + "; ".join(parts) + ".") if parts else ""


@section("anomaly-scores", "Anomaly scores", order=27)
def anomaly_section(data: RunData) -> str | None:
    """Where the flagged rows sit among all scores, how labelled anomalies score, and the top-scored rows."""
    preds = data.predictions
    if data.task != "anomaly_detection" or preds is None or "anomaly_score" not in preds:
        return None
    split, rows = _held_out(preds)
    scores = rows["anomaly_score"].to_numpy(float)
    ok = np.isfinite(scores)
    truth = _anomaly_truth(rows["y_true"]) if "y_true" in rows else None
    flagged = (preds["prediction"] == 1).to_numpy() if "prediction" in preds else np.zeros(len(preds), bool)
    cut = float(preds.loc[flagged, "anomaly_score"].min()) if flagged.any() else None
    svg = plots.score_histogram(scores[ok], truth[ok] if truth is not None else None, cut, split)
    caption = f"On the {split} split ({int(ok.sum()):,} rows); higher scores are more anomalous. "
    if cut is None:
        caption += "No row was flagged."
    else:
        caption += (f"{int(flagged.sum()):,} of {len(preds):,} rows flagged over all splits ({flagged.mean():.1%}); "
                    "the dashed line is the cut, the lowest flagged score.")  # fmt: skip
    if truth is not None:
        caption += " Normal rows and labelled anomalies apart: the less they overlap, the better the scores rank them."
    label = str(data.run.get("target") or "label")
    top = preds.nlargest(TOP_ANOMALIES, "anomaly_score")
    columns = ["row", "split", "anomaly_score", *(["y_true"] if "y_true" in top else [])]
    body = [list(r) for r in top[columns].itertuples(index=False)]
    headers = ["row", "split", "score", *([label] if "y_true" in top else [])]
    return figures(svg, caption=caption) + f"<h3>Top {len(top)} rows by score</h3>" + table(headers, body)


@section("projection", "Projection", order=28)
def projection_section(data: RunData) -> str | None:
    """The rows on two axes, coloured by what the model found (or by the label), to see the structure."""
    p = data.metrics.get("projection")
    if data.task not in UNSUPERVISED_TASKS or not p or not p.get("x"):
        return None
    x, y = np.asarray(p["x"], float), np.asarray(p["y"], float)
    joined = _joined(data.predictions, p.get("rows"), len(x))
    colour, described = _colouring(data, joined)
    ok = np.isfinite(x) & np.isfinite(y)
    colour = {k: v[ok] if isinstance(v, np.ndarray) else v for k, v in colour.items()}
    if p.get("method") == "pca":
        axes, where = ("PC 1", "PC 2"), "the first two principal components of the prepared features"
    else:
        axes, where = ("component 1", "component 2"), "the model's first two components"
    caption = f"{int(ok.sum()):,} rows on {where}. {described}"
    if ok.sum() > plots.MAX_POINTS:
        caption += f" A random {plots.MAX_POINTS:,} of them are drawn."
    if p.get("method") == "pca":
        caption += " A flat view: groups that overlap here may still be apart in the full feature space."
    return figures(plots.projection(x[ok], y[ok], axes, **colour), caption=caption)


def _joined(preds: pd.DataFrame | None, rows: list[Any] | None, n: int) -> pd.DataFrame | None:
    """The prediction row of each projected point, in the projection's order; None when they cannot be matched."""
    if preds is None or "row" not in preds or not rows or len(rows) != n:
        return None
    keyed = preds.assign(_key=preds["row"].astype(str)).drop_duplicates("_key").set_index("_key")
    return keyed.reindex([str(r) for r in rows])


def _colouring(data: RunData, joined: pd.DataFrame | None) -> tuple[dict[str, Any], str]:
    """The projection's colours for this task (keyword arguments of plots.projection) and a sentence saying so."""
    if joined is None:
        return {}, "One colour: the rows could not be matched to predictions.csv."
    if data.task == "clustering" and "prediction" in joined:
        groups = np.array([_label(v) for v in joined["prediction"]])
        noise = "; noise in grey" if plots.NOISE in groups else ""
        return {"groups": groups, "label": "cluster"}, f"Coloured by cluster{noise}."
    if data.task == "anomaly_detection" and "anomaly_score" in joined:
        marked = (joined["prediction"] == 1).to_numpy() if "prediction" in joined else None
        colour = {"values": joined["anomaly_score"].to_numpy(float), "label": "anomaly score", "marked": marked}
        return colour, "Coloured by anomaly score" + ("; flagged rows ringed in red." if marked is not None else ".")
    if "y_true" in joined:
        target = str(data.run.get("target") or "label")
        y = joined["y_true"]
        if data.classes or not pd.api.types.is_numeric_dtype(y) or y.nunique() <= 10:
            return {"groups": np.array([_label(v, noise=False) for v in y]), "label": target}, f"Coloured by {target}."
        return {"values": y.to_numpy(float), "label": target}, f"Coloured by {target}."
    return {}, "One colour: no label column was given."


@section("dendrogram", "Dendrogram", order=29)
def dendrogram_section(data: RunData) -> str | None:
    """How the agglomerative clustering merged rows: long stretches without a merge mark a natural cut."""
    d = data.metrics.get("dendrogram")
    if not d or not d.get("linkage"):
        return None
    z = np.asarray(d["linkage"], float)  # (rows - 1, 4): merged i, merged j, distance, rows below
    rows = int(d.get("rows") or len(z) + 1)
    method = str(d.get("method") or "agglomerative")
    caption = f"{method.capitalize()} linkage over a sample of {rows:,} training rows. "
    if rows > DENDROGRAM_LEAVES:
        caption += (f"Only the last {DENDROGRAM_LEAVES} merges are drawn; a label in parentheses counts the rows "
                    "under that leaf. ")  # fmt: skip
    caption += "A long vertical stretch without a merge means the groups below it are far apart."
    return figures(plots.dendrogram(z, method, p=DENDROGRAM_LEAVES), caption=caption)


@section("choosing-k", "Choosing k", order=32)
def sweep_section(data: RunData) -> str | None:
    """The score of every candidate number of clusters/components, and why the chosen one won."""
    s = data.metrics.get("sweep")
    if not s or not s.get("curve"):
        return None
    curve, param = s["curve"], str(s.get("param") or "k")
    criterion, chosen = str(s.get("criterion") or "score"), int(s["chosen"])
    threshold = float(s.get("threshold") or VARIANCE_TARGET) if criterion == "explained_variance" else None
    svg = plots.sweep_curve([c["value"] for c in curve], [c.get("score") for c in curve], chosen, criterion, param,
                            threshold)  # fmt: skip
    if threshold is not None:
        rule = f"the smallest {param} keeping {threshold:.0%} of the variance wins"
    else:
        rule = DIRECTION.get(criterion, "")
    caption = f"Each candidate {param} scored by {criterion.replace('_', ' ')}" + (f" ({rule})" if rule else "")
    caption += f"; chosen: {param} = {chosen}."
    undefined = [str(c["value"]) for c in curve if c.get("score") is None]
    if undefined:
        caption += f" Undefined for {', '.join(undefined)} (gaps in the line)."
    if s.get("skipped"):
        caption += f" Not tried, too large for the data: {', '.join(str(v) for v in s['skipped'])}."
    if s.get("note"):
        caption += f" {str(s['note']).rstrip('.')}."
    return figures(svg, caption=caption)


# ---------------------------------------------------------------- helpers


def _label(value: Any, noise: bool = True) -> str:
    """A cluster id or class as shown: integers without '.0'; -1 is noise for cluster ids."""
    if pd.isna(value):
        return "missing"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value)
    return plots.NOISE if noise and text == "-1" else text


def _undefined(data: RunData, split: str, name: str) -> str:
    """'undefined (the reason)' for a null metric, with the reason the run recorded."""
    reason = ((data.metrics.get("skipped") or {}).get(split) or {}).get(name)
    return f"undefined ({reason})" if reason else "undefined"


def _held_out(preds: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The test rows, else the validation rows, else the training rows (every split is in predictions.csv)."""
    if "split" in preds:
        for split in ("test", "validation", "train"):
            rows = preds[preds["split"] == split]
            if len(rows):
                return split, rows
    return "all", preds


def _anomaly_truth(values: pd.Series) -> np.ndarray | None:
    """A 0/1 or true/false label column as booleans (True = anomaly); None when it holds anything else."""
    words = {"1": True, "0": False, "1.0": True, "0.0": False, "true": True, "false": False}
    mapped = values.astype(str).str.strip().str.lower().map(words)
    return None if mapped.isna().any() else mapped.to_numpy(bool)
