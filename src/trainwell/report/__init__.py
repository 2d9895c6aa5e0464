"""The HTML report: `write_report(run_dir)` writes run_dir/report.html, self-contained and small."""

from trainwell.report.html import RunData, Section, list_sections, load_run_data, render_report, section, write_report

__all__ = ["RunData", "Section", "list_sections", "load_run_data", "render_report", "section", "write_report"]
