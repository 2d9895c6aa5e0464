"""The command line, thin over the Python API. User errors exit 2 with one `error: ...` line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trainwell.config import field_reference, parse_overrides
from trainwell.errors import UserError

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
    task: Annotated[str | None, typer.Option(help="classification or regression (default: inferred).")] = None,
    model: Annotated[str | None, typer.Option(help="Registered model name (see `trainwell models`).")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where to save the run (default runs/NAME-TIME).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a model: prepare data, fit, validate, test once, save the run."""
    from trainwell.experiment import train as run_training

    overrides: dict[str, Any] = {}
    if data is not None:
        overrides["data"] = {"source": data}
    for key, value in (("target", target), ("task", task)):
        if value is not None:
            overrides.setdefault("data", {})[key] = value
    if model is not None:
        overrides["model"] = {"name": model}
    if config is None and data is None:
        raise UserError("give a config file (trainwell train CONFIG.yaml) or --data PATH --target COLUMN")
    if config is None:
        overrides["name"] = Path(str(data).removeprefix("builtin:")).stem
    from trainwell.config import deep_merge

    overrides = deep_merge(overrides, parse_overrides(set_))
    run = run_training(config, run_dir=run_dir, quiet=quiet or not sys.stdout.isatty(), **overrides)
    _print_metrics(run.metrics, run.info)
    out.print(f"run saved to [bold]{run.dir}[/bold]")


def _print_metrics(metrics: dict[str, Any], info: dict[str, Any]) -> None:
    splits = [s for s in ("train", "validation", "test") if s in metrics]
    names = [k for k in metrics[splits[0]] if k != "confusion_matrix"] if splits else []
    table = Table(title=f"{info['model']} on {info['data']['source']} ({info['task']}, target {info['target']})")
    table.add_column("metric")
    for s in splits:
        table.add_column(s, justify="right")
    for name in names:
        table.add_row(name, *(f"{metrics[s].get(name, float('nan')):.4f}" for s in splits))
    out.print(table)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="CSV/Parquet/.npz with the feature columns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the predictions CSV.")],
) -> None:
    """Predict new rows: a `prediction` column plus `proba_<class>` columns for classifiers."""
    from trainwell.run import Run
    from trainwell.track.files import write_text

    frame = Run.load(run_dir).predictions(data)
    write_text(output, frame.to_csv(index=False))
    out.print(f"{len(frame)} predictions written to {output}")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `trainwell train`.")],
    data: Annotated[Path, typer.Argument(help="Labelled CSV/Parquet/.npz (the target column must be present).")],
) -> None:
    """Evaluate a saved model on labelled data; prints the metrics as JSON."""
    from trainwell.run import Run

    print(json.dumps(Run.load(run_dir).evaluate(data), indent=2))


@app.command()
def init(
    data: Annotated[str, typer.Argument(help="Data path or builtin:NAME.")],
    target: Annotated[str | None, typer.Option(help="Column to predict.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Config file to write.")] = Path("trainwell.yaml"),
) -> None:
    """Write a starter config from the inferred schema, every field commented."""
    from trainwell.starter import starter_config
    from trainwell.track.files import write_text

    if output.exists():
        raise UserError(f"{output} already exists; pass --output to write elsewhere")
    write_text(output, starter_config(data, target))
    out.print(f"wrote {output}; train it with: trainwell train {output}")


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

    table = Table("name", "family", "tasks", "description")
    for spec in list_models():
        table.add_row(spec.name, spec.family, ", ".join(sorted(spec.tasks)), spec.description)
    out.print(table)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
