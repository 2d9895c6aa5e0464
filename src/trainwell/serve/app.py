"""The prediction server: a FastAPI app over one saved run.

POST /predict and /predict_proba take rows as `{"records": [{column: value}, ...]}` or
`{"columns": {column: [values]}}`; GET /health and /metadata describe the service. Inputs are checked against
the training schema (a 422 names the field), requests are bounded in bytes and rows, a bearer token guards
every route but /health when one is set, and no response ever carries a stack trace.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from trainwell import __version__
from trainwell.errors import UserError
from trainwell.run import Run
from trainwell.serve.inputs import columns_frame, records_frame, request_models, unknown_categories
from trainwell.track.versions import active_path

MAX_ROWS = 10_000  # rows per request
MAX_BYTES = 16 * 1024 * 1024  # request body size
TOKEN_ENV = "TRAINWELL_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("trainwell.serve")


def create_app(run_dir: str | Path, *, token: str | None = None, max_rows: int = MAX_ROWS,
               max_bytes: int = MAX_BYTES, log_inputs: str | Path | None = None) -> FastAPI:  # fmt: skip
    """The app for the run in `run_dir` (loaded and verified once, at start); with `log_inputs`, every predicted
    row and its prediction is appended to that JSON-lines file, and GET /monitoring reports their drift."""
    run = Run.load(run_dir)
    if run.task == "reinforcement_learning":
        raise UserError(f"{run_dir} holds an agent; serve predicts tables (play it with `trainwell play`)")
    records_request, columns_request = request_models(run, max_rows)
    state = {"run": run, "stamp": _stamp(run.dir)}

    def live() -> Run:
        """The run's active version: a promotion or rollback (versions/active.json) is picked up at once."""
        stamp = _stamp(run.dir)
        if stamp != state["stamp"]:
            state["run"], state["stamp"] = Run.load(run.dir), stamp
            log.warning("now serving %s of %s", state["run"].version, run.dir)  # type: ignore[attr-defined]
        return state["run"]  # type: ignore[return-value]

    about = f"Predictions of model {run.info['model']} ({run.task}), trained by trainwell."
    app = FastAPI(title=f"trainwell · {run.info.get('name')}", version=__version__, description=about)
    bearer = HTTPBearer(auto_error=False)

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):  # constant time: no timing oracle
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.middleware("http")
    async def bounded(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            return JSONResponse({"detail": f"request body over {max_bytes:,} bytes; send fewer rows per request"},
                                status_code=413)  # fmt: skip
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": details}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("prediction failed")  # the trace stays in the server's log, never in a response
        return JSONResponse({"detail": "internal error while predicting; see the server log"}, status_code=500)

    def frame_of(body: dict[str, Any], current: Run) -> pd.DataFrame:
        if "records" in body:
            rows = records_request.model_validate(body).records  # type: ignore[attr-defined]
            frame, where = records_frame(rows), ["body", "records"]
        else:
            parsed = columns_request.model_validate(body)
            frame, errors = columns_frame(current, parsed.columns, max_rows)  # type: ignore[attr-defined]
            if errors:
                raise HTTPException(422, errors)
            where = ["body", "columns"]
        errors = unknown_categories(current, frame, where)
        if errors:
            raise HTTPException(422, errors)
        return frame

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(422, [{"loc": ["body"], "msg": "the body is not valid JSON", "type": "json"}]) from None
        if not isinstance(body, dict) or len({"records", "columns"} & set(body)) != 1:
            raise HTTPException(422, [{"loc": ["body"], "msg": 'give exactly one of "records" or "columns"',
                                       "type": "value_error"}])  # fmt: skip
        return body

    examples = {"records": {"summary": "rows as objects", "value": {"records": [example_row(run)]}}}
    body_schema = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [{"$ref": "#/components/schemas/RecordsRequest"},
                             {"$ref": "#/components/schemas/ColumnsRequest"}]},
        "examples": examples}}}}  # fmt: skip

    @app.post("/predict", dependencies=[Depends(authorised)], openapi_extra=body_schema)
    async def predict(request: Request) -> dict[str, Any]:
        """Predictions for the rows: labels or values; cluster ids; anomaly flags and scores; components."""
        current = live()
        frame = _validated(frame_of, await body_of(request), current)
        answer = _predictions(current, frame) | {"version": current.version}
        if log_inputs is not None:
            _log(Path(log_inputs), frame, answer.get("predictions"))
        return answer

    @app.get("/monitoring", dependencies=[Depends(authorised)])
    async def monitoring() -> dict[str, Any]:
        """Drift of the logged rows (the most recent MONITOR_ROWS) against the training data."""
        if log_inputs is None:
            raise HTTPException(404, "input logging is off: start the server with --log-inputs FILE")
        frame = _logged(Path(log_inputs))
        if frame.empty:
            return {"status": "no_data", "summary": "no rows logged yet", "rows": 0}
        return _json_safe(live().drift(frame))

    @app.post("/predict_proba", dependencies=[Depends(authorised)], openapi_extra=body_schema)
    async def predict_proba(request: Request) -> dict[str, Any]:
        """Class probabilities for the rows (classifiers only)."""
        current = live()
        frame = _validated(frame_of, await body_of(request), current)
        proba = current.outputs(frame)[1] if current.task == "classification" else None
        if proba is None:
            raise HTTPException(400, f"model {current.info['model']} ({current.task}) gives no class probabilities")
        return {"classes": [_plain(c) for c in current.classes], "probabilities": np.round(proba, 12).tolist(),
                "version": current.version}  # fmt: skip

    @app.post("/feedback", dependencies=[Depends(authorised)], openapi_extra=body_schema)
    async def feedback(request: Request) -> dict[str, Any]:
        """Labelled rows (the inputs plus the target column) for `trainwell update`: appended to the run's
        feedback.jsonl."""
        current = live()
        body = await body_of(request)
        frame = _validated(frame_of, body, current)
        target = current.info.get("target")
        given = body.get("columns", {}).get(target) if "columns" in body else [
            r.get(target) if isinstance(r, dict) else None for r in body["records"]]  # fmt: skip
        if not isinstance(given, list) or len(given) != len(frame) or any(v is None for v in given):
            raise HTTPException(422, [{"loc": ["body", target], "msg": f"feedback needs the target {target!r} on "
                                       "every row", "type": "value_error"}])  # fmt: skip
        frame[target] = given
        _append_feedback(current.dir / FEEDBACK, frame)
        return {"received": len(frame), "stored": FEEDBACK, "next": f"trainwell update {current.dir} "
                f"{current.dir / FEEDBACK}"}  # fmt: skip

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the model is loaded and answers."""
        current = live()
        return {"status": "ok", "model": current.info["model"], "task": current.task, "version": current.version}

    @app.get("/metadata", dependencies=[Depends(authorised)])
    async def metadata() -> dict[str, Any]:
        """The input schema (types and known categories), the model, its test metrics and versions."""
        current = live()
        seen = current.seen_categories()
        inputs = [{"name": c, "type": current.info["schema"].get(c),
                   "categories": sorted(seen[c]) if c in seen else None}
                  for c in current.info["input_columns"]]  # fmt: skip
        return {"name": current.info.get("name"), "model": current.info["model"], "task": current.task,
                "version": current.version, "target": current.info.get("target"),
                "classes": [_plain(c) for c in current.classes], "inputs": inputs,
                "metrics": {"test": _finite(current.metrics.get("test", {}))}, "trainwell": __version__,
                "trained": current.info.get("finished"),
                "limits": {"max_rows": max_rows, "max_bytes": max_bytes}}  # fmt: skip

    # the components the body schema refers to
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (records_request, columns_request):
                spec = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
                components.update(spec.pop("$defs", {}))
                components[model.__name__] = spec
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


MONITOR_ROWS = 10_000
FEEDBACK = "feedback.jsonl"  # in the run folder (outside its manifest): labelled rows for `trainwell update`


def _append_feedback(path: Path, frame: pd.DataFrame) -> None:
    import json

    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    with path.open("a") as f:  # one write per request
        f.write("\n".join(json.dumps(r, default=str) for r in records) + "\n")


def _log(path: Path, frame: pd.DataFrame, predictions: list[Any] | None) -> None:
    """Append the rows (and their predictions) as JSON lines; opt-in, for monitoring."""
    import json
    import time

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    lines = [json.dumps({"time": stamp, "row": r, "prediction": p}, default=str)
             for r, p in zip(records, predictions or [None] * len(records), strict=True)]  # fmt: skip
    with path.open("a") as f:  # one write per request: lines of concurrent workers do not interleave mid-line
        f.write("\n".join(lines) + "\n")


def _logged(path: Path) -> pd.DataFrame:
    import json
    from collections import deque

    if not path.is_file():
        return pd.DataFrame()
    with path.open() as f:
        tail = deque(f, maxlen=MONITOR_ROWS)
    return pd.DataFrame([json.loads(line)["row"] for line in tail if line.strip()])


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _stamp(run_dir: Path) -> int | None:
    path = active_path(run_dir)
    return path.stat().st_mtime_ns if path.is_file() else None


def _validated(frame_of: Any, body: dict[str, Any], current: Run) -> pd.DataFrame:
    from pydantic import ValidationError

    try:
        return frame_of(body, current)
    except ValidationError as exc:
        details = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise HTTPException(422, details) from None


def _predictions(run: Run, frame: pd.DataFrame) -> dict[str, Any]:
    """The /predict answer: `predictions`, plus `anomaly_score` or `components` for unsupervised runs."""
    try:
        out = run.predictions(frame)
    except UserError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    if run.task == "dimensionality_reduction":
        return {"components": np.round(out.to_numpy(np.float64), 12).tolist()}
    answer: dict[str, Any] = {"predictions": [_plain(v) for v in out["prediction"]]}
    if "anomaly_score" in out:
        answer["anomaly_score"] = [float(v) for v in out["anomaly_score"]]
    return answer


def example_row(run: Run) -> dict[str, Any]:
    """A plausible row for the OpenAPI example: a known category, zero for numbers."""
    seen, row = run.seen_categories(), {}
    for column in run.info["input_columns"]:
        kind = run.info["schema"].get(column)
        row[column] = sorted(seen[column])[0] if column in seen else (0.0 if kind == "numeric" else None)
    return row


def _plain(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def check_binding(host: str, token: str | None) -> str | None:
    """The token to use: the given one or $TRAINWELL_TOKEN; required off loopback."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None and host not in LOOPBACK:
        raise UserError(f"serving on {host} (not loopback) needs a bearer token: --token or ${TOKEN_ENV}")
    return token


def app_from_env() -> FastAPI:
    """The app uvicorn's worker processes build (`trainwell serve --workers N`), configured by environment."""
    return create_app(os.environ["TRAINWELL_RUN_DIR"], token=os.environ.get(TOKEN_ENV) or None,
                      max_rows=int(os.environ.get("TRAINWELL_MAX_ROWS", MAX_ROWS)),
                      log_inputs=os.environ.get("TRAINWELL_LOG_INPUTS") or None)  # fmt: skip
