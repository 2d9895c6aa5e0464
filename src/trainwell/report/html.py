"""The HTML report of a run: one self-contained file (inline CSS and SVG, no script, no network).

The page is a list of sections. A section is one function, registered with `@section(id, title,
order=...)`, that takes the run's `RunData` and returns an HTML fragment, or None when the run has
nothing for it (no history, not a classifier, not tuned...). Modules holding sections are listed in
SECTION_MODULES; a later feature (fairness, audit) adds its section with one decorated function.
"""

from __future__ import annotations

import html
import importlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from trainwell.config import UNSUPERVISED_TASKS
from trainwell.errors import UserError
from trainwell.files import write_text

# Modules whose @section functions make up the report; imported on first use, like the model registry.
SECTION_MODULES: list[str] = [
    "trainwell.report.sections", "trainwell.report.trust", "trainwell.report.unsupervised", "trainwell.report.rl",
]  # fmt: skip


@dataclass
class RunData:
    """What a run directory holds, read once; optional parts are None or empty when absent."""

    dir: Path
    run: dict[str, Any]
    metrics: dict[str, Any]
    config_text: str
    history: pd.DataFrame | None
    predictions: pd.DataFrame | None

    @property
    def task(self) -> str:
        return str(self.run.get("task", ""))

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.run.get("classes") or []]

    def held_out(self, task: str) -> tuple[str, pd.DataFrame] | None:
        """("test", its prediction rows), else the validation ones; None for another task or no predictions."""
        if self.task != task or self.predictions is None or "split" not in self.predictions:
            return None
        for split in ("test", "validation"):
            rows = self.predictions[self.predictions["split"] == split]
            if len(rows):
                return split, rows
        return None


def load_run_data(run_dir: str | Path) -> RunData:
    """Read run.json (required), metrics.json, config.yaml, history.csv and predictions.csv (optional)."""
    run_dir = Path(run_dir)
    info = run_dir / "run.json"
    if not info.is_file():
        raise UserError(f"{run_dir} is not a trainwell run (no run.json); pass the folder `trainwell train` printed")

    def read_json(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); rerun the training") from None

    def read_csv(path: Path) -> pd.DataFrame | None:
        return pd.read_csv(path) if path.is_file() and path.stat().st_size else None

    config = run_dir / "config.yaml"
    return RunData(
        dir=run_dir, run=read_json(info), metrics=read_json(run_dir / "metrics.json"),
        config_text=config.read_text() if config.is_file() else "",
        history=read_csv(run_dir / "history.csv"), predictions=read_csv(run_dir / "predictions.csv"),
    )  # fmt: skip


# ---------------------------------------------------------------- the section registry


@dataclass(frozen=True)
class Section:
    """One block of the report: `render(data)` returns HTML (escaped by the section) or None to skip."""

    id: str
    title: str
    order: int
    render: Callable[[RunData], str | None]


_SECTIONS: dict[str, Section] = {}


def section(id: str, title: str, *, order: int) -> Callable[[Callable[[RunData], str | None]], Callable]:
    """Decorator: add a section with a stable `id` (its anchor) at position `order` (smaller is higher)."""

    def decorator(render: Callable[[RunData], str | None]) -> Callable[[RunData], str | None]:
        if id in _SECTIONS and _SECTIONS[id].render.__qualname__ != render.__qualname__:
            raise ValueError(f"report section {id!r} is registered twice")
        _SECTIONS[id] = Section(id, title, order, render)
        return render

    return decorator


def list_sections() -> list[Section]:
    """Every registered section in page order."""
    for module in SECTION_MODULES:
        importlib.import_module(module)
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.id))


# ---------------------------------------------------------------- the page


def write_report(run_dir: str | Path) -> Path:
    """Build `run_dir/report.html` from what the run directory holds; returns its path."""
    data = load_run_data(run_dir)
    path = data.dir / "report.html"
    write_text(path, render_report(data))
    return path


def render_report(data: RunData) -> str:
    """The whole page as one string."""
    blocks = []
    for sec in list_sections():
        try:
            body = sec.render(data)
        except Exception as exc:  # one broken optional part must not cost the whole report: show it in place
            warnings.warn(f"report section {sec.id!r} failed: {exc!r}", stacklevel=2)
            body = f'<p class="section-error">This section could not be drawn: {esc(repr(exc))}</p>'
        if body is not None:
            blocks.append((sec, body))
    nav = "".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s, _ in blocks)
    main = "\n".join(f'<section id="{s.id}">\n<h2>{esc(s.title)}</h2>\n{body}\n</section>' for s, body in blocks)
    name = str(data.run.get("name") or data.dir.name)
    return _PAGE.format(
        title=esc(f"{name} · trainwell report"), css=_CSS, header=_header(data, name), nav=nav, main=main,
        footer=_footer(data),
    )  # fmt: skip


def _header(data: RunData, name: str) -> str:
    """Name, what was trained on what, and the headline numbers."""
    r = data.run
    column = "labels" if data.task in UNSUPERVISED_TASKS else "target"  # an unsupervised label only scores
    facts = [r.get("task"), f"model {r.get('model')}" if r.get("model") else None,
             f"{column} {r.get('target')}" if r.get("target") else None, r.get("started"),
             f"{fmt(r.get('duration_s'))} s" if r.get("duration_s") is not None else None]  # fmt: skip
    status = str(r.get("status", "unknown"))
    # "saving": save_run builds the report as its last step, just before sealing the run as complete
    badge = "" if status in ("complete", "saving") else f' <span class="badge bad">{esc(status)}</span>'
    from trainwell.evaluate.metrics import primary_metric

    primary = primary_metric(data.task)
    kpis = [(f"{split} {primary}", data.metrics.get(split, {}).get(primary)) for split in ("test", "validation")]
    if "evaluation" in data.metrics:  # an agent: its final mean return
        kpis = [("mean return", data.metrics["evaluation"].get("mean_return"))]
    cards = "".join(f'<div class="kpi"><span>{esc(k)}</span><b>{fmt(v)}</b></div>' for k, v in kpis if v is not None)
    verdict = (data.metrics.get("diagnosis") or {}).get("verdict")
    if verdict:
        cards += (f'<div class="kpi"><span>diagnosis</span><b><a href="#diagnosis" class="verdict v-{esc(verdict)}">'
                  f"{esc(verdict.replace('_', ' '))}</a></b></div>")  # fmt: skip
    meta = " · ".join(esc(str(f)) for f in facts if f)
    return f'<h1>{esc(name)}{badge}</h1>\n<p class="meta">{meta}</p>\n<div class="kpis">{cards}</div>'


def standalone_page(title: str, heading: str, meta: str, sections: list[tuple[str, str, str]]) -> str:
    """A page in the report's style from (id, title, html) sections: the drift report uses it."""
    nav = "".join(f'<a href="#{i}">{esc(t)}</a>' for i, t, _ in sections)
    main = "\n".join(f'<section id="{i}">\n<h2>{esc(t)}</h2>\n{body}\n</section>' for i, t, body in sections)
    header = f'<h1>{esc(heading)}</h1>\n<p class="meta">{esc(meta)}</p>'
    return _PAGE.format(title=esc(title), css=_CSS, header=header, nav=nav, main=main,
                        footer=f"built {time.strftime('%Y-%m-%d %H:%M')} by trainwell")  # fmt: skip


def _footer(data: RunData) -> str:
    versions = ", ".join(f"{esc(k)} {esc(str(v))}" for k, v in (data.run.get("versions") or {}).items())
    made = time.strftime("%Y-%m-%d %H:%M")
    return f"Run {esc(data.dir.name)} · report built {made}" + (f" · {versions}" if versions else "")


# ---------------------------------------------------------------- helpers for sections


def esc(value: Any) -> str:
    """HTML-escape any value."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers for people: 4 significant digits, thousands separated, '—' for missing/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return esc(value)


def table(headers: Sequence[str] | None, rows: Iterable[Sequence[Any]], *, cls: str = "") -> str:
    """A table; numbers formatted and right-aligned (their header too), text escaped, Raw cells kept as HTML.

    `headers=None` makes a key-value table without a header row.
    """
    rows = [list(r) for r in rows]
    head = ""
    if headers is not None:
        numeric = [any(_is_num(r[i]) for r in rows if i < len(r)) for i in range(len(headers))]
        cells = "".join(f'<th{" class=num" if n else ""}>{esc(h)}</th>' for h, n in zip(headers, numeric, strict=True))
        head = f"<thead><tr>{cells}</tr></thead>"
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">{head}<tbody>{body}</tbody></table>'


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell(v: Any) -> str:
    if isinstance(v, Raw):
        return f"<td>{v.html}</td>"
    return f'<td class="num">{fmt(v)}</td>' if _is_num(v) else f"<td>{fmt(v)}</td>"


@dataclass(frozen=True)
class Raw:
    """A table cell holding ready HTML."""

    html: str


def figures(*svgs: str | None, caption: str | None = None) -> str:
    """Inline SVGs side by side (two per row on a laptop screen), with an optional caption under them."""
    figs = "".join(f"<figure>{s}</figure>" for s in svgs if s)
    note = f'<p class="note">{esc(caption)}</p>' if caption else ""
    return f'<div class="plots">{figs}</div>{note}'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff;--accent:#2f5f9e}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--fg);background:var(--bg)}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
header{background:var(--card);padding:20px 0 6px;border-bottom:1px solid var(--line)}
h1{font-size:24px;margin:0 0 2px}
h2{font-size:18px;margin:0 0 12px}
h3{font-size:15px;margin:14px 0 6px}
.meta,.note{color:var(--muted);font-size:13.5px;margin:4px 0}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.kpi{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:6px 14px;min-width:140px}
.kpi span{display:block;color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.04em}
.kpi b{font-size:20px}
nav{position:sticky;top:0;z-index:1;background:var(--card);border-bottom:1px solid var(--line)}
nav .wrap{display:flex;flex-wrap:wrap;gap:2px 14px;padding-top:7px;padding-bottom:7px;font-size:13.5px}
a{color:var(--accent);text-decoration:none}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:18px 0;
  scroll-margin-top:48px}
table{border-collapse:collapse;font-size:13.5px;font-variant-numeric:tabular-nums;margin:4px 0 8px}
th,td{padding:4px 12px;overflow-wrap:anywhere;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;background:var(--bg)}
.num{text-align:right}
tr.hl td{font-weight:600}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px 22px;align-items:start}
figure{margin:0;max-width:620px}
svg.plot{width:100%;height:auto;display:block}
pre{background:var(--bg);padding:12px;border-radius:6px;overflow:auto;font-size:12.5px;max-height:440px;margin:0}
details{margin:8px 0}
summary{cursor:pointer;color:var(--accent);font-size:14px}
.verdict{display:inline-block;padding:1px 10px;border-radius:12px;font-weight:600}
.v-good_fit,.v-solved,.v-good_separation,.v-enough_components,.v-as_expected{background:#dcfce7;color:#166534}
.v-still_improving,.v-too_short{background:#dbeafe;color:#1e40af}
.v-overfitting,.v-underfitting,.v-plateaued,.v-unreliable,.v-weak_structure,.v-some_loss,.v-over_flagging,
.v-under_flagging,.v-flagged{background:#ffedd5;color:#9a3412}
.v-unstable,.v-diverged,.v-collapsed,.v-no_structure,.v-degenerate,.v-information_lost,.v-poor_detection,
.bad{background:#fee2e2;color:#991b1b}
.badge{font-size:13px;padding:2px 8px;border-radius:10px;vertical-align:middle}
.advice li{margin:3px 0}
.share{display:inline-block;height:9px;background:var(--accent);border-radius:3px;vertical-align:middle}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:10px 28px;align-items:start}
.section-error{color:#991b1b}
footer{color:var(--muted);font-size:12.5px;padding:4px 0 28px}
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><div class="wrap">
{header}
</div></header>
<nav><div class="wrap">{nav}</div></nav>
<main class="wrap">
{main}
</main>
<footer class="wrap">{footer}</footer>
</body>
</html>
"""
