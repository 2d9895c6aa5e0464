"""The prediction server: answers equal `Run.predict`, inputs are checked against the training schema (422s name
the field), requests are bounded, a token guards it, no response carries a trace, and a property-based run
of schemathesis against its own OpenAPI schema finds no server error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from trainwell.errors import UserError
from trainwell.experiment import train
from trainwell.run import Run
from trainwell.serve.app import check_binding, create_app


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mixed_frame) -> tuple[Run, pd.DataFrame]:
    frame = mixed_frame(300)
    run = train(data=frame, model="logistic_regression", run_dir=tmp_path_factory.mktemp("serve") / "run",
                quiet=True, **{"data.target": "label"})  # fmt: skip
    return run, frame.drop(columns="label")


@pytest.fixture(scope="module")
def client(trained) -> TestClient:
    return TestClient(create_app(trained[0].dir, max_rows=50, max_bytes=64_000), raise_server_exceptions=False)


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_predictions_equal_the_runs_own(client: TestClient, trained) -> None:
    run, rows = trained
    rows = rows.head(20)
    answer = client.post("/predict", json={"records": _records(rows)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [str(p) for p in run.predict(rows)]
    columns = {c: rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in rows.columns}
    proba = client.post("/predict_proba", json={"columns": columns})
    assert proba.status_code == 200, proba.text
    np.testing.assert_allclose(proba.json()["probabilities"], run.predict_proba(rows).to_numpy(), atol=1e-9)
    assert proba.json()["classes"] == run.classes


def test_metadata_and_openapi_show_the_real_fields(client: TestClient, trained) -> None:
    run = trained[0]
    meta = client.get("/metadata").json()
    assert [i["name"] for i in meta["inputs"]] == run.info["input_columns"]
    city = next(i for i in meta["inputs"] if i["name"] == "city")
    assert city["type"] == "categorical" and "paris" in city["categories"]
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    assert set(record["properties"]) == set(run.info["input_columns"]) and set(record["required"]) == set(
        run.info["input_columns"])  # fmt: skip
    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda r: r.pop("age"), "age", "Field required"),
        (lambda r: r.update(age="old"), "age", "valid number"),
        (lambda r: r.update(city="atlantis"), "city", "never seen in training"),
    ],
)
def test_bad_rows_get_a_422_naming_the_field(client: TestClient, trained, change, field: str, message: str) -> None:
    rows = _records(trained[1].head(3))
    change(rows[1])
    answer = client.post("/predict", json={"records": rows})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(field in map(str, d["loc"]) and message in d["msg"] and 1 in d["loc"] for d in detail), detail
    assert "Traceback" not in answer.text


def test_a_bad_value_in_a_columns_request_names_its_column_and_row(client: TestClient, trained) -> None:
    rows = trained[1].head(3)
    columns = {c: rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in rows.columns}
    columns["income"][2] = "lots"
    answer = client.post("/predict", json={"columns": columns})
    assert answer.status_code == 422, answer.text
    assert any(d["loc"][-2:] == ["income", 2] for d in answer.json()["detail"]), answer.json()


def test_requests_are_bounded(client: TestClient, trained) -> None:
    rows = _records(trained[1].head(1)) * 51  # max_rows is 50
    assert client.post("/predict", json={"records": rows}).status_code == 422
    big = client.post("/predict", content=b'{"records": [' + b" " * 70_000 + b"]}",
                      headers={"content-type": "application/json"})  # fmt: skip
    assert big.status_code == 413 and "fewer rows" in big.json()["detail"]
    assert client.post("/predict", json={"records": [], "columns": {}}).status_code == 422
    garbled = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert garbled.status_code == 422


def test_a_token_guards_everything_but_health(trained) -> None:
    client = TestClient(create_app(trained[0].dir, token="s3cret"))
    rows = {"records": _records(trained[1].head(2))}
    assert client.post("/predict", json=rows).status_code == 401
    assert client.post("/predict", json=rows, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/predict", json=rows, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/metadata").status_code == 401 and client.get("/health").status_code == 200
    with pytest.raises(UserError, match="needs a bearer token"):
        check_binding("0.0.0.0", None)
    assert check_binding("127.0.0.1", None) is None


def test_an_unsupervised_run_serves_clusters(tmp_path: Path) -> None:
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(120, n_features=3, centers=3, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    run = train(data=frame, run_dir=tmp_path / "k", quiet=True, **{"data.task": "clustering", "model.n_clusters": 3})
    client = TestClient(create_app(run.dir))
    answer = client.post("/predict", json={"columns": {c: frame[c].head(10).tolist() for c in frame}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == run.predict(frame.head(10)).tolist()
    assert client.post("/predict_proba", json={"columns": {c: [0.0] for c in frame}}).status_code == 400


def test_logged_inputs_feed_the_monitoring_endpoint(trained, tmp_path: Path) -> None:
    run, rows = trained
    log = tmp_path / "inputs.jsonl"
    client = TestClient(create_app(run.dir, log_inputs=log))
    assert client.get("/monitoring").json()["status"] == "no_data"
    for start in range(0, 200, 50):
        assert client.post("/predict", json={"records": _records(rows.iloc[start:start + 50])}).status_code == 200
    assert len(log.read_text().splitlines()) == 200
    assert client.get("/monitoring").json()["status"] in ("ok", "warning")  # the training distribution itself
    shifted = rows.head(200).assign(age=rows["age"].head(200) + 40)
    for start in range(0, 200, 50):
        client.post("/predict", json={"records": _records(shifted.iloc[start:start + 50])})
    report = client.get("/monitoring").json()
    assert report["status"] == "alert" and any(f["column"] == "age" and f["status"] == "drift"
                                               for f in report["features"])  # fmt: skip
    assert TestClient(create_app(run.dir)).get("/monitoring").status_code == 404


def test_schemathesis_finds_no_server_error(client: TestClient) -> None:
    """Property-based requests generated from the server's own OpenAPI schema: never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    failures: list[tuple[str, int, str]] = []
    calls: list[int] = []

    def check_operation(op: schemathesis.APIOperation) -> None:
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call()
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((op.label, response.status_code, response.text[:200]))

        check()

    for operation in schema.get_all_operations():
        check_operation(operation.ok())
    assert len(calls) >= 50 and not failures, (len(calls), failures)
