"""Each guarantee is evidence that can fail: every one is broken on purpose here and must say so."""

from __future__ import annotations

import numpy as np
import pytest

import trainwell
from trainwell.config import load_config
from trainwell.data.split import Splits
from trainwell.evaluate.metrics import score
from trainwell.pipeline import evaluate_splits, fit_candidate, load_and_split
from trainwell.track.guarantees import check_guarantees
from trainwell.track.rundir import library_versions

CONFIG = {"data": {"source": "builtin:iris"}, "model": {"name": "logistic_regression"},
          "validation": {"explain": False}}  # fmt: skip


@pytest.fixture
def honest():  # type: ignore[no-untyped-def]
    cfg = load_config(CONFIG)
    ds, prep, splits = load_and_split(cfg)
    fitted = fit_candidate(cfg, ds, prep, splits.train, splits.validation)
    evaluate_splits(fitted, prep, splits)  # the one test evaluation
    info = {"seed": 0, "splits": splits.summary(prep.frame), "data": prep.info, "versions": library_versions()}
    return cfg, ds, prep, splits, fitted, info


def _items(result: dict) -> dict[str, bool | None]:
    return {item["name"]: item["ok"] for item in result["items"]}


def test_an_honest_run_passes_every_guarantee(honest) -> None:  # type: ignore[no-untyped-def]
    cfg, _, prep, splits, fitted, info = honest
    result = check_guarantees(cfg, prep, splits, fitted, info)
    assert result["all_ok"] and all(_items(result).values())


def test_scoring_the_test_split_again_breaks_tested_once(honest) -> None:  # type: ignore[no-untyped-def]
    cfg, _, prep, splits, fitted, info = honest
    score(fitted, prep, splits.test[:3])  # a peek at a few test rows counts too
    result = check_guarantees(cfg, prep, splits, fitted, info)
    assert _items(result)["test_evaluated_once"] is False and not result["all_ok"]
    assert "2 time(s)" in next(i["detail"] for i in result["items"] if i["name"] == "test_evaluated_once")


def test_a_preparation_fitted_on_held_out_rows_is_caught(honest) -> None:  # type: ignore[no-untyped-def]
    cfg, ds, prep, splits, _, info = honest
    leaky = fit_candidate(cfg, ds, prep, np.concatenate([splits.train, splits.validation]), splits.validation)
    result = check_guarantees(cfg, prep, splits, leaky, info)
    item = next(i for i in result["items"] if i["name"] == "preparation_fitted_on_train_only")
    assert item["ok"] is False and "not the training split" in item["detail"] and "validation or test" in item["detail"]


def test_overlapping_splits_are_caught(honest) -> None:  # type: ignore[no-untyped-def]
    cfg, _, prep, splits, fitted, info = honest
    shared = Splits(splits.train, np.concatenate([splits.validation, splits.train[:2]]), splits.test, splits.method)
    assert _items(check_guarantees(cfg, prep, shared, fitted, info))["no_rows_shared_across_splits"] is False


def test_a_leakage_error_and_missing_provenance_are_caught(honest) -> None:  # type: ignore[no-untyped-def]
    cfg, _, prep, splits, fitted, info = honest
    prep.audit = {"findings": [{"check": "leakage", "severity": "error", "column": "x", "message": "copies y"}]}
    result = _items(check_guarantees(cfg, prep, splits, fitted, info | {"versions": {}}))
    assert result["no_leakage_error"] is False and result["provenance_recorded"] is False


def test_a_run_that_peeks_at_the_test_split_reports_it(cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import trainwell.run as run_module

    real = run_module.analyse

    def peeking(cfg, ds, prep, splits, fitted, outputs, metrics):  # type: ignore[no-untyped-def]
        score(fitted, prep, splits.test)  # analysis code that should never touch the test rows
        return real(cfg, ds, prep, splits, fitted, outputs, metrics)

    monkeypatch.setattr(run_module, "analyse", peeking)
    code, out, err = cli("train", "--data", "builtin:iris", "--model", "knn", "--run-dir", tmp_path / "run", "-q")
    assert code == 0, err
    assert "guarantee test_evaluated_once: FAILED" in out
    assert trainwell.load(tmp_path / "run").info["test_evaluations"] == 2
