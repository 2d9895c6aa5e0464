"""Report sections about trust: the run's guarantees, the data audit, cross-validation, partial dependence
and fairness. Registered like the others; `html.SECTION_MODULES` lists this module.
"""

from __future__ import annotations

from typing import Any

from trainwell.report import plots
from trainwell.report.html import Raw, RunData, esc, figures, note, section, table

DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
               "equalized_odds_ratio")  # fmt: skip


@section("guarantees", "Guarantees", order=15)
def guarantees_section(data: RunData) -> str | None:
    """Each promise about the evaluation, checked on this run."""
    g = data.run.get("guarantees")
    if not g:
        return None
    marks = {True: Raw('<span class="verdict v-good_fit">passed</span>'),
             False: Raw('<span class="verdict bad">failed</span>'), None: "not checked"}  # fmt: skip
    rows = [[i["name"].replace("_", " "), marks[i["ok"]], i["detail"]] for i in g["items"]]
    return table(["guarantee", "status", "evidence"], rows)


@section("cross-validation", "Cross-validation", order=35)
def cv_section(data: RunData) -> str | None:
    cv = data.metrics.get("cross_validation")
    if not cv:
        return None
    mean, std = cv.get("mean", {}), cv.get("std", {})
    rows = [[name, mean[name], std.get(name)] for name in mean]
    return table(["metric", "mean", "std"], rows) + note(
        f"{cv.get('n_folds', '')} {esc(cv.get('strategy', ''))} folds over train+validation; the preparation is "
        "refitted inside each fold."
    )


@section("partial-dependence", "Partial dependence", order=75)
def pd_section(data: RunData) -> str | None:
    curves = data.metrics.get("partial_dependence") or []
    if not curves:
        return None
    return figures(*(plots.partial_dependence(c) for c in curves),
                   caption="The model's average prediction as each of its most important features sweeps its range "
                   "(in the column's own units; a categorical column over its categories), the other features "
                   "kept as they are in the validation rows.")  # fmt: skip


@section("fairness", "Fairness", order=85)
def fairness_section(data: RunData) -> str | None:
    """Per-group metrics on the held-out split, the disparities and the mitigation trade-off."""
    f = data.metrics.get("fairness")
    if not f:
        return None
    split = "test" if f.get("test") else "validation"
    m = f.get(split) or {}
    parts = [f"<p>Groups of {esc(', '.join(f['sensitive']))} "
             f"({'used as features' if f.get('in_features') else 'kept out of the features'}); "
             f"mitigation: <b>{esc(f.get('mitigation', 'none'))}</b>. Metrics on the {split} split.</p>"]  # fmt: skip
    rows = m.get("by_group") or []
    if rows:
        metrics = [k for k in rows[0] if k != "group"]
        label = [", ".join(str(v) for v in r["group"].values()) for r in rows]
        body = [[g, *(r.get(k) for k in metrics)] for g, r in zip(label, rows, strict=True)]
        parts.append(table(["group", *(k.replace("_", " ") for k in metrics)], body))
        keys = [k for k in ("selection_rate", "recall", "fpr", "accuracy", "mae") if k in metrics]
        shown = {k: [r.get(k) for r in rows] for k in keys}
        if shown:
            parts.append(figures(plots.group_bars(label, shown, f"By group ({split})")))
    summary = [[k.replace("_", " "), m[k]] for k in (*DISPARITIES, "mae_difference", "mean_prediction_difference")
               if k in m]  # fmt: skip
    if summary:
        parts.append(table(["disparity", "value"], summary) + note(
            "Differences: largest minus smallest group value (0 is parity); ratios: smallest over largest (1 is "
            "parity). Equalized odds takes the worse of the TPR and FPR gaps; multiclass: the worst class."))
    trade = f.get("tradeoff") or []
    if trade:
        cols = ["method", "accuracy", "balanced_accuracy", *DISPARITIES]
        parts.append("<h3>Mitigation trade-off</h3>" + figures(
            plots.tradeoff(trade, "demographic_parity_difference"), plots.tradeoff(trade, "equalized_odds_difference")))
        parts.append(table([c.replace("_", " ") for c in cols], [[r.get(c) for c in cols] for r in trade]) + note(
            f"Every mitigation trained on the same training rows and scored on the {f.get('tradeoff_split', '')} "
            "split; 'none' is the unmitigated model."))
    elif f.get("tradeoff_skipped"):
        parts.append(note(f"No mitigation trade-off: {f['tradeoff_skipped']}."))
    return "".join(parts)


@section("audit", "Data audit", order=95)
def audit_section(data: RunData) -> str | None:
    a = data.metrics.get("audit")
    if not a:
        return None
    counts = a.get("counts", {})
    head = (f"<p>{counts.get('error', 0)} error(s), {counts.get('warning', 0)} warning(s), "
            f"{counts.get('info', 0)} note(s) before training.</p>")  # fmt: skip
    findings: list[dict[str, Any]] = a.get("findings", [])
    if not findings:
        return head + note("No problem found.")
    cls = {"error": "bad", "warning": "v-overfitting", "info": ""}
    rows = [[Raw(f'<span class="verdict {cls[f["severity"]]}">{esc(f["severity"])}</span>'), f["check"],
             f.get("column") or "", f["message"], f.get("fix", "")] for f in findings]  # fmt: skip
    return head + table(["severity", "check", "column", "finding", "fix"], rows)

