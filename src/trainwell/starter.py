"""`trainwell init`: a starter config from the inferred schema, every field commented."""

from __future__ import annotations

from pathlib import Path

from trainwell.config import ExperimentConfig, commented_yaml
from trainwell.data.schema import infer_schema, infer_task
from trainwell.data.sources import load_dataset
from trainwell.errors import UserError, did_you_mean


def starter_config(source: str, target: str | None) -> str:
    """YAML text: data section filled from the file, defaults elsewhere, inferred types as comments."""
    ds = load_dataset(source, target)
    target = target or ds.target
    if target is None:
        raise UserError(f"{source}: pass --target COLUMN (columns: {', '.join(map(str, ds.frame.columns[:20]))})")
    if target not in ds.frame.columns:
        raise UserError(f'{source}: target column "{target}" not found{did_you_mean(target, ds.frame.columns)}')
    schema = infer_schema(ds.frame, target)
    task = infer_task(ds.frame[target].dropna())
    name = Path(source.removeprefix("builtin:")).stem
    config = ExperimentConfig.model_validate(
        {"name": name, "data": {"source": source, "target": target, "task": task}}
    )
    header = [
        f"# trainwell experiment for {source}: {len(ds.frame)} rows, {len(schema)} feature columns.",
        f"# The task was inferred as {task}. Run it with: trainwell train THIS_FILE.yaml",
        "# Inferred column types (copy under data.column_types to override one):",
        *(f"#   {col}: {kind}" for col, kind in schema.items()),
        "",
    ]
    return "\n".join(header) + commented_yaml(config)
