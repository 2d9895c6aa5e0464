"""Drift monitoring: a shifted column is found and named, unchanged data raises no alert, predictions drift with
their inputs, labelled rows report performance, and `trainwell monitor` writes the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainwell.errors import UserError
from trainwell.evaluate.drift import _psi, drift_report, reference_profile
from trainwell.experiment import train


def table(n: int, seed: int, shift: float = 0.0, paris: float = 0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    city = rng.choice(["paris", "lyon", "nice"], n, p=[paris, (1 - paris) / 2, (1 - paris) / 2])
    noise = rng.normal(size=n)
    label = np.where(x + (city == "paris") + rng.normal(0, 0.5, n) > 0.5, "yes", "no")
    return pd.DataFrame({"x": x, "city": city, "noise": noise, "label": label})


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    same = np.array([0.25, 0.25, 0.5])
    assert _psi(same, same) == pytest.approx(0.0)
    assert 0 < _psi(same, np.array([0.3, 0.25, 0.45])) < _psi(same, np.array([0.6, 0.2, 0.2]))


def test_shifted_columns_are_named_and_stable_ones_are_not() -> None:
    reference = table(2000, seed=0)
    schema = {"x": "numeric", "city": "categorical", "noise": "numeric"}
    profile = reference_profile(reference, schema, reference["label"].to_numpy(), "classification")
    json.dumps(profile)  # saved in the run as JSON
    same = drift_report(profile, table(800, seed=1), table(800, seed=1)["label"].to_numpy(), "classification")
    assert same["status"] == "ok", same["features"]
    moved = table(800, seed=2, shift=1.0, paris=0.8)
    report = drift_report(profile, moved, moved["label"].to_numpy(), "classification")
    status = {f["column"]: f["status"] for f in report["features"]}
    assert report["status"] == "alert" and status["x"] == "drift" and status["city"] == "drift"
    assert status["noise"] == "ok" and report["features"][0]["column"] in ("x", "city")  # sorted by PSI
    assert report["predictions"]["status"] in ("warning", "drift")  # more "yes" once x and paris rise
    gone = drift_report(profile, moved.drop(columns="noise"), moved["label"].to_numpy(), "classification")
    assert next(f for f in gone["features"] if f["column"] == "noise")["status"] == "missing"


def test_monitor_command_reports_drift_and_performance(cli, tmp_path: Path) -> None:
    run = train(data=table(600, seed=0), model="logistic_regression", run_dir=tmp_path / "run", quiet=True,
                **{"data.target": "label"})  # fmt: skip
    assert (run.dir / "drift_reference.json").is_file()
    new = tmp_path / "new.csv"
    table(400, seed=3, shift=1.5).to_csv(new, index=False)
    code, out, err = cli("monitor", run.dir, new)
    assert code == 0, err
    assert "ALERT" in out and "x" in out and (run.dir / "drift.html").is_file()
    page = (run.dir / "drift.html").read_text()
    assert "Population stability index" in page and "Performance on the new labelled rows" in page
    elsewhere = tmp_path / "drift.html"
    elsewhere.write_text("mine")
    code, _, err = cli("monitor", run.dir, new, "-o", elsewhere)
    assert code == 2 and elsewhere.read_text() == "mine"  # an existing file is never replaced without --force
    assert cli("monitor", run.dir, new, "-o", elsewhere, "--force")[0] == 0 and "Population" in elsewhere.read_text()
    report = run.drift(table(400, seed=4))
    assert report["status"] == "ok" and report["performance"]["accuracy"]["now"] > 0.7
    (run.dir / "drift_reference.json").unlink()
    with pytest.raises(UserError, match="no drift_reference.json"):
        run.drift(table(10, seed=5))
