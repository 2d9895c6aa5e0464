"""The report's sections, in page order: what a reader checks first (scores, diagnosis, curves) comes first,
the reference material (data, splits, config) last. Each returns None when the run has nothing for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trainwell.evaluate.metrics import GREATER_IS_BETTER, TASK_METRICS, primary_metric
from trainwell.report import plots
from trainwell.report.html import Raw, RunData, esc, figures, fmt, note, section, table

SPLITS = ("train", "validation", "test")
TOP_FEATURES = 20  # bars drawn; the full list sits in a table below
MAX_TRIAL_ROWS = 200
# how evaluate/explain names its importance methods, in words
METHODS = {"permutation": "permutation importance on validation", "tree_shap": "mean |SHAP| value (TreeSHAP)",
           "linear": "coefficient size", "integrated_gradients": "mean |integrated gradient|"}  # fmt: skip


@section("metrics", "Metrics", order=10)
def metrics_section(data: RunData) -> str | None:
    """Every scalar metric by split, the headline metric first and in bold."""
    splits = [s for s in SPLITS if data.metrics.get(s)]
    if not splits:
        return None
    known = TASK_METRICS.get(data.task, ())
    found = {k for s in splits for k, v in data.metrics[s].items() if isinstance(v, (int, float))}
    primary = primary_metric(data.task)
    names = sorted(found, key=lambda k: (k != primary, known.index(k) if k in known else len(known), k))
    rows = []
    for name in names:
        arrow = " ↑" if name in GREATER_IS_BETTER else " ↓" if name in known else ""
        label = f"<b>{esc(name)}</b>" if name == primary else esc(name)
        rows.append([Raw(label + arrow), *(data.metrics[s].get(name) for s in splits)])
    return table(["metric", *splits], rows, cls="metrics") + note(
        "↑ higher is better, ↓ lower is better. The test split is scored once, after the model was chosen "
        "on validation."
    )


@section("diagnosis", "Diagnosis", order=20)
def diagnosis_section(data: RunData) -> str | None:
    """The fit verdict, the sentence that explains it, what to do, and the numbers behind it."""
    d = data.metrics.get("diagnosis")
    if not d:
        return None
    verdict = str(d.get("verdict", "unknown"))
    head = (f'<p><span class="verdict v-{esc(verdict)}">{esc(verdict.replace("_", " "))}</span> '
            f"{esc(d.get('summary', ''))}</p>")  # fmt: skip
    advice = "".join(f"<li>{esc(a)}</li>" for a in d.get("advice", []))
    evidence = [[k.replace("_", " "), v] for k, v in (d.get("evidence") or {}).items()]
    half = (len(evidence) + 1) // 2
    tables = "".join(table(["evidence", "value"], part) for part in (evidence[:half], evidence[half:]) if part)
    return f'{head}<h3>What to do</h3><ol class="advice">{advice}</ol><div class="cols">{tables}</div>'


@section("learning-curves", "Learning curves", order=30)
def learning_curves_section(data: RunData) -> str | None:
    """Per-epoch curves for neural runs, per-round ones for boosting; the learning curve over sizes, or the
    split scores when there is nothing else, for classical models."""
    parts = []
    h = data.history
    if h is not None and len(h) and "train_loss" in h:
        parts.append(_epoch_curves(data, h))
    rounds = data.metrics.get("boosting_curve")
    if rounds and rounds.get("validation"):
        parts.append(_boosting_curve(rounds))
    lc = data.metrics.get("learning_curve")
    if lc and lc.get("sizes"):
        parts.append(figures(plots.size_curve(lc), caption="Scores when training on growing subsets (cross-"
                             "validated): a validation curve still rising means more data would help."))  # fmt: skip
    if not parts:
        primary = primary_metric(data.task)
        scores = {s: data.metrics[s][primary] for s in SPLITS
                  if isinstance(data.metrics.get(s, {}).get(primary), (int, float))}  # fmt: skip
        if len(scores) < 2:
            return None
        parts.append(figures(plots.split_bars(scores, primary), caption="No per-epoch history for this model: "
                             "the gap between train and validation shows how well it generalizes."))  # fmt: skip
    return "".join(parts)


def _boosting_curve(rounds: dict[str, Any]) -> str:
    """The metric a boosting model watched after each round (metrics.json `boosting_curve`), its kept round marked."""
    metric, best = str(rounds.get("metric", "loss")), rounds.get("best_round")

    def series(key: str) -> np.ndarray | None:
        values = rounds.get(key)
        return None if values is None else np.array([np.nan if v is None else v for v in values], float)

    kept = f"best round ({best}), kept" if rounds.get("stopped_early") else f"last round ({best})"
    svg = plots.loss_curves(np.asarray(rounds["rounds"], float), series("train"), series("validation"), best, kept,
                            x_label="boosting round", y_label=metric, title=f"{metric} per boosting round")  # fmt: skip
    watched = "the training and validation rows" if rounds.get("train") else "the validation rows"
    ending = (f"early stopping kept the first {best} rounds." if rounds.get("stopped_early")
              else f"the model keeps all {best} rounds.")  # fmt: skip
    return figures(svg, caption=f"{metric} after each boosting round on {watched}; {ending}")


def _epoch_curves(data: RunData, h: pd.DataFrame) -> str:
    epochs = h["epoch"].to_numpy(float) if "epoch" in h else np.arange(1, len(h) + 1, dtype=float)
    train = h["train_loss"].to_numpy(float)
    val = h["val_loss"].to_numpy(float) if "val_loss" in h else None
    turn = (data.metrics.get("diagnosis") or {}).get("turn_epoch")
    if turn is not None:
        mark, label = int(turn), f"validation turned (epoch {int(turn)})"
    elif val is not None and np.isfinite(val).any():
        best = int(epochs[np.nanargmin(np.where(np.isfinite(val), val, np.nan))])
        mark, label = best, f"best validation (epoch {best})"
    else:
        mark, label = None, ""
    svgs = [plots.loss_curves(epochs, train, val, mark, label)]
    names = [c[len("train_") :] for c in h.columns if c.startswith("train_") and c != "train_loss"]
    for name in names:
        series = {"train": h[f"train_{name}"].to_numpy(float)}
        if f"val_{name}" in h:
            series["validation"] = h[f"val_{name}"].to_numpy(float)
        svgs.append(plots.metric_curves(epochs, series, name))
    if "lr" in h and h["lr"].nunique() > 1:
        svgs.append(plots.lr_curve(epochs, h["lr"].to_numpy(float)))
    return figures(*svgs, caption=f"{len(h)} epochs.")


@section("confusion-matrix", "Confusion matrix", order=40)
def confusion_section(data: RunData) -> str | None:
    if data.task != "classification":
        return None
    labels = data.classes
    svgs = []
    for split in ("test", "validation"):
        matrix = data.metrics.get(split, {}).get("confusion_matrix")
        if matrix:
            labels = labels if len(labels) == len(matrix) else [str(i) for i in range(len(matrix))]
            svgs.append(plots.confusion(matrix, labels, f"{split} ({int(np.sum(matrix)):,} rows)"))
    if not svgs:
        return None
    return figures(*svgs, caption="Rows are the true classes, columns the predicted ones; the colour is the "
                   "share of each true class (its recall on the diagonal).")  # fmt: skip


@section("roc", "ROC and precision-recall curves", order=50)
def roc_section(data: RunData) -> str | None:
    found = data.held_out("classification")
    columns = [f"proba_{c}" for c in data.classes]
    if found is None or not data.classes or not set(columns) <= set(found[1].columns):
        return None
    split, rows = found
    index = {c: i for i, c in enumerate(data.classes)}
    y = rows["y_true"].astype(str).map(index).to_numpy()
    keep = ~pd.isna(y)
    proba = rows[columns].to_numpy(float)[keep]
    roc, pr, left_out = plots.roc_pr(y[keep].astype(int), proba, data.classes)
    caption = f"On the {split} split ({int(keep.sum()):,} rows)"
    caption += ", one class against the rest." if len(columns) > 2 else "."
    if left_out:
        caption += f" Only the 10 most frequent classes are drawn; {len(left_out)} left out."
    return figures(roc, pr, caption=caption)


@section("residuals", "Residuals and predicted vs actual", order=60)
def residuals_section(data: RunData) -> str | None:
    found = data.held_out("regression")
    if found is None:
        return None
    split, rows = found
    y, pred = rows["y_true"].to_numpy(float), rows["y_pred"].to_numpy(float)
    ok = np.isfinite(y) & np.isfinite(pred)
    scatter, hist = plots.residuals(y[ok], pred[ok])
    return figures(plots.predicted_vs_actual(y[ok], pred[ok]), scatter, hist,
                   caption=f"On the {split} split ({int(ok.sum()):,} rows).")  # fmt: skip


@section("feature-importance", "Feature importance", order=70)
def importance_section(data: RunData) -> str | None:
    raw = data.metrics.get("feature_importance") or []
    method = raw.get("method", "") if isinstance(raw, dict) else "permutation"  # {"method", "features"} or rows
    items = [i for i in (raw.get("features", []) if isinstance(raw, dict) else raw) if i.get("importance") is not None]
    if not items:
        return None
    items = sorted(items, key=lambda i: -float(i["importance"]))
    top = items[:TOP_FEATURES]
    svg = plots.bars([i["feature"] for i in top], [float(i["importance"]) for i in top],
                     [float(i.get("std") or 0) for i in top], "Feature importance", "importance")  # fmt: skip
    rows = [[i["feature"], i["importance"], i.get("std")] for i in items]
    shown = f"Top {len(top)} of {len(items)} features" if len(items) > len(top) else f"{len(items)} features"
    shown += f", by {METHODS.get(method, method.replace('_', ' '))}." if method else "."
    details = f"<details><summary>All {len(items)} features</summary>{table(['feature', 'importance', 'std'], rows)}"
    errors = " Error bars: one standard deviation." if any(i.get("std") for i in top) else ""
    return figures(svg, caption=shown + errors) + details + "</details>"


@section("tuning", "Tuning", order=80)
def tuning_section(data: RunData) -> str | None:
    """Trial history, parameter importances, the best parameters and every trial."""
    t = data.metrics.get("tuning")
    if not t:
        return None
    trials = t.get("trials") or []
    metric = str(t.get("metric", "objective"))
    states = [str(tr.get("state", "COMPLETE")).upper() for tr in trials]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in dict.fromkeys(states))
    line = (f"{len(trials)} trials ({counts}) {esc(str(t.get('direction', '')))} {esc(metric)}; "
            f"best {fmt(t.get('best_value'))}.")  # fmt: skip
    svgs = []
    if trials:
        svgs.append(plots.tuning_history([tr.get("number", i) for i, tr in enumerate(trials)],
                                         [tr.get("value") for tr in trials], states,
                                         t.get("direction") == "maximize", metric))  # fmt: skip
    imp = t.get("param_importances") or {}
    if imp:
        names = sorted(imp, key=lambda k: -float(imp[k]))
        svgs.append(plots.bars(names, [float(imp[n]) for n in names], None, "Parameter importances", "importance"))
    best = table(["parameter", "best value"], [[k, v] for k, v in (t.get("best_params") or {}).items()])
    params = sorted({k for tr in trials for k in (tr.get("params") or {})})
    rows = [[tr.get("number"), tr.get("state"), tr.get("value"), tr.get("duration_s"),
             *((tr.get("params") or {}).get(p) for p in params)] for tr in trials[:MAX_TRIAL_ROWS]]  # fmt: skip
    all_trials = table(["trial", "state", metric, "seconds", *params], rows)
    return (f'<p>{line}</p>{figures(*svgs)}<h3>Best parameters</h3>{best}'
            f"<details><summary>All trials</summary>{all_trials}</details>")  # fmt: skip


@section("leaderboard", "Leaderboard", order=90)
def leaderboard_section(data: RunData) -> str | None:
    board = data.metrics.get("leaderboard") or []
    if not board:
        return None
    columns = list(dict.fromkeys(k for row in board for k, v in row.items() if not isinstance(v, (list, dict))))
    rows = [[Raw(f"<b>{fmt(row.get(c))}</b>") if i == 0 and j == 0 else row.get(c) for j, c in enumerate(columns)]
            for i, row in enumerate(board)]  # fmt: skip
    return table(columns, rows) + note("Ranked on validation; the first model is the one kept.")


@section("data", "Data and schema", order=100)
def data_section(data: RunData) -> str | None:
    r = data.run
    if "data" not in r:  # an agent learns from an environment (its own section), not a table
        return None
    d: dict[str, Any] = r.get("data") or {}
    facts = [["source", d.get("source")], ["fingerprint", _short(d.get("fingerprint"))], ["rows", d.get("rows")],
             ["columns", d.get("columns")], ["duplicate rows removed", d.get("duplicates_removed")],
             ["rows without a target removed", d.get("missing_target_removed")], ["target", r.get("target")],
             ["task", r.get("task")]]  # fmt: skip
    if data.classes:
        shown = ", ".join(data.classes[:30]) + (" …" if len(data.classes) > 30 else "")
        facts.append([f"classes ({len(data.classes)})", shown])
    facts = [f for f in facts if f[1] is not None]
    schema = [[r.get("target"), "target"]] if r.get("target") else []
    schema += [[column, kind] for column, kind in (r.get("schema") or {}).items() if column != r.get("target")]
    out = f'<div class="cols">{table(None, facts)}{table(["column", "type"], schema) if schema else ""}</div>'
    features = r.get("features") or []
    if features:
        listed = ", ".join(esc(f) for f in features)
        out += f"<details><summary>{len(features)} prepared features</summary><p>{listed}</p></details>"
    return out if facts or schema else None


def _short(fingerprint: Any) -> Raw | None:
    """A long hash shown by its first 16 characters; the whole one on hover."""
    if fingerprint is None:
        return None
    full = str(fingerprint)
    shown = full if len(full) <= 16 else full[:16] + "…"
    return Raw(f'<code title="{esc(full)}">{esc(shown)}</code>')


@section("splits", "Splits", order=110)
def splits_section(data: RunData) -> str | None:
    splits = data.run.get("splits") or {}
    if not splits:
        return None
    total = sum(int(s.get("rows") or 0) for s in splits.values()) or 1
    rows = []
    for name, s in splits.items():
        share = int(s.get("rows") or 0) / total
        bar = Raw(f'<span class="share" style="width:{share * 160:.0f}px"></span> {share:.0%}')
        rows.append([name, s.get("rows"), bar, _short(s.get("fingerprint"))])
    return table(["split", "rows", "share", "fingerprint"], rows) + note(
        "Fingerprints identify which rows each split holds: equal fingerprints, identical splits."
    )


@section("config", "Config", order=120)
def config_section(data: RunData) -> str | None:
    if not data.config_text.strip():
        return None
    return f"<pre>{esc(data.config_text)}</pre>" + note("The fully resolved config: rerun it with trainwell train.")
