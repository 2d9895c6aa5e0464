"""The report's plots: matplotlib figures rendered to inline SVG strings (no files, no pyplot state).

SVG keeps text as text (selectable, tiny) and lines crisp; dense scatters are rasterized inside the SVG
and subsampled so that a run with 100k predictions still gives a report of a few hundred kilobytes.
"""

from __future__ import annotations

import html
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

TRAIN, VAL, TEST, NEUTRAL = "#3867a8", "#e07b39", "#3d9a59", "#8a8f98"
PALETTE = ("#3867a8", "#e07b39", "#3d9a59", "#c2413b", "#7f5fb0", "#8c5a45", "#d46fb0", "#6b7280",
           "#b5a533", "#2aa3b6")  # fmt: skip
MAX_POINTS = 4000  # scatter points drawn; beyond this a random subsample (the shape stays the same)
RASTERIZE_ABOVE = 800  # scatters with more points become one embedded image: far smaller than N circles
MAX_CURVE_POINTS = 600  # ROC/PR curves are thinned to this many vertices
_RC = {
    "svg.fonttype": "none",  # text stays <text>: small and selectable; the browser picks a sans-serif font
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,  # grid lines behind bars, not across them
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8,
}


@contextmanager
def figure(width: float = 5.0, height: float = 3.3) -> Iterator[tuple[Figure, Any]]:
    """A standalone Figure and its single Axes, under the report's style."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.add_subplot()


def to_svg(fig: Figure) -> str:
    """The figure as an inline <svg> element: no XML prolog, DOCTYPE or metadata, scaling to its box."""
    buf = io.StringIO()
    # ids inside an SVG (clip paths, markers) hash its content with this salt: the title makes them unique
    # among the report's inline SVGs and the same on every rebuild
    salt = "tw-" + "|".join(ax.get_title() for ax in fig.axes)
    with matplotlib.rc_context(_RC | {"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, dpi=110)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    # drop the fixed size (the viewBox keeps the aspect ratio) but never draw larger than natural: text stays ~12px
    match = re.search(r'<svg([^>]*?) width="([\d.]+)pt" height="[^"]*"', text)
    if match is None:
        return text
    label = html.escape(" / ".join(ax.get_title() for ax in fig.axes if ax.get_title()), quote=True)
    style = f'class="plot" role="img" aria-label="{label}" style="max-width:{float(match[2]) * 4 / 3:.0f}px"'
    return text[: match.start()] + f"<svg{match[1]} {style}" + text[match.end() :]


def _thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).astype(int))
    return x[keep], y[keep]


def _sample(rng_seed: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """The same random subsample of MAX_POINTS rows from each array (all of them when fewer)."""
    n = len(arrays[0])
    if n <= MAX_POINTS:
        return list(arrays)
    keep = np.sort(np.random.default_rng(rng_seed).choice(n, MAX_POINTS, replace=False))
    return [a[keep] for a in arrays]


# ---------------------------------------------------------------- learning curves


def loss_curves(epochs: np.ndarray, train: np.ndarray | None, val: np.ndarray | None, mark: int | None,
                mark_label: str, *, x_label: str = "epoch", y_label: str = "loss",
                title: str = "Loss") -> str:  # fmt: skip
    """Training and validation loss per epoch (or boosting round), with the best/turn epoch marked; log scale
    for wide ranges."""
    with figure() as (fig, ax):
        style = {"marker": "o", "markersize": 2.5} if len(epochs) <= 60 else {}
        shown = [(a, color, label) for a, color, label in ((train, TRAIN, "train"), (val, VAL, "validation"))
                 if a is not None]  # fmt: skip
        for values, color, label in shown:
            ax.plot(epochs, _finite(values), color=color, label=label, **style)
        bad = np.logical_or.reduce([~np.isfinite(a) for a, _, _ in shown]) if shown else np.zeros(len(epochs), bool)
        if bad.any():
            ax.axvline(epochs[np.argmax(bad)], color="#c2413b", linestyle=":", label=f"{y_label} became NaN/inf")
        if mark is not None:
            ax.axvline(mark, color=NEUTRAL, linestyle="--", linewidth=1, label=mark_label)
        finite = np.concatenate([a[np.isfinite(a)] for a, _, _ in shown] or [np.zeros(0)])
        if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 50:
            ax.set_yscale("log")
        ax.set(xlabel=x_label, ylabel=y_label, title=title)
        ax.legend()
        return to_svg(fig)


def metric_curves(epochs: np.ndarray, series: dict[str, np.ndarray], name: str) -> str:
    """A per-epoch metric (accuracy, rmse...) for train and validation."""
    with figure() as (fig, ax):
        for label, values in series.items():
            ax.plot(epochs, _finite(values), color=TRAIN if label == "train" else VAL, label=label)
        title = name.upper() if name in ("rmse", "mse", "mae") else name.replace("_", " ").capitalize()
        ax.set(xlabel="epoch", ylabel=name, title=title)
        ax.legend()
        return to_svg(fig)


def lr_curve(epochs: np.ndarray, lr: np.ndarray) -> str:
    """The learning-rate schedule actually applied."""
    with figure() as (fig, ax):
        ax.plot(epochs, lr, color=NEUTRAL)
        ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate")
        return to_svg(fig)


def size_curve(lc: dict[str, Any]) -> str:
    """Train and cross-validated scores against training-set size, with ±1 std bands."""
    with figure() as (fig, ax):
        sizes = np.asarray(lc["sizes"], float)
        for key, color, label in (("train", TRAIN, "train"), ("val", VAL, "cross-validation")):
            mean = np.asarray(lc[f"{key}_scores"], float)
            std = np.asarray(lc.get(f"{key}_std") or np.zeros_like(mean), float)
            ax.plot(sizes, mean, color=color, marker="o", markersize=3, label=label)
            ax.fill_between(sizes, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        ax.set(xlabel="training rows", ylabel=lc.get("metric", "score"), title="Learning curve over training size")
        ax.legend()
        return to_svg(fig)


def split_bars(values: dict[str, float], name: str) -> str:
    """One metric per split side by side: the train-validation gap at a glance for classical models."""
    with figure(4.2, 3.0) as (fig, ax):
        colors = {"train": TRAIN, "validation": VAL, "test": TEST}
        bars = ax.bar(list(values), list(values.values()), color=[colors.get(k, NEUTRAL) for k in values])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set(ylabel=name, title=f"{name} by split")
        ax.grid(axis="x", visible=False)
        return to_svg(fig)


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, np.nan)


# ---------------------------------------------------------------- classifiers


def confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> str:
    """Counts annotated, colour by row share (recall per true class), so small classes stay visible."""
    m = np.asarray(matrix, dtype=float)
    k = len(m)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = min(3.0 + 0.28 * k, 7.5)
    with figure(size + 0.6, size) as (fig, ax):
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.grid(False)
        if k <= 20:
            for i, j in itertools.product(range(k), range(k)):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=8 if k <= 10 else 6,
                        color="white" if share[i, j] > 0.55 else "#1f2937")  # fmt: skip
        step = max(1, k // 25)
        ticks = np.arange(0, k, step)
        short = [str(labels[i])[:14] for i in ticks]
        ax.set_xticks(ticks, short, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
        ax.set_yticks(ticks, short)
        ax.set(xlabel="predicted", ylabel="true", title=title)
        return to_svg(fig)


def roc_pr(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> tuple[str, str, list[str]]:
    """ROC and precision-recall curves: the positive class for binary, one-vs-rest per class otherwise.

    Returns (roc svg, pr svg, names of classes left out: beyond the 10 most frequent).
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    k = proba.shape[1]
    shown = [1] if k == 2 else sorted(range(k), key=lambda c: -(y == c).sum())[:10]
    left_out = [str(labels[c]) for c in range(k) if k > 2 and c not in shown]
    with figure() as (roc_fig, roc_ax), figure() as (pr_fig, pr_ax):
        for n, c in enumerate(shown):
            truth = y == c
            if truth.all() or not truth.any():
                continue
            color, name = PALETTE[n % len(PALETTE)], str(labels[c]) if k > 2 else f"positive: {labels[c]}"
            fpr, tpr, _ = roc_curve(truth, proba[:, c])
            roc_ax.plot(*_thin(fpr, tpr), color=color, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
            prec, rec, _ = precision_recall_curve(truth, proba[:, c])
            ap = average_precision_score(truth, proba[:, c])
            pr_ax.plot(*_thin(rec, prec), color=color, label=f"{name} (AP {ap:.3f})", drawstyle="steps-post")
        roc_ax.plot([0, 1], [0, 1], color=NEUTRAL, linestyle=":", linewidth=1, label="chance")
        roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve", aspect="equal")
        pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
        for ax in (roc_ax, pr_ax):
            ax.legend(loc="lower right" if ax is roc_ax else "lower left")
        return to_svg(roc_fig), to_svg(pr_fig), left_out


# ---------------------------------------------------------------- regressors


def predicted_vs_actual(y: np.ndarray, pred: np.ndarray) -> str:
    """Each point a row; the diagonal is a perfect prediction."""
    ys, ps = _sample(0, y, pred)
    with figure(4.4, 4.0) as (fig, ax):
        ax.scatter(ys, ps, s=9, alpha=0.55, color=TRAIN, linewidths=0, rasterized=len(ys) > RASTERIZE_ABOVE)
        lo, hi = float(min(ys.min(), ps.min())), float(max(ys.max(), ps.max()))
        ax.plot([lo, hi], [lo, hi], color=NEUTRAL, linestyle="--", linewidth=1, label="perfect")
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
        ax.legend(loc="upper left")
        return to_svg(fig)


def residuals(y: np.ndarray, pred: np.ndarray) -> tuple[str, str]:
    """Residuals against predictions (patterns mean missed structure) and their distribution."""
    res = y - pred
    ps, rs = _sample(0, pred, res)
    with figure(4.4, 4.0) as (fig, ax):
        ax.scatter(ps, rs, s=9, alpha=0.55, color=VAL, linewidths=0, rasterized=len(ps) > RASTERIZE_ABOVE)
        ax.axhline(0, color=NEUTRAL, linestyle="--", linewidth=1)
        ax.set(xlabel="predicted", ylabel="residual (actual − predicted)", title="Residuals")
        scatter = to_svg(fig)
    with figure(4.4, 4.0) as (fig, ax):
        ax.hist(res, bins=min(40, max(10, len(res) // 10)), color=VAL, alpha=0.85)
        ax.axvline(0, color=NEUTRAL, linestyle="--", linewidth=1)
        ax.set(xlabel="residual", ylabel="rows", title="Residual distribution")
        return scatter, to_svg(fig)


# ---------------------------------------------------------------- importances and tuning


def bars(names: Sequence[str], values: Sequence[float], errors: Sequence[float] | None, title: str,
         xlabel: str) -> str:  # fmt: skip
    """Horizontal bars, largest on top; height grows with the number of bars."""
    n = len(names)
    with figure(5.6, 1.0 + 0.24 * n) as (fig, ax):
        pos = np.arange(n)[::-1]
        ax.barh(pos, values, xerr=errors if errors is not None and any(errors) else None, color=TRAIN,
                error_kw={"elinewidth": 0.8, "ecolor": "#374151"})  # fmt: skip
        ax.set_yticks(pos, [str(s)[:40] for s in names])
        ax.set(xlabel=xlabel, title=title)
        ax.grid(axis="y", visible=False)
        return to_svg(fig)


def tuning_history(numbers: Sequence[int], values: Sequence[float | None], states: Sequence[str],
                   maximize: bool, metric: str) -> str:  # fmt: skip
    """Each trial's objective value, and the best value so far as a step line."""
    x = np.asarray(numbers, float)
    v = np.array([np.nan if val is None else float(val) for val in values])
    done = np.array([s == "COMPLETE" for s in states]) & np.isfinite(v)
    with figure(5.6, 3.3) as (fig, ax):
        ax.scatter(x[done], v[done], s=14, color=TRAIN, label="completed trial", zorder=3)
        other = ~done & np.isfinite(v)
        if other.any():
            ax.scatter(x[other], v[other], s=14, marker="x", color=NEUTRAL, label="pruned/failed (last value)")
        if done.any():
            order = np.argsort(x[done])
            xs, vs = x[done][order], v[done][order]
            best = np.maximum.accumulate(vs) if maximize else np.minimum.accumulate(vs)
            ax.step(xs, best, where="post", color=VAL, label="best so far")
        ax.set(xlabel="trial", ylabel=metric, title="Tuning history")
        ax.legend()
        return to_svg(fig)


# ---------------------------------------------------------------- explanations and fairness


def partial_dependence(curve: dict[str, Any]) -> str:
    """The average prediction as one feature sweeps its range (one line per output), in the feature's units.

    Numeric curves are lines over the feature's values; categorical ones a point per category.
    """
    categorical = curve.get("kind") == "categorical"
    levels = [str(g) for g in curve["grid"]]
    with figure(4.2 if not categorical else min(3.2 + 0.25 * len(levels), 6.5), 2.9) as (fig, ax):
        grid = np.arange(len(levels), dtype=float) if categorical else np.asarray(curve["grid"], float)
        style = {"marker": "o", "linestyle": "none"} if categorical else {}
        for i, (label, values) in enumerate(zip(curve["outputs"], curve["average"], strict=True)):
            ax.plot(grid, np.asarray(values, float), color=PALETTE[i % len(PALETTE)], label=str(label)[:40], **style)
        if categorical:
            ax.set_xticks(grid, [g[:16] for g in levels], rotation=45 if len(levels) > 4 else 0,
                          ha="right" if len(levels) > 4 else "center")  # fmt: skip
            ax.grid(axis="x", visible=False)
        name = str(curve["feature"])
        # older runs saved the grid in the model's (scaled) units, without saying so
        units = " (prepared units)" if curve.get("units", "prepared") == "prepared" else ""
        ax.set(xlabel=name[:50] + units, ylabel="average prediction", title=f"Partial dependence: {name[:40]}")
        if len(curve["outputs"]) > 1:
            ax.legend()
        return to_svg(fig)


def tradeoff(rows: Sequence[dict[str, Any]], disparity: str) -> str:
    """Accuracy against a disparity per mitigation: lower-right is fairer and as accurate."""
    with figure(4.6, 3.2) as (fig, ax):
        for i, row in enumerate(rows):
            x, y = row.get(disparity), row.get("accuracy")
            if x is None or y is None:
                continue
            ax.scatter([x], [y], color=PALETTE[i % len(PALETTE)], s=36, zorder=3)
            ax.annotate(str(row["method"]).replace("_", " "), (x, y), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)  # fmt: skip
        ax.set(xlabel=disparity.replace("_", " "), ylabel="accuracy", title="Fairness / accuracy trade-off")
        return to_svg(fig)


def group_bars(groups: Sequence[str], values: dict[str, Sequence[float | None]], title: str) -> str:
    """A few metrics per group, side by side (selection rate, recall/TPR, FPR...)."""
    n, k = len(groups), len(values)
    with figure(5.6, 1.2 + 0.3 * n * max(1, k) / 2) as (fig, ax):
        width = 0.8 / max(1, k)
        pos = np.arange(n)[::-1]
        for i, (name, vals) in enumerate(values.items()):
            clean = [np.nan if v is None else float(v) for v in vals]
            ax.barh(pos + (k / 2 - i - 0.5) * width, clean, height=width, color=PALETTE[i % len(PALETTE)],
                    label=name.replace("_", " "))  # fmt: skip
        ax.set_yticks(pos, [str(g)[:30] for g in groups])
        ax.set(title=title)
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
        return to_svg(fig)


# ---------------------------------------------------------------- unsupervised

NOISE = "noise"  # the group label of rows a density clusterer left out (-1): drawn grey, listed last
# the palette without its grey (kept for noise) and one more colour, so ten classes get ten colours
_GROUP_COLORS = (*(c for c in PALETTE if c != "#6b7280"), "#1f3a5f")
MAX_LEGEND = 12  # more groups than this: colours only, a legend would cover the plot


def group_key(label: str) -> tuple[bool, bool, float, str]:
    """Sort key for cluster ids and class labels: numbers in numeric order, other text after, noise last."""
    try:
        number = float(label)
    except ValueError:
        return label == NOISE, True, 0.0, label
    return False, False, number, label


def _group_color(name: str, names: Sequence[str]) -> str:
    """The same colour for a group in every plot: by its place among `names` (sorted by group_key)."""
    if name == NOISE:
        return NEUTRAL
    return _GROUP_COLORS[list(names).index(name) % len(_GROUP_COLORS)]


def cluster_sizes(labels: Sequence[str], counts: Sequence[int], title: str) -> str:
    """Rows per cluster; noise in grey, so its share is visible next to the real clusters."""
    n = len(labels)
    with figure(min(3.2 + 0.22 * n, 7.5), 3.0) as (fig, ax):
        bars = ax.bar(range(n), counts, color=[_group_color(label, labels) for label in labels])
        if n <= 20:
            ax.bar_label(bars, fmt="%d", fontsize=7)
        ticks = np.arange(0, n, max(1, n // 30))
        ax.set_xticks(ticks, [str(labels[i])[:12] for i in ticks], rotation=45 if n > 10 else 0,
                      ha="right" if n > 10 else "center")  # fmt: skip
        ax.set(xlabel="cluster", ylabel="rows", title=title)
        ax.grid(axis="x", visible=False)
        return to_svg(fig)


def projection(x: np.ndarray, y: np.ndarray, axes: tuple[str, str], *, groups: np.ndarray | None = None,
               values: np.ndarray | None = None, label: str = "",
               marked: np.ndarray | None = None) -> str:  # fmt: skip
    """Rows on two axes, coloured by group (categorical), by a value (colour bar) or in one colour.

    `label` names what the colours stand for (legend title or colour-bar label); `marked` (bool per row) rings
    rows, e.g. flagged anomalies. Subsampled and rasterized like the other scatters.
    """
    names = sorted(set(groups), key=group_key) if groups is not None else []  # before sampling: colours stay put
    (keep,) = _sample(0, np.arange(len(x)))
    x, y = x[keep], y[keep]
    style = {"s": 8, "linewidths": 0, "rasterized": len(x) > RASTERIZE_ABOVE}
    with figure(5.2, 3.8) as (fig, ax):
        if groups is not None:
            groups = groups[keep]
            for name in names:
                at = groups == name
                ax.scatter(x[at], y[at], color=_group_color(name, names), alpha=0.7, label=str(name)[:20], **style)
            if len(names) <= MAX_LEGEND:
                ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=1.8, title=label or None)
        elif values is not None:
            values = values[keep]
            order = np.argsort(values, kind="stable")  # the highest values drawn last, on top
            points = ax.scatter(x[order], y[order], c=values[order], cmap="viridis", alpha=0.8, **style)
            fig.colorbar(points, ax=ax, label=label, shrink=0.85)
        else:
            ax.scatter(x, y, color=TRAIN, alpha=0.6, **style)
        if marked is not None and marked[keep].any():
            at = marked[keep]
            ax.scatter(x[at], y[at], s=26, facecolors="none", edgecolors="#c2413b", linewidths=0.8, label="flagged",
                       rasterized=style["rasterized"])  # fmt: skip
            ax.legend(loc="upper left")
        ax.set(xlabel=axes[0], ylabel=axes[1], title="Projection")
        return to_svg(fig)


def sweep_curve(values: Sequence[int], scores: Sequence[float | None], chosen: int, criterion: str, param: str,
                threshold: float | None = None) -> str:  # fmt: skip
    """A criterion over candidate sizes with the chosen one marked; undefined scores leave gaps."""
    from matplotlib.ticker import MaxNLocator

    v = np.asarray(values, float)
    s = np.array([np.nan if score is None else float(score) for score in scores])
    with figure(4.6, 3.2) as (fig, ax):
        ax.plot(v, s, color=TRAIN, marker="o", markersize=3.5)
        ax.axvline(chosen, color=VAL, linestyle="--", linewidth=1, label=f"chosen: {chosen}")
        at = (v == chosen) & np.isfinite(s)
        ax.scatter(v[at], s[at], s=60, color=VAL, zorder=3)
        if threshold is not None:
            ax.axhline(threshold, color=NEUTRAL, linestyle=":", linewidth=1, label=f"{threshold:.0%} threshold")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel=param, ylabel=criterion.replace("_", " "), title=f"Choosing {param}")
        ax.legend()
        return to_svg(fig)


def explained_variance(ratios: Sequence[float], threshold: float) -> str:
    """Variance share per component (bars) and cumulated (line), against the share a reduction should keep."""
    from matplotlib.ticker import MaxNLocator

    r = np.asarray(ratios, float)
    k = np.arange(1, len(r) + 1)
    with figure(5.2, 3.2) as (fig, ax):
        ax.bar(k, r, color=TRAIN, label="per component")
        ax.plot(k, np.cumsum(r), color=VAL, marker="o" if len(r) <= 40 else None, markersize=3, label="cumulative")
        ax.axhline(threshold, color=NEUTRAL, linestyle="--", linewidth=1, label=f"{threshold:.0%}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="component", ylabel="share of variance", ylim=(0, 1.05), title="Explained variance")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="center right")
        return to_svg(fig)


def dendrogram(linkage: np.ndarray, method: str, p: int = 30) -> str:
    """The last `p` merges of a hierarchical clustering; leaf labels count the rows merged below them."""
    from cycler import cycler
    from scipy.cluster.hierarchy import dendrogram as draw

    # scipy colours links "C1", "C2"...: resolved against this cycle when drawn, so the report's palette applies
    with figure(5.6, 3.4) as (fig, ax), matplotlib.rc_context({"axes.prop_cycle": cycler(color=_GROUP_COLORS)}):
        draw(linkage, truncate_mode="lastp", p=p, ax=ax, leaf_rotation=90, leaf_font_size=7,
             above_threshold_color=NEUTRAL)  # fmt: skip
        ax.set(ylabel=f"{method} distance", title="Dendrogram")
        ax.grid(axis="x", visible=False)
        return to_svg(fig)


def score_histogram(scores: np.ndarray, anomaly: np.ndarray | None, cut: float | None, split: str) -> str:
    """Anomaly scores, normal and labelled anomalies apart when labels exist, with the flag cut."""
    edges = np.histogram_bin_edges(scores, bins=min(50, max(10, len(scores) // 10)))
    # a few anomalies among many normal rows: a log scale keeps their bars visible
    log = anomaly is not None and anomaly.any() and (~anomaly).sum() > 20 * anomaly.sum()
    with figure(5.0, 3.2) as (fig, ax):
        if anomaly is None:
            ax.hist(scores, bins=edges, color=TRAIN, alpha=0.85)
        else:
            ax.hist(scores[~anomaly], bins=edges, color=TRAIN, alpha=0.65, label="normal", log=log)
            ax.hist(scores[anomaly], bins=edges, color="#c2413b", alpha=0.75, label="anomaly", log=log)
        if cut is not None:
            ax.axvline(cut, color="#1f2937", linestyle="--", linewidth=1, label="flag cut")
        ax.set(xlabel="anomaly score (higher: more anomalous)", ylabel="rows (log scale)" if log else "rows",
               title=f"Anomaly scores ({split})")  # fmt: skip
        if anomaly is not None or cut is not None:
            ax.legend()
        return to_svg(fig)
