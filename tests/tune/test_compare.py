"""Model comparison: candidates ranked on validation (or k-fold means), the leader kept and tested once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import Field
from sklearn.datasets import make_regression
from typer.testing import CliRunner

import trainwell.config
from trainwell import pipeline
from trainwell.cli import app as trainwell_app
from trainwell.config import CompareConfig, load_config
from trainwell.errors import UserError
from trainwell.models.fitted import Fitted
from trainwell.tune.compare import DEFAULT_CANDIDATES, candidates, compare

FAST = ["logistic_regression", "knn", "decision_tree", "lightgbm"]
BREAST_CANCER = {"data": {"source": "builtin:breast_cancer"}}


@pytest.fixture
def compare_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """ExperimentConfig with a `compare` section; does nothing once config.py declares it."""
    if "compare" in trainwell.config.ExperimentConfig.model_fields:
        return

    class WithCompare(trainwell.config.ExperimentConfig):
        compare: CompareConfig = Field(default_factory=CompareConfig, description="Model comparison.")

    monkeypatch.setattr(trainwell.config, "ExperimentConfig", WithCompare)


def test_leaderboard_is_sorted_and_the_leader_is_kept(tmp_path: Path) -> None:
    run = compare(BREAST_CANCER, run_dir=tmp_path / "run", quiet=True, models=FAST)
    board = run.metrics["leaderboard"]

    assert [row["rank"] for row in board] == [1, 2, 3, 4] and {row["model"] for row in board} == set(FAST)
    scores = [row["accuracy"] for row in board]
    assert scores == sorted(scores, reverse=True)
    assert all(row["scored_on"] == "validation" and row["fit_seconds"] >= 0 for row in board)
    leader = board[0]
    assert run.info["model"] == leader["model"] == run.metrics["comparison"]["kept"]
    assert run.metrics["validation"]["accuracy"] == leader["accuracy"]  # the kept model is the one ranked
    assert run.config.model.name == leader["model"] and run.config.model.params == leader["params"]
    assert run.metrics["test"]["accuracy"] >= 0.93 and run.info["test_evaluations"] == 1
    assert json.loads((run.dir / "metrics.json").read_text())["leaderboard"] == board
    assert board[-1]["model"] == "decision_tree"  # one tree loses to every ensemble-free model here


def test_failing_candidate_is_recorded_and_ranked_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline.fit_candidate

    def flaky(cfg: Any, *args: Any, **kwargs: Any) -> Fitted:
        if cfg.model.name == "knn":
            raise RuntimeError("out of memory")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(pipeline, "fit_candidate", flaky)
    run = compare(BREAST_CANCER, run_dir=tmp_path / "run", quiet=True, models=["knn", "logistic_regression"])
    first, last = run.metrics["leaderboard"]
    assert first["model"] == "logistic_regression" and first["rank"] == 1
    assert last == {"rank": None, "model": "knn", "error": "RuntimeError: out of memory",
                    "fit_seconds": last["fit_seconds"]}  # fmt: skip


def test_the_configured_model_competes_with_its_own_parameters(tmp_path: Path) -> None:
    config = {**BREAST_CANCER, "model": {"name": "decision_tree", "max_depth": 1}}
    run = compare(config, run_dir=tmp_path / "run", quiet=True, models=["decision_tree", "knn"])
    stump = next(row for row in run.metrics["leaderboard"] if row["model"] == "decision_tree")
    assert stump["params"]["max_depth"] == 1 and stump["rank"] == 2  # a stump loses to knn here


def test_kfold_ranks_on_cross_validation_means(tmp_path: Path) -> None:
    config = {"data": {"source": "builtin:iris"}, "validation": {"strategy": "kfold", "folds": 3}}
    run = compare(config, run_dir=tmp_path / "run", quiet=True, models=["logistic_regression", "decision_tree"])
    board, cv = run.metrics["leaderboard"], run.metrics["cross_validation"]
    assert all(row["scored_on"] == "cross_validation" and 0 <= row["accuracy_std"] < 0.2 for row in board)
    assert board[0]["accuracy"] == cv["mean"]["accuracy"] >= 0.9 and cv["n_folds"] == 3
    assert run.info["model"] == board[0]["model"]


@pytest.mark.usefixtures("compare_section")
def test_regression_ranks_errors_ascending_and_adds_a_top_k_ensemble(tmp_path: Path) -> None:
    X, y = make_regression(n_samples=240, n_features=5, n_informative=3, noise=15.0, random_state=0)
    frame = {f"f{i}": X[:, i] for i in range(5)} | {"y": y}
    settings = {"metric": "rmse", "ensemble_top_k": 2, "models": ["linear_regression", "knn", "decision_tree"]}
    run = compare({"data": {"target": "y"}, "compare": settings}, data=pd.DataFrame(frame),
                  run_dir=tmp_path / "run", quiet=True)  # fmt: skip
    board = run.metrics["leaderboard"]
    rmse = [row["rmse"] for row in board]
    assert rmse == sorted(rmse) and run.metrics["comparison"]["greater_is_better"] is False
    by_model = {row["model"]: row for row in board}
    assert set(by_model) == {"linear_regression", "knn", "decision_tree", "voting"}
    top2 = [row["model"] for row in board if row["model"] != "voting"][:2]
    assert by_model["voting"]["params"]["models"] == top2
    assert board[0]["model"] == "linear_regression" and board[0]["r2"] > 0.75  # the data is linear plus noise


@pytest.mark.usefixtures("compare_section")
def test_time_budget_stops_new_candidates_and_config_yaml_works(tmp_path: Path) -> None:
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump({**BREAST_CANCER, "compare": {"time_budget_s": 1e-6, "models": FAST}}))
    run = compare(path, run_dir=tmp_path / "run", quiet=True)
    assert [row["model"] for row in run.metrics["leaderboard"]] == ["logistic_regression"]  # the first always runs
    skipped = run.metrics["comparison"]["skipped"]
    assert [s["model"] for s in skipped] == FAST[1:] and "time budget" in skipped[0]["reason"]


def test_candidate_lists() -> None:
    cfg = load_config({"model": {"name": "decision_tree", "max_depth": 3}})
    names, skipped = candidates(CompareConfig(), cfg, "regression", None, n_train=100)
    assert names == [*DEFAULT_CANDIDATES["regression"], "decision_tree"] and skipped == []
    names, skipped = candidates(CompareConfig(), cfg, "classification", (1, 8, 8), n_train=50_000)
    assert names[0] == "cnn" and "svm" not in names and skipped[0]["model"] == "svm"
    named = CompareConfig(models=["knn", "knn", "lightgbm"])
    assert candidates(named, cfg, "classification", None, n_train=100)[0] == ["knn", "lightgbm"]


@pytest.mark.usefixtures("compare_section")
def test_bad_candidates_are_user_errors() -> None:
    with pytest.raises(UserError, match='compare.models: unknown model "lightgmb" \\(did you mean "lightgbm"\\?\\)'):
        compare(BREAST_CANCER, models=["lightgmb"], quiet=True)
    with pytest.raises(UserError, match='compare.models: "linear_regression" does not support classification'):
        compare(BREAST_CANCER, models=["linear_regression"], quiet=True)
    with pytest.raises(UserError, match='unknown compare.metric "f1"'):  # iris has three classes
        compare({"data": {"source": "builtin:iris"}}, models=["knn"], quiet=True, **{"compare.metric": "f1"})
    with pytest.raises(UserError, match="set split.validation > 0"):
        compare(BREAST_CANCER, models=["knn"], quiet=True, **{"split.validation": 0})


def test_compare_command(tmp_path: Path) -> None:
    args = ["compare", "--data", "builtin:iris", "--models", "knn, logistic_regression", "-q",
            "--run-dir", str(tmp_path / "run"), "--set", "seed=1"]  # fmt: skip
    result = CliRunner().invoke(trainwell_app, args)
    assert result.exit_code == 0, result.output
    assert "leaderboard (ranked on accuracy)" in result.output and "kept" in result.output
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {row["model"] for row in saved["leaderboard"]} == {"knn", "logistic_regression"}
    assert np.isfinite(saved["test"]["accuracy"])
