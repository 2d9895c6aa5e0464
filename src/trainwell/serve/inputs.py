"""What a prediction request may hold, derived from the run's training schema.

The request models are pydantic classes built per run: one typed field per input column, so FastAPI's
OpenAPI schema shows the real fields, and a missing column or a value of the wrong type is a 422 that names
the field. Categories never seen in training are refused too (the CLI only warns): a service should not
answer for a value it knows nothing about.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from trainwell.run import Run

MAX_ENUM = 200  # categorical columns list their known values in the OpenAPI schema up to this many
Value = float | int | str | bool | None


def python_type(kind: str) -> Any:
    """The JSON type a column of `kind` accepts; every column may be null (it is imputed like in training)."""
    if kind == "numeric":
        return float | None
    if kind == "boolean":
        return bool | float | str | None
    return str | float | int | bool | None  # categorical, text, datetime (ISO text), numbers read as text


def record_model(run: Run) -> type[BaseModel]:
    """One row: every input column required (null allowed), typed by the training schema; extra keys ignored."""
    schema, seen = run.info["schema"], run.seen_categories()
    fields: dict[str, Any] = {}
    for i, column in enumerate(run.info["input_columns"]):
        kind = schema.get(column, "numeric")
        extra: dict[str, Any] = {"x-column-type": kind}
        if column in seen and len(seen[column]) <= MAX_ENUM:
            extra["enum"] = sorted(seen[column]) + [None]
        fields[f"c{i}"] = (python_type(kind), Field(..., alias=column, description=f"{kind} column {column!r}",
                                                 json_schema_extra=extra))  # fmt: skip
    model = create_model("Record", __config__=ConfigDict(extra="ignore", populate_by_name=False), **fields)
    return model


def request_models(run: Run, max_rows: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """(records request, columns request) for /predict and /predict_proba."""
    record = record_model(run)
    records = create_model(
        "RecordsRequest", __config__=ConfigDict(extra="forbid"),
        records=(list[record], Field(..., min_length=1, max_length=max_rows,  # type: ignore[valid-type]
                                     description=f"Rows to predict, 1 to {max_rows:,} per request.")),
    )  # fmt: skip
    columns = create_model(
        "ColumnsRequest", __config__=ConfigDict(extra="forbid"),
        columns=(dict[str, list[Value]], Field(..., description="Column name → values, one per row.")),
    )  # fmt: skip
    return records, columns


def records_frame(rows: list[BaseModel]) -> pd.DataFrame:
    """Validated records as a DataFrame with the user's column names."""
    return pd.DataFrame([r.model_dump(by_alias=True) for r in rows])


def columns_frame(run: Run, columns: dict[str, list[Value]], max_rows: int) -> tuple[pd.DataFrame, list[dict]]:
    """A columns request as a DataFrame, validated like records; errors in FastAPI's 422 `detail` shape."""
    lengths = {len(v) for v in columns.values()}
    errors: list[dict[str, Any]] = []
    if len(lengths) > 1:
        errors.append(_error(["body", "columns"], "every column needs the same number of values"))
    n = max(lengths, default=0)
    if n == 0:
        errors.append(_error(["body", "columns"], "no rows: give at least one value per column"))
    if n > max_rows:
        errors.append(_error(["body", "columns"], f"{n:,} rows; at most {max_rows:,} per request"))
    if errors:
        return pd.DataFrame(), errors
    record = record_model(run)
    rows = []
    for i in range(n):
        row = {name: values[i] for name, values in columns.items()}
        try:
            rows.append(record.model_validate(row))
        except ValidationError as exc:  # each problem with its row, as a 422 detail
            for e in exc.errors():
                errors.append(_error(["body", "columns", *e["loc"], i], e["msg"]))
    return (records_frame(rows) if not errors else pd.DataFrame()), errors


def unknown_categories(run: Run, frame: pd.DataFrame, where: list[Any]) -> list[dict[str, Any]]:
    """422 details for values of categorical columns never seen in training (the first few per column)."""
    errors = []
    for column, seen in run.seen_categories().items():
        if column not in frame.columns:
            continue
        values = frame[column].dropna().astype(str)
        for row in values.index[~values.isin(seen)][:5]:
            shown = sorted(seen)[:10]
            known = ", ".join(map(repr, shown)) + (" ..." if len(seen) > 10 else "")
            errors.append(_error([*where, int(row), column],
                                 f"category {values[row]!r} was never seen in training; known: {known}"))  # fmt: skip
    return errors


def _error(loc: list[Any], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": "value_error"}
