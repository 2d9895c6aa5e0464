"""End to end: the trust features every run now has (audit, guarantees, reproduce, fairness, explanations,
report), driven through `trainwell.train` and the CLI on small planted datasets whose right answer is known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference

import trainwell
from trainwell.artifacts import file_digest
from trainwell.config import AuditConfig
from trainwell.data.audit import run_audit
from trainwell.errors import UserError
from trainwell.run import Run

GUARANTEES = ["preparation_fitted_on_train_only", "test_evaluated_once", "no_rows_shared_across_splits",
              "no_leakage_error", "provenance_recorded"]  # fmt: skip
MITIGATIONS = {"none", "reweighing", "exponentiated_gradient", "threshold_optimizer"}


def _csv(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _guarantees(run_dir: Path) -> dict[str, dict[str, Any]]:
    block = _json(run_dir / "run.json")["guarantees"]
    assert [i["name"] for i in block["items"]] == GUARANTEES
    return {i["name"]: i for i in block["items"]} | {"all_ok": block["all_ok"]}


def _noisy_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two honest features and a label that depends on them with noise (no single feature predicts it)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = np.where(x1 + x2 + rng.normal(0, 0.7, n) > 0, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "label": label})


# ---------------------------------------------------------------- leakage stops training


def test_leaked_target_copy_stops_train_until_fail_on_never(cli, tmp_path: Path) -> None:
    frame = _noisy_frame()
    frame["decision"] = frame["label"].map({"yes": "approved", "no": "rejected"})  # the label under other words
    data = _csv(tmp_path, "loans.csv", frame)
    base = ("train", "--data", data, "--target", "label", "--set", "model.name=logistic_regression", "-q")

    code, out, err = cli(*base, "--run-dir", tmp_path / "blocked")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data audit found 1 blocking finding(s)"), err
    assert 'leakage on "decision"' in lines[0] and "one-to-one relabelling of the target" in lines[0]
    assert "audit.fail_on=error" in lines[0] and "audit.fail_on=never" in lines[0]
    assert "data.drop: [decision]" in lines[0]  # the fix is named
    assert not (tmp_path / "blocked").exists()  # stopped before anything was trained or saved

    run_dir = tmp_path / "anyway"
    code, out, err = cli(*base, "--set", "audit.fail_on=never", "--run-dir", run_dir)
    assert code == 0, err
    guarantees = _guarantees(run_dir)
    assert guarantees["all_ok"] is False
    assert guarantees["no_leakage_error"]["ok"] is False
    assert '"decision"' in guarantees["no_leakage_error"]["detail"]
    assert all(guarantees[name]["ok"] is True for name in GUARANTEES if name != "no_leakage_error")
    assert "guarantee no_leakage_error: FAILED" in out
    audit = _json(run_dir / "metrics.json")["audit"]
    leaks = [f for f in audit["findings"] if f["check"] == "leakage"]
    assert [(f["column"], f["severity"]) for f in leaks] == [("decision", "error")]
    assert leaks[0]["evidence"]["mapping"] == {"approved": "yes", "rejected": "no"}
    assert audit["counts"]["error"] == 1
    # the leaked column made the model perfect: exactly the inflated score the audit warned about
    assert _json(run_dir / "metrics.json")["test"]["accuracy"] == 1.0


def test_audit_exits_3_on_a_numeric_target_code(cli, tmp_path: Path) -> None:
    frame = _noisy_frame()
    frame["outcome_code"] = (frame["label"] == "yes").astype(int) * 7 + 3  # 3 or 10: the class, renumbered
    data = _csv(tmp_path, "codes.csv", frame)
    code, out, err = cli("audit", data, "--target", "label", "--json", "--fail-on", "error")
    assert code == 3, err
    report = json.loads(out)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [(f["check"], f["column"]) for f in errors] == [("leakage", "outcome_code")]
    assert report["counts"]["error"] == 1
    code, _, err = cli("audit", data, "--target", "label", "--fail-on", "never")
    assert code == 0, err


# ---------------------------------------------------------------- guarantees and reproduce


def test_clean_run_guarantees_and_reproduce(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "iris"
    code, out, err = cli("train", "--data", "builtin:iris", "--run-dir", run_dir, "-q")
    assert code == 0, err
    guarantees = _guarantees(run_dir)
    assert guarantees["all_ok"] is True
    assert all(guarantees[name]["ok"] is True for name in GUARANTEES)
    assert guarantees["test_evaluated_once"]["detail"] == "the test split was evaluated 1 time(s)"
    # the CLI summary ends with the diagnosis and the guarantees
    assert "diagnosis: " in out and "guarantees: all 5 checks passed" in out
    verdict = _json(run_dir / "metrics.json")["diagnosis"]["verdict"]
    assert f"diagnosis: {verdict}" in out

    code, out, err = cli("reproduce", run_dir)
    assert code == 0, out + err
    assert "reproduced: all" in out and "metrics match exactly, on the same data" in out

    tampered = tmp_path / "tampered"
    shutil.copytree(run_dir, tampered)
    metrics = _json(tampered / "metrics.json")
    true_accuracy = metrics["test"]["accuracy"]
    metrics["test"]["accuracy"] = 0.123
    (tampered / "metrics.json").write_text(json.dumps(metrics))
    code, out, err = cli("reproduce", tampered)  # the manifest catches the edit before anything runs
    assert code == 2 and "metrics.json" in err and ("changed" in err or "truncated" in err), out + err
    info = _json(tampered / "run.json")  # re-sealed, as a run whose numbers do not reproduce would be
    info["manifest"]["metrics.json"] = {"sha256": file_digest(tampered / "metrics.json"),
                                        "bytes": (tampered / "metrics.json").stat().st_size}  # fmt: skip
    (tampered / "run.json").write_text(json.dumps(info))
    code, out, err = cli("reproduce", tampered)
    assert code == 3, out + err
    assert "reproduced" not in out and "data changed" not in out
    assert "test.accuracy" in out and "0.123" in out and str(true_accuracy) in out
    assert out.count("test.") == 1  # only the edited metric differs


# ---------------------------------------------------------------- audit command


def test_audit_command_id_column_and_duplicates(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"customer_id": rng.permutation(np.arange(10_000, 10_000 + n)),
                          "age": rng.integers(18, 80, n), "balance": rng.normal(1000, 300, n).round(2),
                          "plan": rng.choice(["basic", "plus", "pro"], n)})  # fmt: skip
    frame["churn"] = np.where(rng.random(n) < 0.3 + 0.3 * (frame["plan"] == "basic"), "yes", "no")
    frame = pd.concat([frame, frame.iloc[:10]], ignore_index=True)  # 10 exact duplicate rows
    data = _csv(tmp_path, "customers.csv", frame)

    code, out, err = cli("audit", data, "--target", "churn")
    assert code == 0, err  # the command's own default is --fail-on never
    assert "customer_id" in out and "id_like" in out

    code, out, err = cli("audit", data, "--target", "churn", "--json", "--set", "prepare.drop_duplicates=false")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["counts"]) == {"error", "warning", "info"}
    assert report["counts"]["warning"] == sum(f["severity"] == "warning" for f in report["findings"])
    by_check = {f["check"]: f for f in report["findings"]}
    id_like = by_check["id_like"]
    assert id_like["column"] == "customer_id" and id_like["severity"] == "warning"
    assert id_like["evidence"]["distinct"] == n and id_like["evidence"]["rows"] == n + 10
    dup = by_check["duplicates"]
    assert dup["severity"] == "warning" and dup["evidence"]["duplicates"] == 10
    assert dup["evidence"]["rows"] == list(range(n, n + 10))

    code, _, err = cli("audit", data, "--target", "churn", "--fail-on", "warning")
    assert code == 3, err
    code, _, err = cli("audit", data, "--target", "churn", "--fail-on", "never")
    assert code == 0, err
    code, _, err = cli("audit", data, "--target", "churn", "--fail-on", "sometimes")
    assert code == 2 and err.startswith("error: --fail-on must be error, warning or never")


# ---------------------------------------------------------------- future timestamps


def _timed_frame(n: int = 300, seed: int = 1, *, later: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label_time = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    shift = pd.to_timedelta(rng.integers(1, 30, n), unit="D")
    x = rng.normal(size=n)
    return pd.DataFrame({
        "x": x,
        "event_time": (label_time + shift if later else label_time - shift).strftime("%Y-%m-%d"),
        "label_time": label_time.strftime("%Y-%m-%d"),
        "label": np.where(x + rng.normal(0, 0.8, n) > 0, "yes", "no"),
    })  # fmt: skip


def test_future_timestamp_after_label_time_is_a_user_error(tmp_path: Path) -> None:
    config = {"data": {"target": "label"}, "model": {"name": "logistic_regression"},
              "audit": {"label_time_column": "label_time"}}  # fmt: skip
    frame = _timed_frame(later=True)
    with pytest.raises(UserError, match=r'future_timestamp on "event_time": 300 rows \(100.0%\) have event_time after '
                                        "label_time") as caught:  # fmt: skip
        trainwell.train(config, data=frame, run_dir=tmp_path / "run", quiet=True)
    assert "audit.fail_on=error" in str(caught.value)
    assert not (tmp_path / "run").exists()

    # the control: the same columns with event_time before the label time audit clean
    findings = run_audit(_timed_frame(later=False), target="label", config=AuditConfig(
        label_time_column="label_time"))  # fmt: skip
    assert not [f for f in findings if f.check in ("future_timestamp", "leakage")]


# ---------------------------------------------------------------- fairness


def _biased_frame(n: int = 600, seed: int = 7) -> pd.DataFrame:
    """Group b has a higher feature mean and a direct label bonus: the base model selects it more often."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n)
    b = group == "b"
    x1 = rng.normal(0.6 * b, 1.0)
    x2 = rng.normal(size=n)
    label = np.where(x1 + 0.5 * x2 + 0.8 * b + rng.normal(0, 0.8, n) > 0.6, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "label": label})


FAIR_CONFIG = {"data": {"target": "label"}, "model": {"name": "logistic_regression"},
               "fairness": {"sensitive": ["group"]}}  # fmt: skip


@pytest.fixture(scope="module")
def fair_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return trainwell.train(FAIR_CONFIG, data=_biased_frame(), run_dir=tmp_path_factory.mktemp("fair") / "run",
                           quiet=True)  # fmt: skip


def test_fairness_measured_on_the_run_predictions(fair_run: Run) -> None:
    frame = _biased_frame()
    assert not frame.duplicated().any()  # so predictions.csv row positions are positions in `frame`
    assert "group" not in fair_run.info["input_columns"]
    assert sorted(fair_run.info["input_columns"]) == ["x1", "x2"]
    block = fair_run.metrics["fairness"]
    assert block["sensitive"] == ["group"] and block["mitigation"] == "none" and block["in_features"] is False

    pred = pd.read_csv(fair_run.dir / "predictions.csv")
    test = pred[pred["split"] == "test"]
    assert len(test) == block["test"]["overall"]["count"]
    assert (frame["label"].iloc[test["row"]].to_numpy() == test["y_true"].to_numpy()).all()
    expected = demographic_parity_difference(
        (test["y_true"] == "yes").astype(int), (test["y_pred"] == "yes").astype(int),
        sensitive_features=frame["group"].iloc[test["row"]].to_numpy(),
    )  # fmt: skip
    assert block["test"]["demographic_parity_difference"] == pytest.approx(expected, abs=1e-12)
    assert expected > 0.1  # the planted bias shows up through x1 even with group out of the features
    groups = {r["group"]["group"]: r for r in block["test"]["by_group"]}
    assert set(groups) == {"a", "b"} and groups["b"]["selection_rate"] > groups["a"]["selection_rate"]
    assert sum(r["count"] for r in groups.values()) == len(test)

    tradeoff = {row["method"]: row for row in block["tradeoff"]}
    assert set(tradeoff) == MITIGATIONS and block["tradeoff_split"] == "validation"
    for row in tradeoff.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["demographic_parity_difference"] <= 1
    # the constrained methods are built to narrow the selection-rate gap of the unmitigated model
    assert tradeoff["exponentiated_gradient"]["demographic_parity_difference"] < (
        tradeoff["none"]["demographic_parity_difference"])  # fmt: skip


def test_fairness_options(fair_run: Run, tmp_path: Path) -> None:
    frame = _biased_frame()
    no_compare = FAIR_CONFIG | {"fairness": {"sensitive": ["group"], "compare": False}}

    weighted = trainwell.train(no_compare, data=frame, run_dir=tmp_path / "rw", quiet=True,
                               **{"fairness.mitigation": "reweighing"})  # fmt: skip
    assert weighted.metrics["fairness"]["mitigation"] == "reweighing"
    assert "tradeoff" not in weighted.metrics["fairness"]
    assert weighted.config.fairness.mitigation == "reweighing"
    # the same rows and split, different sample weights: the fitted coefficients must differ
    coef = {r["feature"]: r["coefficient"] for r in weighted.metrics["model_importance"]["features"]}
    base = {r["feature"]: r["coefficient"] for r in fair_run.metrics["model_importance"]["features"]}
    assert coef.keys() == base.keys() == {"x1", "x2"}
    assert abs(coef["x1"] - base["x1"]) > 1e-3

    kept = trainwell.train(no_compare, data=frame, run_dir=tmp_path / "kept", quiet=True,
                           **{"fairness.keep_in_features": True})  # fmt: skip
    assert "group" in kept.info["input_columns"] and kept.metrics["fairness"]["in_features"] is True

    with pytest.raises(UserError, match='fairness.sensitive: column "nope" is not in'):
        trainwell.train(FAIR_CONFIG, data=frame, run_dir=tmp_path / "bad", quiet=True,
                        **{"fairness.sensitive": ["nope"]})  # fmt: skip
    assert not (tmp_path / "bad").exists()


def test_report_sections_and_rebuild(cli, fair_run: Run) -> None:
    path = fair_run.dir / "report.html"
    html = path.read_text()
    for anchor in ("guarantees", "fairness", "audit", "diagnosis"):
        assert f'id="{anchor}"' in html, anchor
    path.write_text("stale")
    code, out, err = cli("report", fair_run.dir)
    assert code == 0, err
    assert "report written to" in out
    rebuilt = path.read_text()
    assert rebuilt != "stale" and all(f'id="{a}"' in rebuilt for a in ("guarantees", "fairness", "audit", "diagnosis"))


# ---------------------------------------------------------------- explanations


def _signal_frame(n: int = 300, seed: int = 5) -> pd.DataFrame:
    """Only `signal` carries the label (with noise, so it is not flagged as leakage); three noise columns.

    The first three rows have a strongly positive or negative signal so their explanation is unambiguous.
    """
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    signal[:3] = [2.5, -2.5, 2.2]
    label = np.where(signal + rng.normal(0, 0.5, n) > 0, "yes", "no")
    label[:3] = ["yes", "no", "yes"]
    noise = {f"noise{i}": rng.normal(size=n) for i in range(1, 4)}
    return pd.DataFrame({"noise1": noise["noise1"], "signal": signal, **{k: noise[k] for k in ("noise2", "noise3")},
                         "label": label})  # fmt: skip


@pytest.mark.parametrize(("model", "method"), [("logistic_regression", "linear"), ("lightgbm", "tree_shap")])
def test_explanations_find_the_signal(cli, tmp_path: Path, model: str, method: str) -> None:
    frame = _signal_frame()
    run = trainwell.train({"data": {"target": "label"}, "model": {"name": model}}, data=frame,
                          run_dir=tmp_path / "run", quiet=True)  # fmt: skip
    importance = run.metrics["feature_importance"]
    assert importance["method"] == "permutation" and importance["split"] == "validation"
    table = importance["features"]
    assert [r["rank"] for r in table] == [1, 2, 3, 4]
    assert table[0]["feature"] == "signal" and table[0]["importance"] > 0.2
    assert all(r["importance"] < table[0]["importance"] / 4 for r in table[1:])
    assert run.metrics["model_importance"]["method"] == method
    assert run.metrics["model_importance"]["features"][0]["feature"] == "signal"

    rows = run.explain(frame.head(3))
    assert len(rows) == 3
    assert [r["prediction"] for r in rows] == ["yes", "no", "yes"] == list(run.predict(frame.head(3)))
    for row in rows:
        assert row["method"] == method and len(row["contributions"]) == 4  # top_k 5, but only 4 features
        assert row["contributions"][0]["feature"] == "signal", row
        assert row["contributions"][0]["contribution"] > 0  # it pushes toward the predicted class

    data = _csv(tmp_path, "rows.csv", frame)
    code, out, err = cli("explain", run.dir, data, "--row", "0", "--top", "2")
    assert code == 0, err
    assert "row 0: prediction yes" in out and "signal" in out
    code, out, err = cli("explain", run.dir, data, "--row", "99999")
    assert code == 2
    assert err.startswith(f"error: {data} has 300 rows; --row 99999 is out of range (0..299)"), err


# ---------------------------------------------------------------- regressions: markup in fixes, dropped duplicates


def test_audit_table_keeps_bracketed_fix_text(cli, tmp_path: Path) -> None:
    data = _csv(tmp_path, "const.csv", _noisy_frame().assign(region="eu"))  # a single-value column
    code, out, err = cli("audit", data, "--target", "label", "--json")
    assert code == 0, err
    fixes = [f["fix"] for f in json.loads(out)["findings"] if f["check"] == "constant"]
    assert fixes == ["drop it with data.drop: [region]"]
    code, out, err = cli("audit", data, "--target", "label")
    assert code == 0, err
    assert "constant" in out and "[region]" in out


def test_audit_reports_duplicates_with_the_default_config(cli, tmp_path: Path) -> None:
    frame = _noisy_frame()
    data = _csv(tmp_path, "dups.csv", pd.concat([frame, frame.iloc[:20]], ignore_index=True))
    code, out, err = cli("audit", data, "--target", "label", "--json")
    assert code == 0, err
    found = [f for f in json.loads(out)["findings"] if f["check"] == "duplicates"]
    assert len(found) == 1 and found[0]["evidence"]["duplicates"] == 20 and "removed" in found[0]["message"]
