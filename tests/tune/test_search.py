"""Hyperparameter tuning: the space's checks, pruning, budgets, resuming, parallel trials, the saved run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

import trainwell
import trainwell.tune.search as search_mod
from trainwell import pipeline
from trainwell.cli import app as trainwell_app
from trainwell.config import load_config
from trainwell.data.sources import load_dataset
from trainwell.errors import UserError
from trainwell.pipeline import fit_candidate
from trainwell.run import Run
from trainwell.tune import tune
from trainwell.tune.search import prepare_search, validation_score
from trainwell.tune.space import apply_params, parse_space

LR = {"type": "log_float", "low": 1e-4, "high": 0.1}


def digits(space: dict[str, Any] | None = None, **tune_cfg: Any) -> dict[str, Any]:
    """A tiny MLP on the 8x8 digits: a few epochs, a learning rate to find."""
    return {
        "name": "digits_tune",
        "data": {"source": "builtin:digits"},
        "model": {"name": "mlp", "hidden_sizes": [16], "dropout": 0.0},
        "train": {"epochs": 4, "batch_size": 128},
        "tune": {"space": {"train.lr": LR} if space is None else space, "n_trials": 4, **tune_cfg},
    }


def trial_params(run: Run) -> list[dict[str, Any]]:
    return [t["params"] for t in run.metrics["tuning"]["trials"]]


# ---------------------------------------------------------------- the space


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "tune.space is empty"),
        ({"train.lrr": LR}, 'did you mean "lr"'),
        ({"trian.lr": LR}, 'did you mean "train"'),
        ({"train": LR}, "must name one field"),
        ({"model.hidden_size": {"type": "categorical", "choices": [[8]]}}, 'did you mean "hidden_sizes"'),
        ({"tune.n_trials": {"type": "int", "low": 1, "high": 5}}, "tune fields cannot be tuned"),
        ({"train.lr": {"type": "log_float", "low": 0.1, "high": 0.01}}, "low (0.1) must be below high"),
        ({"train.lr": {"type": "log_float", "low": 0.0, "high": 0.1}}, "log_float needs low > 0"),
        ({"train.lr": {"type": "float", "low": -1.0, "high": 0.1}}, "-1.0 is not a valid value"),
        ({"train.lr": {"type": "float", "high": 0.1}}, "needs both low and high"),
        ({"train.epochs": {"type": "int", "low": 1.5, "high": 4}}, "whole-number"),
        ({"train.optimizer": {"type": "categorical"}}, "non-empty `choices`"),
        ({"train.optimizer": {"type": "categorical", "choices": ["adam", "adamm"]}}, "'adamm' is not a valid"),
        ({"model.name": {"type": "categorical", "choices": ["mlp", "lightgbn"]}}, 'did you mean "lightgbm"'),
        ({"model.dropout": {"type": "float", "low": 0.0, "high": 1.0}}, "model.dropout: 1.0 is not a valid"),
    ],
)
def test_bad_spaces_fail_with_one_line_naming_the_field(space: dict[str, Any], message: str) -> None:
    cfg = load_config(digits(space))
    with pytest.raises(UserError, match="tune.space") as exc:
        parse_space(cfg, "classification")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_model_dimensions_apply_only_to_models_that_have_the_parameter() -> None:
    space = {
        "model.hidden_sizes": {"type": "categorical", "choices": [[8], [16, 8]]},
        "model.C": {"type": "log_float", "low": 0.01, "high": 10},
        "model.name": {"type": "categorical", "choices": ["mlp", "logistic_regression"]},
    }
    dims = parse_space(load_config(digits(space)), "classification")
    assert dims[0].key == "model.name"  # sampled first: the others depend on it
    by_key = {d.key: d for d in dims}
    assert by_key["model.C"].applies_to("logistic_regression") and not by_key["model.C"].applies_to("mlp")
    assert by_key["model.hidden_sizes"].decode(json.dumps([16, 8])) == [16, 8]
    cfg = apply_params(load_config(digits(space)), {"model.name": "logistic_regression", "model.C": 0.5})
    assert cfg.model.params == {"C": 0.5}  # the MLP's own parameters are dropped with the MLP


# ---------------------------------------------------------------- one tuned run, inspected from several sides


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, dict[str, Any]]]:
    """Tune with a watch on what trials train on and how often the test rows are evaluated."""
    seen: dict[str, Any] = {"fit_rows": [], "evaluations": 0}
    real_fit, real_eval = search_mod.fit_candidate, search_mod.evaluate_splits

    def fit(cfg: Any, ds: Any, prep: Any, train_rows: np.ndarray, val_rows: np.ndarray, **kw: Any) -> Any:
        seen["fit_rows"].append(np.concatenate([train_rows, val_rows]))
        return real_fit(cfg, ds, prep, train_rows, val_rows, **kw)

    def evaluate(fitted: Any, prep: Any, splits: Any) -> Any:
        seen["evaluations"] += 1
        seen["test_rows"] = splits.test
        return real_eval(fitted, prep, splits)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "fit_candidate", fit)
        mp.setattr(search_mod, "evaluate_splits", evaluate)
        run = tune(digits(n_trials=6), run_dir=tmp_path_factory.mktemp("tuned") / "run", quiet=True)
    yield run, seen


def test_tuning_matches_or_beats_the_default_config_on_validation(tuned: tuple[Run, dict[str, Any]]) -> None:
    run, _ = tuned
    search = prepare_search(load_config(digits()))
    default = fit_candidate(search.cfg, search.ds, search.prep, search.splits.train, search.splits.validation)
    assert run.metrics["tuning"]["best_value"] >= validation_score(default, search)
    assert run.metrics["tuning"]["trials"][0]["params"] == {"train.lr": 1e-3}  # the configured value goes first


def test_the_test_split_is_evaluated_once_and_never_seen_by_trials(tuned: tuple[Run, dict[str, Any]]) -> None:
    run, seen = tuned
    assert seen["evaluations"] == 1 and run.info["test_evaluations"] == 1
    assert len(seen["fit_rows"]) == 7  # 6 trials and the refit
    for rows in seen["fit_rows"]:
        assert not np.intersect1d(rows, seen["test_rows"]).size


def test_the_tuned_run_loads_and_keeps_every_trial(tuned: tuple[Run, dict[str, Any]]) -> None:
    run, _ = tuned
    loaded = trainwell.load(run.dir)
    tuning = loaded.metrics["tuning"]
    assert tuning["metric"] == "accuracy" and tuning["direction"] == "maximize" and tuning["n_trials"] == 6
    assert set(tuning) >= {"best_value", "best_params", "trials", "param_importances", "storage", "study_name"}
    assert loaded.config.train.lr == pytest.approx(tuning["best_params"]["train.lr"])
    for trial in tuning["trials"]:
        assert set(trial) >= {"number", "params", "value", "state", "duration_s", "epochs"}
        assert trial["state"] in ("complete", "pruned") and 1 <= trial["epochs"] <= 4
    assert set(tuning["param_importances"]) <= {"train.lr"}
    trials = pd.read_csv(run.dir / "trials.csv")
    assert len(trials) == 6 and "params.train.lr" in trials.columns
    assert tuning["storage"].endswith("run/study.db") and (run.dir / "study.db").is_file()
    assert not (run.dir.parent / ".studies").exists()  # the study moved into the run
    assert len(loaded.predict(load_dataset("builtin:digits").frame.head(5))) == 5


# ---------------------------------------------------------------- pruning and budgets


def test_the_median_pruner_stops_trials_with_a_hopeless_learning_rate(tmp_path: Path) -> None:
    space = {"train.lr": {"type": "log_float", "low": 1e-6, "high": 0.5}}
    cfg = digits(space, n_trials=12, pruner="median", sampler="random")
    cfg["train"]["epochs"] = 6
    run = tune(cfg, run_dir=tmp_path / "run", quiet=True)
    trials = run.metrics["tuning"]["trials"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and all(t["epochs"] < 6 and t["value"] is None for t in pruned)


def test_the_wall_time_budget_stops_the_study(tmp_path: Path) -> None:
    run = tune(digits(n_trials=10_000, timeout_s=1.0), run_dir=tmp_path / "run", quiet=True)
    assert 1 <= run.metrics["tuning"]["n_trials"] < 10_000


def test_boosting_rounds_are_reported_when_every_trial_boosts(tmp_path: Path) -> None:
    cfg = {
        "data": {"source": "builtin:breast_cancer"},
        "model": {"name": "lightgbm", "n_estimators": 30, "num_leaves": 4},
        "tune": {"space": {"model.learning_rate": {"type": "log_float", "low": 1e-3, "high": 0.3}}, "n_trials": 3},
    }
    run = tune(cfg, run_dir=tmp_path / "run", quiet=True)
    assert all(t["epochs"] for t in run.metrics["tuning"]["trials"])  # rounds reached the pruner


# ---------------------------------------------------------------- storage: resume, share, parallel


def test_an_interrupted_study_resumes_from_the_default_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fit, calls = search_mod.fit_candidate, []

    def fit_then_ctrl_c(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_fit(*args, **kw)

    monkeypatch.setattr(search_mod, "fit_candidate", fit_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        tune(digits(n_trials=4), run_dir=tmp_path / "first", quiet=True)
    assert not (tmp_path / "first").exists() and len(list((tmp_path / ".studies").glob("*.db"))) == 1
    monkeypatch.setattr(search_mod, "fit_candidate", real_fit)
    run = tune(digits(n_trials=4), run_dir=tmp_path / "second", quiet=True)
    trials = run.metrics["tuning"]["trials"]
    assert [t["state"] for t in trials].count("fail") == 1  # the interrupted trial
    assert sum(t["state"] in ("complete", "pruned") for t in trials) == 4  # 2 before, 2 after: none redone
    lrs = [t["params"]["train.lr"] for t in trials if t["state"] != "fail"]
    assert len(set(lrs)) == len(lrs)
    assert (run.dir / "study.db").is_file() and not list(tmp_path.glob(".studies/*.db"))


def test_a_named_study_in_a_shared_storage_continues_where_it_stopped(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = tune(digits(n_trials=3, storage=storage, study_name="lr"), run_dir=tmp_path / "a", quiet=True)
    second = tune(digits(n_trials=5, storage=storage, study_name="lr"), run_dir=tmp_path / "b", quiet=True)
    assert second.metrics["tuning"]["n_trials"] == 5 and trial_params(second)[:3] == trial_params(first)
    lrs = [p["train.lr"] for p in trial_params(second)]
    assert len(set(lrs)) == 5 and second.metrics["tuning"]["storage"] == storage
    assert (tmp_path / "shared.db").is_file()  # a storage the user named stays where it is
    other_space = {"train.lr": {"type": "log_float", "low": 1e-3, "high": 0.1}}
    with pytest.raises(UserError, match='study_name "lr" holds a study of another search'):
        tune(digits(other_space, n_trials=6, storage=storage, study_name="lr"), run_dir=tmp_path / "c", quiet=True)


def test_trials_run_two_at_a_time(tmp_path: Path) -> None:
    run = tune(digits(n_trials=4, n_jobs=2), run_dir=tmp_path / "run", quiet=True)
    assert run.metrics["tuning"]["n_trials"] == 4
    assert {t["state"] for t in run.metrics["tuning"]["trials"]} <= {"complete", "pruned"}


# ---------------------------------------------------------------- model choice, refit, command line


def test_the_model_family_is_a_dimension(tmp_path: Path) -> None:
    space = {
        "model.name": {"type": "categorical", "choices": ["mlp", "logistic_regression"]},
        "model.hidden_sizes": {"type": "categorical", "choices": [[8], [16]]},
        "model.C": {"type": "log_float", "low": 0.01, "high": 10.0},
    }
    cfg = digits(space, n_trials=6, sampler="random")
    cfg["data"]["source"] = "builtin:iris"
    run = tune(cfg, run_dir=tmp_path / "run", quiet=True)
    for params in trial_params(run):
        own = {"mlp": "model.hidden_sizes", "logistic_regression": "model.C"}[params["model.name"]]
        assert set(params) == {"model.name", own}
    assert {p["model.name"] for p in trial_params(run)} == {"mlp", "logistic_regression"}
    assert run.info["model"] == run.metrics["tuning"]["best_params"]["model.name"]


def test_cli_tune_refits_on_train_and_validation(tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    cfg = digits()
    cfg["train"]["early_stopping"], cfg["train"]["patience"] = True, 2
    config.write_text(json.dumps(cfg))
    args = ["tune", str(config), "--n-trials", "3", "--set", "tune.refit_on_validation=true",
            "--run-dir", str(tmp_path / "run"), "-q"]  # fmt: skip
    result = CliRunner().invoke(trainwell_app, args)
    assert result.exit_code == 0, result.output
    assert "best trial" in result.output and "run saved to" in result.output
    run = trainwell.load(tmp_path / "run")
    splits = run.info["splits"]
    assert splits["validation"]["rows"] == 0 and splits["test"]["rows"] > 0
    assert run.config.train.early_stopping is False and run.config.train.epochs <= 4


def test_cli_tune_exits_130_on_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(search_mod, "tune", interrupted)
    config = tmp_path / "tune.yaml"
    config.write_text(json.dumps(digits()))
    assert CliRunner().invoke(trainwell_app, ["tune", str(config)]).exit_code == 130


def test_trials_can_be_scored_by_kfold_without_the_test_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fitted_rows: list[np.ndarray] = []
    real_fit = pipeline.fit_candidate

    def fit(cfg: Any, ds: Any, prep: Any, train_rows: np.ndarray, val_rows: np.ndarray, **kw: Any) -> Any:
        fitted_rows.append(np.concatenate([train_rows, val_rows]))
        return real_fit(cfg, ds, prep, train_rows, val_rows, **kw)

    monkeypatch.setattr(pipeline, "fit_candidate", fit)  # what cross_validate calls for each fold
    cfg = digits(n_trials=2)
    cfg["validation"] = {"strategy": "kfold", "folds": 3}
    run = tune(cfg, run_dir=tmp_path / "run", quiet=True)
    assert len(fitted_rows) == 6 and all(t["state"] == "complete" for t in run.metrics["tuning"]["trials"])
    test_rows = prepare_search(load_config(cfg)).splits.test
    assert not any(np.intersect1d(rows, test_rows).size for rows in fitted_rows)


def test_a_bad_storage_url_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="tune.storage"):
        tune(digits(storage="nosuchdb://x"), run_dir=tmp_path / "run", quiet=True)


def test_optuna_logging_is_left_as_it_was(tmp_path: Path) -> None:
    before = optuna.logging.get_verbosity()
    tune(digits(n_trials=1), run_dir=tmp_path / "run", quiet=True)
    assert optuna.logging.get_verbosity() == before
