"""The command line, thin over the Python API. User errors exit 2 with one `error: ...` line."""

from __future__ import annotations

import errno
import json
import signal
import statistics
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainwell.config import UNSUPERVISED_TASKS, field_reference, parse_overrides
from trainwell.errors import RunInterrupted, UserError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="trainwell: train AI models end to end, well.",
)  # fmt: skip
out = Console()
err = Console(stderr=True)


def _settings_help() -> str:
    """Every `--set` key with its description, generated from the config models."""
    rows = [f"{name} = {default!r}: {desc}" for name, desc, default in field_reference()]
    return "Config fields for --set (section.field=value):\n\n" + "\n\n".join(rows)


@app.command(epilog=_settings_help())
def train(
    config: Annotated[Path | None, typer.Argument(help="Experiment config (YAML); omit for zero-config.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a config field: section.field=value.")] = [],  # noqa: B006
    data: Annotated[str | None, typer.Option(help="Data path or builtin:NAME (zero-config).")] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict (zero-config).")] = None,
    task: Annotated[str | None, typer.Option(help="classification or regression (default: inferred); clustering, "
                                             "dimensionality_reduction or anomaly_detection need no target.")] = None,
    model: Annotated[str | None, typer.Option(help="Registered model name (see `trainwell models`).")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where to save the run (default runs/NAME-TIME).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue an interrupted run (its --run-dir) from its last "
                                                "checkpoint, with the config it started with.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a model: prepare data, fit, validate, test once, save the run."""
    from trainwell.experiment import train as run_training

    quiet = quiet or not sys.stdout.isatty()
    try:
        if resume is not None:
            if config is not None or set_ or data or target or task or model or run_dir:
                raise UserError("--resume continues a run with the config it started with; give it alone")
            run = run_training(resume=resume, quiet=quiet)
        else:
            overrides = _overrides("train", config, set_, data=data, target=target, task=task)
            if model is not None:
                overrides["model"] = {"name": model} | overrides.get("model", {})
            run = run_training(config, run_dir=run_dir, quiet=quiet, **overrides)
    except RunInterrupted as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    _print_metrics(run.metrics, run.info)
    cv = run.metrics.get("cross_validation")
    if cv:
        shown = ", ".join(f"{k} {v:.4f} ± {cv['std'][k]:.4f}" for k, v in list(cv["mean"].items())[:3])
        out.print(f"{cv['n_folds']}-fold cross-validation on train+validation: {shown}")
    _print_findings(run.metrics.get("audit", {}))
    for failure in run.metrics.get("analysis_errors", []):
        err.print(f"warning: analysis step {failure['step']} failed and was skipped (the model is saved): "
                  f"{failure['error']}", markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    _print_diagnosis(run.metrics.get("diagnosis"))
    _print_guarantees(run.info.get("guarantees"))
    out.print(f"run saved to [bold]{run.dir}[/bold] (report: {run.dir / 'report.html'})")


def _overrides(command: str, config: Path | None, set_: list[str], **data: str | None) -> dict[str, Any]:
    """Overrides from zero-config options (--data, --target, --task) and `--set`; --set wins."""
    from trainwell.config import deep_merge

    if config is None and data.get("data") is None:
        raise UserError(f"give a config file (trainwell {command} CONFIG.yaml) or --data PATH --target COLUMN")
    section = {"source" if k == "data" else k: v for k, v in data.items() if v is not None}
    overrides: dict[str, Any] = {"data": section} if section else {}
    if config is None:  # zero-config runs are named after their data
        overrides["name"] = Path(str(data["data"]).removeprefix("builtin:")).stem
    return deep_merge(overrides, parse_overrides(set_))


def _print_diagnosis(d: dict[str, Any] | None) -> None:
    if not d:
        return
    out.print(f"[bold]diagnosis: {d['verdict']}[/bold]. {escape(d['summary'])}", highlight=False)
    for advice in d.get("advice", []):
        out.print(f"  - {escape(advice)}", highlight=False)


def _print_guarantees(g: dict[str, Any] | None) -> None:
    if not g:
        return
    failed = [i for i in g["items"] if i["ok"] is not True]
    if not failed:
        out.print(f"guarantees: all {len(g['items'])} checks passed")
    for item in failed:
        mark = "not checked" if item["ok"] is None else "FAILED"
        out.print(f"guarantee {item['name']}: {mark}: {escape(item['detail'])}", highlight=False)


def _print_findings(audit: dict[str, Any], *, everything: bool = False) -> None:
    """Audit findings: errors and warnings (all of them with `everything`)."""
    findings = [f for f in audit.get("findings", []) if everything or f["severity"] != "info"]
    if not audit:
        return
    counts = audit["counts"]
    out.print(f"data audit: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    if findings:
        table = Table("severity", "check", "column", "finding", "fix")
        for f in findings:  # data text, not rich markup: "data.drop: [col]" must print as is
            table.add_row(*(escape(str(v)) for v in (f["severity"], f["check"], f["column"] or "", f["message"],
                                                     f["fix"])))  # fmt: skip
        out.print(table)


def _print_metrics(metrics: dict[str, Any], info: dict[str, Any]) -> None:
    splits = [s for s in ("train", "validation", "test") if s in metrics]
    if not splits:  # an agent: its final evaluation over fresh episodes
        e = metrics.get("evaluation") or {}
        out.print(f"{info['model']} on {info.get('env', {}).get('id')}: mean return {e.get('mean_return', 0):.1f} ± "
                  f"{e.get('std_return', 0):.1f} over {e.get('episodes')} deterministic episodes "
                  f"(min {e.get('min_return', 0):.1f}, max {e.get('max_return', 0):.1f})", highlight=False)
        return
    names = [k for k in metrics[splits[0]] if k != "confusion_matrix" and not isinstance(metrics[splits[0]][k], list)]
    labels = f"target {info['target']}"
    if info["task"] in UNSUPERVISED_TASKS:
        labels = f"labels {info['target']}" if info["target"] else "no labels"
    table = Table(title=f"{info['model']} on {info['data']['source']} ({info['task']}, {labels})")
    table.add_column("metric")
    for s in splits:
        table.add_column(s, justify="right")
    for name in names:  # null: undefined on this split (the reason is in metrics.json "skipped")
        table.add_row(name, *("-" if metrics[s].get(name) is None else f"{metrics[s][name]:.4f}" for s in splits))
    out.print(table)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="CSV/Parquet/.npz with the feature columns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the predictions CSV.")],
    force: Annotated[bool, typer.Option("--force", help="Replace --output if it exists.")] = False,
) -> None:
    """Predict new rows: a `prediction` column plus `proba_<class>` columns for classifiers."""
    from trainwell.files import write_text
    from trainwell.run import Run
    from trainwell.track.rundir import check_output

    check_output(output, inputs=(data,), force=force)
    with _input_warnings():
        frame = Run.load(run_dir).predictions(data)
    write_text(output, frame.to_csv(index=False))
    out.print(f"{len(frame)} predictions written to {output}")


@contextmanager
def _input_warnings() -> Iterator[None]:
    """Print each InputWarning (columns ignored, values made missing, unseen categories) as one stderr line."""
    from trainwell.run import InputWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        yield
    for w in caught:
        if issubclass(w.category, InputWarning):
            err.print(f"warning: {w.message}", markup=False, highlight=False, soft_wrap=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="Labelled CSV/Parquet/.npz (the target column must be present).")],
) -> None:
    """Evaluate a saved model on labelled data; prints the metrics as JSON."""
    from trainwell.run import Run

    with _input_warnings():
        metrics = Run.load(run_dir).evaluate(data)
    print(json.dumps(metrics, indent=2))


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")]) -> None:
    """Rebuild the run's self-contained report.html from the files in the run folder."""
    from trainwell.report.html import write_report

    out.print(f"report written to {write_report(run_dir)}")


@app.command()
def audit(
    data: Annotated[str, typer.Argument(help="Data path or builtin:NAME.")],
    target: Annotated[str | None, typer.Option(help="Column to predict (builtins know theirs).")] = None,
    config: Annotated[Path | None, typer.Option(help="Config whose data, split and audit sections apply.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a config field: section.field=value.")] = [],  # noqa: B006
    fail_on: Annotated[str, typer.Option(help="Exit 3 on findings at or above: error, warning or never.")] = "never",
    json_: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Audit data before training: gaps, constant and ID-like columns, duplicates, leakage, label noise, shift."""
    from trainwell.config import deep_merge, load_config
    from trainwell.pipeline import load_and_split

    if fail_on not in ("error", "warning", "never"):
        raise UserError(f"--fail-on must be error, warning or never, not {fail_on!r}")
    overrides = deep_merge({"data": {"source": data} | ({"target": target} if target else {})},
                           parse_overrides(set_))  # fmt: skip
    cfg = load_config(config or {}, deep_merge(overrides, {"audit": {"fail_on": "never"}}))
    _, prep, _ = load_and_split(cfg)
    if json_:
        print(json.dumps(prep.audit, indent=2, default=str))
    else:
        _print_findings(prep.audit, everything=True)
    rank = {"error": 0, "warning": 1, "info": 2}
    if fail_on != "never" and any(rank[f["severity"]] <= rank[fail_on] for f in prep.audit["findings"]):
        raise typer.Exit(3)


@app.command()
def reproduce(run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")]) -> None:
    """Train the run's saved config again and check that every metric matches exactly (exit 3 if not)."""
    from trainwell.experiment import reproduce as run_again

    result = run_again(run_dir)
    if result["match"]:
        out.print(f"reproduced: all {result['compared']} metrics match exactly, on the same data")
        return
    if not result["data_match"]:
        out.print("the data changed since the run (its fingerprint differs)")
    table = Table("metric", "original", "again")
    for d in result["differences"]:
        table.add_row(d["metric"], str(d["original"]), str(d["again"]))
    out.print(table)
    raise typer.Exit(3)


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="CSV/Parquet/.npz with the feature columns.")],
    row: Annotated[list[int], typer.Option(help="Row position(s) in DATA to explain (0-based).")] = [0],  # noqa: B006
    top: Annotated[int, typer.Option(help="Contributions shown per row.")] = 5,
) -> None:
    """Explain single predictions: the features that pushed each row's prediction up or down."""
    from trainwell.data.sources import read_table
    from trainwell.run import Run

    frame = read_table(data)
    bad = [r for r in row if not 0 <= r < len(frame)]
    if bad:
        raise UserError(f"{data} has {len(frame)} rows; --row {bad[0]} is out of range (0..{len(frame) - 1})")
    for r, result in zip(row, Run.load(run_dir).explain(frame.iloc[row], top_k=top), strict=True):
        head = f"row {r}: prediction [bold]{result['prediction']}[/bold] ({result['method']}; "
        out.print(head + f"contributions to {result['output']}, base {result['base_value']:.4g})", highlight=False)
        table = Table("feature", "value", "contribution")
        for c in result["contributions"]:
            table.add_row(c["feature"], f"{c['value']:.4g}", f"{c['contribution']:+.4g}")
        out.print(table)


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML) with a tune.space section.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override a config field: section.field=value.")] = [],  # noqa: B006
    n_trials: Annotated[int | None, typer.Option(help="Trials the study should hold in total (tune.n_trials).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-time budget in seconds (tune.timeout_s).")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL to share, e.g. postgresql://...")] = None,
    study_name: Annotated[str | None, typer.Option(help="Study to create or resume (tune.study_name).")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where to save the run (default runs/NAME-TIME).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per trial.")] = False,
) -> None:
    """Tune hyperparameters with Optuna, retrain the best configuration, test it once, save the run."""
    from trainwell.config import deep_merge
    from trainwell.tune import search

    budget = {"n_trials": n_trials, "timeout_s": timeout, "storage": storage, "study_name": study_name}
    overrides = deep_merge(parse_overrides(set_), {"tune": {k: v for k, v in budget.items() if v is not None}})
    try:
        run = search.tune(config, run_dir=run_dir, quiet=quiet, **overrides)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    search.print_summary(run)


@app.command()
def compare(
    config: Annotated[Path | None, typer.Argument(help="Experiment config (YAML); omit for zero-config.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a config field: section.field=value.")] = [],  # noqa: B006
    data: Annotated[str | None, typer.Option(help="Data path or builtin:NAME (zero-config).")] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict (zero-config).")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated models (default: one per family).")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where to save the run (default runs/NAME-TIME).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per candidate.")] = False,
) -> None:
    """Compare model families on one split, rank them on validation, keep the best, test it once, save."""
    from trainwell.tune import compare as comparing

    overrides = _overrides("compare", config, set_, data=data, target=target)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    run = comparing.compare(config, run_dir=run_dir, quiet=quiet, models=names, **overrides)
    comparison = run.metrics["comparison"]
    out.print(comparing.leaderboard_table(run.metrics["leaderboard"], comparison["metric"]))
    for skip in comparison["skipped"]:
        out.print(f"skipped {skip['model']}: {skip['reason']}")
    test = run.metrics.get("test", {}).get(comparison["metric"])
    out.print(f"kept [bold]{comparison['kept']}[/bold]; test {comparison['metric']} {test:.4f} (tested once)")
    out.print(f"run saved to [bold]{run.dir}[/bold]")


@app.command()
def init(
    data: Annotated[str, typer.Argument(help="Data path or builtin:NAME.")],
    target: Annotated[str | None, typer.Option(help="Column to predict.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Config file to write.")] = Path("trainwell.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Replace --output if it exists.")] = False,
) -> None:
    """Write a starter config from the inferred schema, every field commented."""
    from trainwell.files import write_text
    from trainwell.starter import starter_config
    from trainwell.track.rundir import check_output

    check_output(output, inputs=(data,), force=force)
    write_text(output, starter_config(data, target))
    out.print(f"wrote {output}; train it with: trainwell train {output}")


@app.command()
def clean(
    root: Annotated[Path, typer.Argument(help="Folder holding runs (default runs).")] = Path("runs"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the unfinished runs.")] = False,
) -> None:
    """List unfinished runs (hidden .NAME.partial folders left by a crash or Ctrl-C) and delete the stale ones."""
    import shutil

    from trainwell.track.rundir import unfinished_runs

    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the folder that holds your runs")
    found = unfinished_runs(root)
    if not found:
        out.print(f"no unfinished runs under {root}")
        return
    for r in found:  # one line each, never wrapped: paths are meant to be copied
        state = f"in use by {r['active']}" if r["active"] else "resumable" if r["resumable"] else "stale"
        out.print(f"{r['path']}  ({state}; run {r['final']}, {r['bytes'] / 1e6:.1f} MB, modified {r['modified']})",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    if dry_run:
        return
    for r in found:
        if not r["active"]:
            shutil.rmtree(r["path"])
    removed = sum(not r["active"] for r in found)
    left = "; runs in use were left alone" if removed < len(found) else ""
    out.print(f"deleted {removed} unfinished run(s){left}")


@app.command()
def monitor(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="New rows (CSV/Parquet/.npz); with the target, performance too.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML drift report (default: "
                                                "drift.html in the run folder, rebuilt each time).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --output if it exists.")] = False,
) -> None:
    """Compare new rows with the training data: per-column PSI and tests, prediction drift, an alert."""
    from trainwell.report.drift import write_drift_report
    from trainwell.run import Run
    from trainwell.track.rundir import check_output

    if output is not None:
        check_output(output, inputs=(data,), force=force)

    run = Run.load(run_dir)
    report = run.drift(data)
    path = write_drift_report(report, output or run.dir / "drift.html", run_name=str(run.info.get("name")))
    table = Table("column", "status", "PSI", "p-value", title=f"drift: {report['status'].upper()}")
    for f in report["features"][:15]:
        psi, p = f.get("psi"), f.get("p_value")
        table.add_row(f["column"], f["status"], "-" if psi is None else f"{psi:.3f}", "-" if p is None else f"{p:.3g}")
    out.print(table)
    out.print(f"{escape(report['summary'])}; report written to {path}", highlight=False)
    for name, v in (report.get("performance") or {}).items():
        if name in ("accuracy", "r2", "roc_auc", "f1_macro", "rmse"):
            out.print(f"  {name}: test {v['test']:.4f} → now {v['now']:.4f}" if v["test"] is not None else
                      f"  {name}: now {v['now']:.4f}")  # fmt: skip


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace --output if it exists.")] = False,
) -> None:
    """Export the model to ONNX (on prepared features), checked against the run with onnxruntime."""
    from trainwell.run import Run
    from trainwell.serve.onnx import export_onnx
    from trainwell.track.rundir import check_output

    if output.suffix.lower() != ".onnx":
        raise UserError(f"--output {output}: write a .onnx file")
    check_output(output, inputs=(), force=force)
    parity = export_onnx(Run.load(run_dir), output)
    shown = {k: v for k, v in parity.items() if k not in ("ok", "tolerance")}
    out.print(f"wrote {output} and {output}.json; matches the run on {parity['rows']} rows ({shown}; "
              f"{parity['tolerance']})", highlight=False)


@app.command()
def update(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="New labelled rows: CSV/Parquet, or the server's feedback .jsonl.")],
    window: Annotated[str, typer.Option(help="new: learn from the new rows; all: the original training rows "
                                        "plus the new ones.")] = "new",
    promote: Annotated[str, typer.Option(help="auto: promote when at least as good on held-out new rows; force; "
                                         "never.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Train the next model version on new labelled rows; promote it when it does at least as well on them."""
    from trainwell.update import update as run_update

    if window not in ("new", "all") or promote not in ("auto", "force", "never"):
        raise UserError("--window is new or all; --promote is auto, force or never")
    info = run_update(run_dir, data, window=window, promote=promote, quiet=quiet or not sys.stdout.isatty())  # type: ignore[arg-type]
    metric, parent, name = info["metric"], info["parent"], info["version"]
    for where, scores in info["evaluation"].items():
        before, after = scores[parent].get(metric), scores[name].get(metric)
        out.print(f"{where} ({scores['rows']} rows): {metric} {parent} {before:.4f} → {name} {after:.4f}")
    state = "promoted: it answers now" if info["promoted"] else "kept, not promoted (`trainwell promote` to use it)"
    out.print(f"{name} {state}; {info['reason']}", highlight=False)


@app.command()
def versions(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """List the run's model versions, their scores and which one answers."""
    from trainwell.track.versions import list_versions

    table = Table("version", "parent", "method", "rows learned", "score on new rows", "promoted", "active")
    for v in list_versions(run_dir):
        scores = (v.get("evaluation") or {}).get("new_rows", {})
        score = scores.get(v["version"], {}).get(v.get("metric", ""), None) if scores else None
        table.add_row(v["version"], v.get("parent") or "", v["method"], str(v.get("rows_learned", "")),
                      "" if score is None else f"{v['metric']} {score:.4f}", str(v.get("promoted", "")),
                      "yes" if v["active"] else "")  # fmt: skip
    out.print(table)


@app.command()
def promote(run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
            version: Annotated[str, typer.Argument(help="The version to answer with, e.g. v2.")]) -> None:
    """Make a version the one that answers (a running server picks it up)."""
    from trainwell.update import promote_version

    promote_version(run_dir, version)
    out.print(f"{version} is active")


@app.command()
def rollback(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Go back to the version that was active before the current one."""
    from trainwell.track.versions import rollback_target, set_active

    target = rollback_target(run_dir)
    set_active(run_dir, target, "rollback")
    out.print(f"rolled back to {target}")


@app.command()
def serve(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (uvicorn).")] = 1,
    token: Annotated[str | None, typer.Option(help="Bearer token clients must send (default $TRAINWELL_TOKEN).",
                                              show_default=False)] = None,
    max_rows: Annotated[int, typer.Option(min=1, help="Rows per request, at most.")] = 10_000,
    log_inputs: Annotated[Path | None, typer.Option(help="Append predicted rows to this JSON-lines file; "
                                                    "GET /monitoring then reports their drift.")] = None,
) -> None:
    """Serve the run's model over HTTP: POST /predict, /predict_proba; GET /health, /metadata, /docs."""
    import os

    import uvicorn

    from trainwell.serve.app import TOKEN_ENV, check_binding, create_app

    token = check_binding(host, token)
    create_app(run_dir, token=token, max_rows=max_rows)  # load and verify the run before binding
    os.environ["TRAINWELL_RUN_DIR"], os.environ["TRAINWELL_MAX_ROWS"] = str(run_dir), str(max_rows)
    if log_inputs is not None:
        os.environ["TRAINWELL_LOG_INPUTS"] = str(log_inputs)
    if token is not None:
        os.environ[TOKEN_ENV] = token
    out.print(f"serving {run_dir} on http://{host}:{port} (docs at /docs)")
    uvicorn.run("trainwell.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")  # fmt: skip


@app.command()
def play(
    run_dir: Annotated[Path, typer.Argument(help="A reinforcement-learning run folder.")],
    episodes: Annotated[int, typer.Option(min=1, help="Deterministic episodes to play.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the first episode (the next ones count up).")] = 0,
    record: Annotated[Path | None, typer.Option(help="Write the first episode's frames to this .gif.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --record if it exists.")] = False,
) -> None:
    """Play a trained agent in its environment: prints each episode's return; --record writes a GIF."""
    from trainwell.reinforcement import play_episodes
    from trainwell.run import Run

    run = Run.load(run_dir)
    if run.task != "reinforcement_learning":
        raise UserError(f"{run_dir} is a {run.task} run; play needs an agent trained with an env config")
    if record is not None and record.suffix.lower() != ".gif":
        raise UserError(f"--record {record}: write a .gif file")
    if record is not None:
        from trainwell.track.rundir import check_output

        check_output(record, force=force)
    returns = play_episodes(run, episodes, seed=seed, record=record)
    for i, total in enumerate(returns, start=1):
        out.print(f"episode {i}: return {total:.1f}")
    mean, std = statistics.fmean(returns), statistics.pstdev(returns)
    out.print(f"mean return {mean:.1f} ± {std:.1f} over {len(returns)} episode(s)"
              + (f"; frames written to {record}" if record else ""))  # fmt: skip


@app.command()
def datasets() -> None:
    """List the bundled datasets (all offline)."""
    from trainwell.data.sources import list_builtin

    table = Table("name", "description")
    for name, desc in list_builtin():
        table.add_row(f"builtin:{name}", desc)
    out.print(table)


@app.command()
def models() -> None:
    """List the registered models."""
    from trainwell.models.registry import list_models
    from trainwell.models.rl import AGENTS
    from trainwell.models.unsupervised import list_unsupervised

    table = Table("name", "family", "tasks", "description")
    for spec in list_models():
        table.add_row(spec.name, spec.family, ", ".join(sorted(spec.tasks)), spec.description)
    for u in list_unsupervised():
        table.add_row(u.name, "unsupervised", u.task, u.description)
    for a in AGENTS.values():
        table.add_row(a.name, "rl", "reinforcement_learning (env)", f"{a.description} Actions: {', '.join(a.actions)}.")
    out.print(table)


# Writing failed for a reason the user can fix (disk full, read-only, no permission): one line, exit 2.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM stops a run like Ctrl-C: checkpoints are kept and the resume command is printed."""
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2; a stopped `train` exits 130."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        err.print(f"error: cannot write{where}: {exc.strerror}; free space or choose another folder, "
                  "then run the command again", markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(2)

