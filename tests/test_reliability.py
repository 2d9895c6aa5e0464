"""Nothing lost, nothing half-saved, nothing loaded that changed: run folders, outputs and resume.

The kill tests run `trainwell` as a real subprocess and stop it with SIGKILL, SIGINT or SIGTERM at a random
point, then resume; a deterministic resumed run must end with the uninterrupted run's weights, bit for bit.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

import trainwell
from trainwell.errors import UserError
from trainwell.run import Run
from trainwell.track.rundir import claim, staging_path, unfinished_runs

SMALL = {"data": {"source": "builtin:iris"}, "model": {"name": "logistic_regression"},
         "validation": {"explain": False}, "fairness": {"compare": False}}  # fmt: skip


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trainwell.train(SMALL, run_dir=tmp_path_factory.mktemp("runs") / "iris", quiet=True).dir


@pytest.fixture
def run_copy(saved_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the saved run, free to damage."""
    return Path(shutil.copytree(saved_run, tmp_path / "run"))


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).data.head(10)
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- sealed runs: manifest, format, staging


def test_a_saved_run_carries_a_manifest_of_every_file_it_loads(saved_run: Path) -> None:
    info = json.loads((saved_run / "run.json").read_text())
    assert info["status"] == "complete" and info["format"] == 1
    listed = set(info["manifest"])
    assert {"config.yaml", "metrics.json", "model/model.json", "model/estimator.skops",
            "model/preparer.skops"} <= listed  # fmt: skip
    assert "run.json" not in listed and not (saved_run / "checkpoints").exists() and not (saved_run / ".lock").exists()
    assert info["test_evaluations"] == 1
    assert len(Run.load(saved_run).predict(_iris_rows(5))) == 5


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "extra"])
def test_a_changed_file_in_a_run_is_refused_with_its_name(cli, run_copy: Path, rows: Path, damage: str) -> None:
    target = run_copy / "model" / "estimator.skops"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "delete":
        target.unlink()
    else:
        target = run_copy / "model" / "extra.skops"
        target.write_bytes(b"anything")
    for command in (("predict", run_copy, rows, "--output", run_copy.parent / "p.csv"), ("evaluate", run_copy, rows)):
        code, out, err = cli(*command)
        assert code == 2, (damage, out, err)
        assert err.startswith("error:") and err.count("\n") == 1 and target.name in err, err
    assert not (run_copy.parent / "p.csv").exists()


@pytest.mark.parametrize("edit", ["newer", "no_manifest", "incomplete", "truncated_json"])
def test_run_json_from_another_version_or_damaged_is_refused(run_copy: Path, edit: str) -> None:
    path = run_copy / "run.json"
    info = json.loads(path.read_text())
    if edit == "truncated_json":
        path.write_text(path.read_text()[:50])
    else:
        if edit == "newer":
            info["format"] = 99
        elif edit == "no_manifest":
            del info["manifest"]
        else:
            info["status"] = "saving"
        path.write_text(json.dumps(info))
    words = {"newer": "newer trainwell", "no_manifest": "manifest", "incomplete": "incomplete",
             "truncated_json": "damaged"}  # fmt: skip
    with pytest.raises(UserError, match=words[edit]):
        Run.load(run_copy)


def test_an_unfinished_staging_folder_is_never_loaded_even_if_it_says_complete(run_copy: Path) -> None:
    staging = staging_path(run_copy)
    run_copy.rename(staging)  # everything in place, run.json says complete: still not a finished run
    with pytest.raises(UserError, match="unfinished run.*--resume"):
        Run.load(staging)


# ---------------------------------------------------------------- outputs: checked first, never overwritten


def test_predict_never_overwrites_without_force_nor_its_input_nor_a_run_file(cli, run_copy: Path, rows: Path,
                                                                               tmp_path: Path) -> None:  # fmt: skip
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    code, _, err = cli("predict", run_copy, rows, "--output", existing)
    assert code == 2 and "--force" in err and existing.read_text() == "keep me\n"
    code, _, err = cli("predict", run_copy, rows, "--output", existing, "--force")
    assert code == 0, err
    assert existing.read_text().startswith("prediction")

    before = rows.read_bytes()
    for forced in ((), ("--force",)):
        code, _, err = cli("predict", run_copy, rows, "--output", rows, *forced)
        assert code == 2 and "input" in err and rows.read_bytes() == before
        code, _, err = cli("predict", run_copy, rows, "--output", run_copy / "run.json", *forced)
        assert code == 2 and "inside the run folder" in err
        code, _, err = cli("predict", run_copy, rows, "--output", run_copy / "model" / "new.csv", *forced)
        assert code == 2 and "inside the run folder" in err
    assert Run.load(run_copy)  # the run is untouched: its manifest still verifies


def test_output_paths_are_checked_before_any_work(cli, rows: Path, tmp_path: Path) -> None:
    existing = tmp_path / "existing.csv"
    existing.write_text("x\n")
    code, _, err = cli("predict", tmp_path / "no-such-run", rows, "--output", existing)
    assert code == 2 and "--force" in err  # the output is refused before the run is even looked at


def test_a_bad_run_dir_fails_before_training(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trainwell.experiment as experiment

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("data was loaded although the run folder was unusable")

    monkeypatch.setattr(experiment, "load_and_split", boom)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for run_dir, words in ((busy, "not empty"), (a_file, "is a file"), (a_file / "sub", "cannot create")):
        code, _, err = cli("train", "--data", "builtin:iris", "--run-dir", run_dir, "-q")
        assert code == 2 and words in err and err.count("\n") == 1, err
    code, _, err = cli("train", "--data", "builtin:iris", "--set", "name=../escape", "-q")
    assert code == 2 and "plain name" in err
    assert not (tmp_path.parent / "escape").exists()


def test_two_processes_never_train_into_one_folder(tmp_path: Path) -> None:
    stage = claim(tmp_path / "run")
    try:
        with pytest.raises(UserError, match="another trainwell process"):
            claim(tmp_path / "run")
        with pytest.raises(UserError, match="another trainwell process"):
            claim(tmp_path / "run", resume=True)
        assert unfinished_runs(tmp_path)[0]["active"]
    finally:
        stage.release()
    assert unfinished_runs(tmp_path)[0]["active"] is None


def test_clean_lists_and_removes_stale_unfinished_runs_but_not_active_ones(cli, tmp_path: Path) -> None:
    stale = claim(tmp_path / "stale")
    (stale.checkpoints).mkdir()
    (stale.checkpoints / "checkpoint.json").write_text("{}")
    stale.release()  # as if its process died: a resumable leftover
    active = claim(tmp_path / "active")
    try:
        code, out, _ = cli("clean", tmp_path, "--dry-run")
        assert code == 0 and ".stale.partial" in out and "resumable" in out and "in use" in out
        assert staging_path(tmp_path / "stale").is_dir()
        code, out, _ = cli("clean", tmp_path)
        assert code == 0 and "deleted 1" in out
        assert not staging_path(tmp_path / "stale").exists() and active.path.is_dir()
    finally:
        active.release()


def test_a_stopped_run_without_checkpoint_is_cleared_for_a_new_start(tmp_path: Path) -> None:
    first = claim(tmp_path / "run")
    first.release()  # died before any checkpoint: nothing worth keeping
    second = claim(tmp_path / "run")
    assert second.path.is_dir()
    second.release()


def test_a_failure_while_saving_leaves_no_run_that_looks_complete(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import trainwell.run as run

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "report.html")

    monkeypatch.setattr(run, "write_report", fail)
    with pytest.raises(OSError):
        trainwell.train(SMALL, run_dir=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists() and not staging_path(tmp_path / "run").exists()


def test_a_full_disk_is_one_error_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trainwell.run as run

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "metrics.json"))

    monkeypatch.setattr(run, "write_report", full)
    code, _, err = cli("train", "--data", "builtin:iris", "--model", "knn", "--run-dir", tmp_path / "run", "-q")
    assert code == 2 and err.startswith("error: cannot write") and "No space left" in err and err.count("\n") == 1


# ---------------------------------------------------------------- killed, interrupted, resumed

NEURAL = {
    "name": "kill", "seed": 3, "data": {"source": "builtin:digits"},
    "model": {"name": "mlp", "hidden_sizes": [64], "dropout": 0.2},
    "train": {"epochs": 40, "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "scheduler": "cosine",
              "early_stopping": False, "deterministic": True, "checkpoint_every": 1},
    "validation": {"explain": False}, "audit": {"skip": ["label_noise", "leakage"]},
}  # fmt: skip


def _trainwell(*args: object) -> subprocess.Popen[str]:
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = "import sys, trainwell.cli; sys.argv[0] = 'trainwell'; trainwell.cli.main()"
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _weights(run_dir: Path) -> dict:
    return load_file(run_dir / "model" / "weights.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The neural config, and the run it gives when nothing stops it (trained in a subprocess too)."""
    folder = tmp_path_factory.mktemp("kill")
    config = folder / "kill.yaml"
    config.write_text(yaml.safe_dump(NEURAL))
    proc = _trainwell("train", config, "--run-dir", folder / "reference", "-q")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return config, folder / "reference"


def test_a_killed_training_resumes_to_the_same_weights_bit_for_bit(uninterrupted: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:  # fmt: skip
    config, reference = uninterrupted
    run_dir = tmp_path / "run"
    proc = _trainwell("train", config, "--run-dir", run_dir, "-q")
    _wait_for(staging_path(run_dir) / "checkpoints" / "checkpoint.json", proc)
    time.sleep(random.uniform(0, 0.4))  # somewhere in the middle of an epoch, or of writing a checkpoint
    proc.kill()
    proc.communicate(timeout=60)
    if run_dir.exists():  # the kill came after the last rename: a whole run
        assert Run.load(run_dir) and not staging_path(run_dir).exists()
        return
    with pytest.raises(UserError, match="unfinished run"):
        Run.load(staging_path(run_dir))

    resumed = _trainwell("train", "--resume", run_dir, "-q")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert not staging_path(run_dir).exists()
    expected, got = _weights(reference), _weights(run_dir)
    assert expected.keys() == got.keys()
    for name in expected:
        assert (expected[name] == got[name]).all(), name  # bit for bit
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == json.loads(
        (reference / "metrics.json").read_text())["test"]  # fmt: skip
    history = pd.read_csv(run_dir / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, pd.read_csv(reference / "history.csv").drop(columns="seconds"))


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_says_how_to_resume_in_one_line(uninterrupted: tuple[Path, Path], tmp_path: Path,
                                                          how: signal.Signals) -> None:  # fmt: skip
    run_dir = tmp_path / "run"
    proc = _trainwell("train", uninterrupted[0], "--run-dir", run_dir, "-q")
    _wait_for(staging_path(run_dir) / "checkpoints" / "checkpoint.json", proc)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == f"interrupted; resume it with: trainwell train --resume {run_dir}"
    assert not run_dir.exists() and (staging_path(run_dir) / "checkpoints" / "checkpoint.json").is_file()
    assert not (staging_path(run_dir) / ".lock").exists() or unfinished_runs(tmp_path)[0]["active"] is None


def test_a_killed_tuning_study_fails_its_running_trial_and_resumes(tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tk", "data": {"source": "builtin:iris"}, "model": {"name": "mlp", "hidden_sizes": [16]},
        "train": {"epochs": 150, "batch_size": 16, "early_stopping": False}, "validation": {"explain": False},
        "audit": {"skip": ["label_noise", "leakage"]}, "fairness": {"compare": False},
        "tune": {"n_trials": 1, "pruner": "none", "study_name": "tk",
                 "space": {"train.lr": {"type": "log_float", "low": 0.001, "high": 0.1}}},
    }))  # fmt: skip
    db = tmp_path / ".studies" / "tk.db"
    proc = _trainwell("tune", config, "--run-dir", tmp_path / "run", "-q")
    _wait_for(db, proc)
    deadline = time.monotonic() + 120
    while not _states(db).count("RUNNING") or not _workers(db):  # a trial has started and said who runs it
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.kill()
    proc.communicate()
    assert "RUNNING" in _states(db)
    again = _trainwell("tune", config, "--run-dir", tmp_path / "run", "-q")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    states = _states(tmp_path / "run" / "study.db")
    assert "RUNNING" not in states and states.count("COMPLETE") == 1 and "FAIL" in states


def _states(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT state FROM trials")]
        except sqlite3.OperationalError:  # the schema is still being created
            return []


def _workers(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT value_json FROM trial_user_attributes WHERE key = 'worker'")]
        except sqlite3.OperationalError:
            return []


def _iris_rows(n: int):
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).data.head(n)


# ---------------------------------------------------------------- rows to predict: said, never silently absorbed


def test_predict_rows_with_extra_reordered_wrong_or_unseen_values_are_reported(cli, mixed_frame,
                                                                               tmp_path: Path) -> None:  # fmt: skip
    run = trainwell.train({**SMALL, "data": {"target": "label"}}, data=mixed_frame(120), run_dir=tmp_path / "run",
                          quiet=True)  # fmt: skip
    rows = mixed_frame(20, seed=4).drop(columns="label")
    plain = tmp_path / "plain.csv"
    rows.to_csv(plain, index=False)
    code, _, err = cli("predict", run.dir, plain, "--output", tmp_path / "p0.csv")
    assert code == 0 and "warning" not in err

    odd = rows[list(reversed(rows.columns))].assign(notes="x")  # reordered, plus a column the model never saw
    odd["age"] = odd["age"].astype(object)
    odd.loc[0, "age"], odd.loc[1, "city"] = "forty", "marseille"
    odd_path = tmp_path / "odd.csv"
    odd.to_csv(odd_path, index=False)
    code, _, err = cli("predict", run.dir, odd_path, "--output", tmp_path / "p1.csv")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("warning: ") for line in lines)
    assert '"notes"' in lines[0] and "'forty'" in err and '"age"' in err and '"marseille"' in err
    first, second = pd.read_csv(tmp_path / "p0.csv"), pd.read_csv(tmp_path / "p1.csv")
    pd.testing.assert_frame_equal(first.iloc[2:], second.iloc[2:])  # column order changes nothing

    code, _, err = cli("predict", run.dir, odd_path.with_name("none.csv"), "--output", tmp_path / "p2.csv")
    assert code == 2 and "none.csv" in err
    rows.drop(columns="city").to_csv(tmp_path / "missing.csv", index=False)
    code, _, err = cli("predict", run.dir, tmp_path / "missing.csv", "--output", tmp_path / "p3.csv")
    assert code == 2 and '"city"' in err and not (tmp_path / "p3.csv").exists()


def test_resume_refuses_changed_data_and_a_run_that_never_started(tmp_path: Path) -> None:
    from trainwell.config import dump_config, load_config

    stage = claim(tmp_path / "run")
    (stage.path / "config.yaml").write_text(dump_config(load_config(SMALL)))
    (stage.path / "data.json").write_text(json.dumps({"fingerprint": "0" * 64}))  # another dataset's
    stage.release()
    with pytest.raises(UserError, match="changed since the run started"):
        trainwell.train(resume=tmp_path / "run", quiet=True)

    empty = claim(tmp_path / "empty")
    empty.release()
    with pytest.raises(UserError, match="holds no config.yaml"):
        trainwell.train(resume=tmp_path / "empty", quiet=True)
    with pytest.raises(UserError, match="give no config"):
        trainwell.train(SMALL, resume=tmp_path / "run")


def test_a_failing_analysis_step_is_reported_and_the_run_is_kept(tmp_path: Path, mixed_frame, monkeypatch,
                                                                 cli) -> None:  # fmt: skip
    """An explanation that breaks must not cost the trained model: the run is saved, the error listed and printed."""
    from trainwell.evaluate import explain

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planted failure in partial dependence")

    monkeypatch.setattr(explain, "partial_dependence_curves", broken)
    data = tmp_path / "mixed.csv"
    mixed_frame(300).to_csv(data, index=False)
    code, out, err = cli("train", "--data", data, "--target", "label", "--model", "logistic_regression",
                         "--run-dir", tmp_path / "run", "-q")  # fmt: skip
    assert code == 0, err
    assert "analysis step importance failed and was skipped (the model is saved)" in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["analysis_errors"] == [{"step": "importance",
                                           "error": "RuntimeError: planted failure in partial dependence"}]
    assert metrics["test"]["accuracy"] > 0.7 and "feature_importance" not in metrics


def test_partial_dependence_survives_a_column_that_is_mostly_zeros() -> None:
    """A feature that is 96% zeros made scikit-learn's partial dependence fail ("percentiles are too close")."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from trainwell.evaluate.explain import partial_dependence_curves

    rng = np.random.default_rng(0)
    n = 500
    spiky = np.where(rng.random(n) < 0.96, 0.0, rng.normal(5, 1, n))
    x = rng.normal(size=n)
    X = np.column_stack([spiky, x]).astype(np.float32)
    model = HistGradientBoostingClassifier(max_iter=20).fit(X, (x + (spiky > 0) * 2 > 0.5).astype(int))
    curves = partial_dependence_curves(model, X, ["spiky"], ["spiky", "x"], seed=0)
    grid = curves[0]["grid"]
    assert max(grid) > 3 and min(grid) == 0.0  # the whole range, the rare non-zero values included
