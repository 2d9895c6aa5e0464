"""The command line: every command, exit codes, and one clear line for each kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml


def test_zero_config_train_predict_evaluate_on_a_mixed_csv(cli, mixed_csv: Path, mixed_frame, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, out, err = cli("train", "--data", mixed_csv, "--target", "label", "--run-dir", run_dir, "-q")
    assert code == 0, err
    assert "run saved to" in out and run_dir.name in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"train", "validation", "test"}
    assert metrics["test"]["accuracy"] >= 0.8
    for name in ("config.yaml", "run.json", "predictions.csv", "model/model.json", "model/preparer.skops"):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "complete" and info["schema"]["city"] == "categorical"
    assert sum(s["rows"] for s in info["splits"].values()) == info["data"]["rows"] - info["data"]["duplicates_removed"]

    new = mixed_frame(50, seed=9)
    new.loc[0, "city"] = "marseille"  # a category never seen in training
    new_path = tmp_path / "new.csv"
    new.drop(columns="label").to_csv(new_path, index=False)
    out_csv = tmp_path / "pred.csv"
    code, _, err = cli("predict", run_dir, new_path, "--output", out_csv)
    assert code == 0, err
    pred = pd.read_csv(out_csv)
    assert list(pred.columns) == ["prediction", "proba_no", "proba_yes"] and len(pred) == 50
    np.testing.assert_allclose(pred[["proba_no", "proba_yes"]].sum(axis=1), 1.0, atol=1e-9)

    labelled = tmp_path / "labelled.csv"
    new.to_csv(labelled, index=False)
    code, out, err = cli("evaluate", run_dir, labelled)
    assert code == 0, err
    assert json.loads(out)["accuracy"] > 0.7


def test_config_train_with_set_override(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "data": {"source": "builtin:iris"}, "model": {"name": "knn"}}))
    code, _, err = cli("train", cfg, "--set", "model.n_neighbors=3", "--set", "seed=5", "--run-dir", tmp_path / "r")
    assert code == 0, err
    resolved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert resolved["model"] == {"name": "knn", "n_neighbors": 3, "weights": "uniform", "metric": "minkowski"}
    assert resolved["seed"] == 5


def test_init_writes_a_config_that_trains(cli, mixed_csv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "starter.yaml"
    code, _, err = cli("init", mixed_csv, "--target", "label", "--output", cfg)
    assert code == 0, err
    text = cfg.read_text()
    assert "#   city: categorical" in text and "task: classification" in text and "# Learning rate." in text
    code, _, err = cli("train", cfg, "--set", "model.name=logistic_regression", "--run-dir", tmp_path / "r", "-q")
    assert code == 0, err
    code, _, err = cli("init", mixed_csv, "--target", "label", "--output", cfg)
    assert code == 2 and "already exists" in err


def test_listings(cli) -> None:
    code, out, _ = cli("datasets")
    assert code == 0 and all(f"builtin:{n}" in out for n in ("iris", "wine", "digits", "diabetes", "mnist"))
    code, out, _ = cli("models")
    assert code == 0 and all(n in out for n in ("lightgbm", "mlp", "cnn", "svm", "knn", "random_forest"))


def _write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def bad_args(case: str, t: Path, mixed_frame) -> list:
    """Command-line arguments for one kind of bad input."""
    mixed = mixed_frame(60)
    if case == "empty file":
        (t / "empty.csv").write_text("")
        return ["--data", t / "empty.csv", "--target", "y"]
    frames = {"one class": mixed.assign(label="yes"), "all-NaN column": mixed.assign(age=np.nan)}
    data = _write(t, "d.csv", frames.get(case, mixed))
    return {
        "missing file": ["--data", t / "nope.csv", "--target", "y"],
        "unknown target": ["--data", data, "--target", "lable"],
        "one class": ["--data", data, "--target", "label"],
        "all-NaN column": ["--data", data, "--target", "label"],
        "text target for regression": ["--data", data, "--target", "label", "--task", "regression"],
        "unknown model": ["--data", "builtin:iris", "--model", "lightgbn"],
        "bad model param": ["--data", "builtin:iris", "--model", "mlp", "--set", "model.hiden_sizes=[4]"],
        "wrong type": ["--data", "builtin:iris", "--set", "train.epochs=lots"],
        "unknown key": ["--data", "builtin:iris", "--set", "split.tset=0.2"],
        "unknown dataset": ["--data", "builtin:irsi"],
    }[case]


BAD_INPUTS = {
    "missing file": r"nope\.csv",
    "empty file": r"empty\.csv",
    "unknown target": r'"lable".*did you mean "label"',
    "one class": r"single class",
    "all-NaN column": r'"age"',
    "text target for regression": r'"label" is not numeric',
    "unknown model": r'did you mean "lightgbm"',
    "bad model param": r'model.hiden_sizes.*did you mean "hidden_sizes"',
    "wrong type": r'"train.epochs"',
    "unknown key": r'did you mean "test"',
    "unknown dataset": r'did you mean "builtin:iris"',
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_clear_line_and_exit_2(cli, tmp_path: Path, mixed_frame, case: str) -> None:
    code, _, err = cli("train", *bad_args(case, tmp_path, mixed_frame), "--run-dir", tmp_path / "run")
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(BAD_INPUTS[case], err), err
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_predict_file_missing_a_column(cli, mixed_csv: Path, mixed_frame, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, _, err = cli("train", "--data", mixed_csv, "--target", "label", "--model", "decision_tree",
                       "--run-dir", run_dir)  # fmt: skip
    assert code == 0, err
    partial = _write(tmp_path, "partial.csv", mixed_frame(20).drop(columns=["label", "income"]))
    code, _, err = cli("predict", run_dir, partial, "--output", tmp_path / "p.csv")
    assert code == 2 and '"income"' in err and "partial.csv" in err
    assert not (tmp_path / "p.csv").exists()
    code, _, err = cli("evaluate", run_dir, partial)
    assert code == 2 and 'no target column "label"' in err
    code, _, err = cli("predict", tmp_path, partial, "--output", tmp_path / "p.csv")
    assert code == 2 and "not a trainwell run" in err


def test_existing_run_is_never_overwritten(cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert cli("train", "--data", "builtin:iris", "--model", "knn", "--run-dir", run_dir)[0] == 0
    before = (run_dir / "metrics.json").read_bytes()
    code, _, err = cli("train", "--data", "builtin:iris", "--model", "svm", "--run-dir", run_dir)
    assert code == 2 and "already exists" in err
    assert (run_dir / "metrics.json").read_bytes() == before
