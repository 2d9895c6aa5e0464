"""Cross-validation: the right splitter for the data, preparation fitted inside each fold, honest numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trainwell import pipeline
from trainwell.config import ExperimentConfig, load_config
from trainwell.data.split import Splits, split_rows
from trainwell.errors import UserError
from trainwell.models.fitted import Fitted
from trainwell.tune.cv import cross_validate, cv_section, fold_rows


def prepared(config: dict[str, Any], frame: pd.DataFrame | None = None) -> tuple[ExperimentConfig, Any, Any, Splits]:
    cfg = load_config(config)
    ds, prep = pipeline.load_data(cfg, frame)
    splits = split_rows(prep.frame, cfg.split, task=prep.task, target=prep.target, seed=cfg.seed)
    return cfg, ds, prep, splits


def train_val(splits: Splits) -> np.ndarray:
    return np.concatenate([splits.train, splits.validation])


def grouped_frame(n_groups: int = 12, per_group: int = 15) -> pd.DataFrame:
    X, y = make_classification(n_samples=n_groups * per_group, n_features=4, n_informative=3, n_redundant=0,
                               random_state=0)  # fmt: skip
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(4)])
    frame["patient"] = np.repeat([f"p{i}" for i in range(n_groups)], per_group)
    frame["label"] = np.where(y == 1, "sick", "well")
    return frame


def test_iris_stratified_cv_scores_and_partitions_rows() -> None:
    cfg, ds, prep, splits = prepared({"data": {"source": "builtin:iris"}, "model": {"name": "logistic_regression"}})
    rows = train_val(splits)
    result = cross_validate(cfg, ds, prep, rows)

    assert result["strategy"] == "stratified" and result["n_folds"] == 5 == len(result["folds"])
    assert result["mean"]["accuracy"] >= 0.9
    assert 0 < result["std"]["accuracy"] < 0.1
    accuracies = [f["accuracy"] for f in result["folds"]]
    assert result["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert result["std"]["accuracy"] == pytest.approx(np.std(accuracies))
    assert "confusion_matrix" in result["folds"][0] and "confusion_matrix" not in result["mean"]
    # every train+validation row is scored exactly once; no test row is touched
    scored = np.concatenate([held for _, _, held in fold_rows(cfg, prep, rows)[0]])
    assert sorted(scored) == sorted(rows) and not set(scored) & set(splits.test)
    assert sum(c["scored"] for c in result["fold_rows"]) == len(rows)


def test_preparation_is_fitted_inside_each_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, ds, prep, splits = prepared({"data": {"source": "builtin:iris"}, "model": {"name": "logistic_regression"}})
    seen: list[tuple[np.ndarray, Any]] = []
    real = pipeline.fit_candidate

    def recording(*args: Any, **kwargs: Any) -> Fitted:
        fitted = real(*args, **kwargs)
        seen.append((args[3], fitted))
        return fitted

    monkeypatch.setattr(pipeline, "fit_candidate", recording)
    cross_validate(cfg, ds, prep, train_val(splits))

    assert len(seen) == 5
    columns = list(prep.schema)
    means = []
    for fit_rows, fitted in seen:
        scaler = fitted.preparer.named_steps["columns"].named_transformers_["num"].named_steps["scale"]
        np.testing.assert_allclose(scaler.mean_, prep.frame.iloc[fit_rows][columns].mean().to_numpy(), rtol=1e-12)
        means.append(scaler.mean_)
    assert all(not np.allclose(means[0], m) for m in means[1:])  # a different mean per fold


def test_regression_kfold_matches_scikit_learn() -> None:
    config = {"data": {"source": "builtin:diabetes"}, "model": {"name": "linear_regression"}}
    cfg, ds, prep, splits = prepared(config)
    rows = train_val(splits)
    result = cross_validate(cfg, ds, prep, rows)

    assert result["strategy"] == "kfold"  # stratification applies to classification only
    X = prep.frame.iloc[rows][list(prep.schema)].to_numpy()
    expected = cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=1.0)), X, prep.y[rows], scoring="r2",
                               cv=KFold(5, shuffle=True, random_state=cfg.seed))  # fmt: skip
    np.testing.assert_allclose([f["r2"] for f in result["folds"]], expected, atol=1e-4)
    assert result["mean"]["r2"] >= 0.35


def test_group_cv_never_splits_a_group() -> None:
    frame = grouped_frame()
    config = {"data": {"target": "label"}, "split": {"group_column": "patient"}, "model": {"name": "lightgbm"},
              "validation": {"folds": 4}}  # fmt: skip
    cfg, ds, prep, splits = prepared(config, frame)
    rows = train_val(splits)
    plan, strategy = fold_rows(cfg, prep, rows)

    assert strategy == "stratified_group" and len(plan) == 4
    group = prep.frame["patient"].to_numpy()
    scored_groups: list[str] = []
    for fit_rows, stop_rows, held_out in plan:
        assert len(stop_rows)  # lightgbm early-stops on rows of its own fold
        assert not set(group[fit_rows]) & set(group[held_out])
        assert not set(group[stop_rows]) & (set(group[held_out]) | set(group[fit_rows]))
        scored_groups += sorted(set(group[held_out]))
    assert sorted(scored_groups) == sorted(set(group[rows]))  # each group scored in exactly one fold

    result = cross_validate(cfg, ds, prep, rows)
    assert result["mean"]["accuracy"] > 0.75


def test_stratified_folds_keep_class_shares_and_early_stopping_rows() -> None:
    config = {"data": {"source": "builtin:breast_cancer"}, "model": {"name": "lightgbm"}}
    cfg, ds, prep, splits = prepared(config)
    rows = train_val(splits)
    share = prep.y[rows].mean()
    plan, _ = fold_rows(cfg, prep, rows)
    for fit_rows, stop_rows, held_out in plan:
        assert abs(prep.y[held_out].mean() - share) < 0.02
        assert not set(stop_rows) & set(held_out) and not set(stop_rows) & set(fit_rows)
        assert len(stop_rows) == pytest.approx(0.15 / 0.85 * (len(fit_rows) + len(stop_rows)), abs=2)
    plain, _ = fold_rows(cfg, prep, rows, early_stopping=False)
    assert all(len(stop) == 0 and len(fit) + len(held) == len(rows) for fit, stop, held in plain)


def test_models_that_ignore_validation_fit_on_the_whole_fold() -> None:
    cfg, ds, prep, splits = prepared({"data": {"source": "builtin:iris"}, "model": {"name": "random_forest",
                                      "n_estimators": 20}})  # fmt: skip
    result = cross_validate(cfg, ds, prep, train_val(splits))
    assert all(c["early_stopping"] == 0 for c in result["fold_rows"])
    assert result["mean"]["accuracy"] >= 0.9


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"validation": {"folds": 20}}, r"validation.folds=20 is more than the \d rows of class \"b\""),
        ({"validation": {"folds": 13}, "split": {"group_column": "patient"}}, r"more than the \d+ groups in split"),
        ({"split": {"time_column": "t"}}, "split.time_column"),
    ],
)
def test_impossible_folds_are_user_errors(config: dict[str, Any], message: str) -> None:
    frame = grouped_frame(n_groups=14, per_group=5)
    frame["label"] = np.where(np.arange(len(frame)) < 5, "b", "a")  # 5 rows of class b
    frame["t"] = np.arange(len(frame))
    cfg, ds, prep, splits = prepared({"data": {"target": "label"}, "model": {"name": "knn"}, **config}, frame)
    with pytest.raises(UserError, match=message):
        cross_validate(cfg, ds, prep, train_val(splits))


def test_cv_section_only_for_kfold() -> None:
    base = {"data": {"source": "builtin:iris"}, "model": {"name": "knn"}}
    cfg, ds, prep, splits = prepared(base)
    assert cv_section(cfg, ds, prep, splits) == {}
    cfg, ds, prep, splits = prepared({**base, "validation": {"strategy": "kfold", "folds": 3}})
    section = cv_section(cfg, ds, prep, splits)["cross_validation"]
    assert section["n_folds"] == 3
    assert sum(c["scored"] for c in section["fold_rows"]) == len(splits.train) + len(splits.validation)
