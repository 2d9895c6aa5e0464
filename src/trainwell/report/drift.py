"""The drift report: one self-contained HTML page beside the run's training report (`trainwell monitor`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainwell.files import write_text
from trainwell.report import plots
from trainwell.report.html import Raw, esc, figures, note, standalone_page, table

BADGE = {"ok": "v-good_fit", "warning": "v-plateaued", "drift": "v-unstable", "alert": "v-unstable",
         "missing": "v-unstable", "not_checked": ""}  # fmt: skip


def write_drift_report(report: dict[str, Any], path: Path, *, run_name: str) -> Path:
    """Write the page for a `Run.drift` report to `path` (atomically)."""
    status = str(report["status"])
    summary = (f'<p><span class="verdict {BADGE.get(status, "")}">{esc(status)}</span> {esc(report["summary"])}</p>'
               + note(f"{report['rows']:,} new rows from {report.get('source', 'the data')} against "
                      f"{report['reference_rows']:,} training rows. PSI above {report['thresholds']['psi_warning']} "
                      f"is a moderate shift, above {report['thresholds']['psi_alert']} a major one; a column "
                      f"drifts when its PSI is major, or moderate with a test p-value below "
                      f"{report['thresholds']['p_value']}."))  # fmt: skip
    features = [f for f in report["features"] if f.get("psi") is not None]
    svg = plots.bars([f["column"] for f in features[:25]], [min(f["psi"], 2.0) for f in features[:25]], None,
                     "Population stability index by column", "PSI (capped at 2)") if features else None  # fmt: skip
    rows = [[f["column"], Raw(f'<span class="verdict {BADGE.get(f["status"], "")}">{esc(f["status"])}</span>'),
             f.get("psi"), f.get("p_value"), f.get("test", ""), f.get("missing_reference"), f.get("missing_now"),
             ", ".join(map(str, f.get("new_categories") or []))] for f in report["features"]]  # fmt: skip
    columns = (figures(svg) if svg else "") + table(
        ["column", "status", "PSI", "p-value", "test", "missing (train)", "missing (now)", "new categories"], rows)
    p = report["predictions"]
    sections = [("summary", "Summary", summary), ("columns", "Columns", columns),
                ("predictions", "Predictions", table(["status", "PSI"], [[p["status"], p.get("psi")]]))]  # fmt: skip
    if "performance" in report:
        perf = [[name, v["test"], v["now"]] for name, v in report["performance"].items()]
        sections.append(("performance", "Performance on the new labelled rows", table(["metric", "test", "now"], perf)))
    write_text(path, standalone_page(f"{run_name} · drift", f"Drift: {run_name}", report.get("source", ""), sections))
    return path
