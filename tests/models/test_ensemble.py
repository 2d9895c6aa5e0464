"""Voting and stacking ensembles: real scikit-learn ensembles of registry members, saved and reloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_regression

import trainwell
from trainwell.config import TrainConfig
from trainwell.data.sources import load_dataset
from trainwell.errors import UserError
from trainwell.models.registry import BuildContext, create_model, parse_params

FAST_MEMBERS = ["logistic_regression", "knn", "decision_tree"]


def ctx(task: str = "classification") -> BuildContext:
    return BuildContext(task=task, n_features=4, n_classes=2 if task == "classification" else 0, seed=0,  # type: ignore[arg-type]
                        train=TrainConfig())  # fmt: skip


def regression_frame(n: int = 300) -> pd.DataFrame:
    X, y = make_regression(n_samples=n, n_features=6, n_informative=4, noise=10.0, random_state=1)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    frame["y"] = y
    return frame


def test_soft_voting_on_breast_cancer_averages_member_probabilities(tmp_path: Path) -> None:
    run = trainwell.train(None, data={"source": "builtin:breast_cancer"}, model="voting", quiet=True,
                          run_dir=tmp_path / "run", **{"split.test": 0.2})  # fmt: skip
    assert run.metrics["test"]["accuracy"] >= 0.94
    est = run.model.estimator_  # type: ignore[attr-defined]
    assert [name for name, _ in est.estimators] == ["logistic_regression", "knn", "lightgbm"]
    X = run.features(load_dataset("builtin:breast_cancer").frame.head(40))
    mean = np.mean([m.predict_proba(X) for m in est.estimators_], axis=0)
    np.testing.assert_allclose(run.model.predict_proba(X), mean, rtol=1e-12)


def test_hard_voting_takes_the_majority_and_has_no_probabilities(tmp_path: Path, mixed_frame) -> None:
    frame = mixed_frame(300)
    run = trainwell.train(None, data=frame, quiet=True, run_dir=tmp_path / "run",
                          model={"name": "voting", "voting": "hard", "models": FAST_MEMBERS},
                          **{"data.target": "label"})  # fmt: skip
    assert run.metrics["validation"]["accuracy"] > 0.75
    assert "roc_auc" not in run.metrics["test"]  # no probabilities, so no AUC
    rows = frame.head(30)
    X = run.features(rows)
    votes = np.stack([m.predict(X) for m in run.model.estimator_.estimators_])  # type: ignore[attr-defined]
    majority = (votes.sum(axis=0) >= 2).astype(int)  # two classes, three voters
    np.testing.assert_array_equal(run.model.predict(X), majority)
    with pytest.raises(UserError, match="gives no class probabilities"):
        trainwell.load(run.dir).predict_proba(rows)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_stacking_learns_and_reloads(task: str, tmp_path: Path, mixed_frame) -> None:
    if task == "classification":
        frame, target, members = mixed_frame(300), "label", FAST_MEMBERS
    else:
        frame, target, members = regression_frame(), "y", ["linear_regression", "knn", "decision_tree"]
    model = {"name": "stacking", "models": members, "cv": 3}
    run = trainwell.train(
        None, data=frame, quiet=True, run_dir=tmp_path / "run", model=model, **{"data.target": target}
    )
    test = run.metrics["test"]
    assert test["accuracy"] > 0.75 if task == "classification" else test["r2"] > 0.9
    final = run.model.estimator_.final_estimator_  # type: ignore[attr-defined]
    assert type(final).__name__ == ("LogisticRegression" if task == "classification" else "RidgeCV")
    rows = frame.head(25)
    np.testing.assert_array_equal(trainwell.load(run.dir).predict(rows), run.predict(rows))


def test_member_params_reach_members_and_duplicates_get_unique_names() -> None:
    params = {"models": ["knn", "knn", "logistic_regression"], "member_params": {"knn": {"n_neighbors": 15}}}
    est = create_model("voting", params, ctx()).estimator  # type: ignore[attr-defined]
    assert [name for name, _ in est.estimators] == ["knn", "knn_2", "logistic_regression"]
    assert est.estimators[0][1].n_neighbors == 15 == est.estimators[1][1].n_neighbors
    averaging = create_model("voting", {"models": ["linear_regression", "knn"]}, ctx("regression")).estimator  # type: ignore[attr-defined]
    assert type(averaging).__name__ == "VotingRegressor"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"models": ["knn", "lightgbn"]}, 'model.models: unknown model "lightgbn" \\(did you mean "lightgbm"\\?\\)'),
        ({"models": ["knn"]}, "at least 2 members"),
        ({"models": ["knn", "mlp"]}, '"mlp" is a neural model'),
        ({"models": ["knn", "voting"]}, '"voting" is an ensemble'),
        ({"models": ["knn", "svm"], "member_params": {"kn": {}}}, 'not a member \\(did you mean "knn"\\?\\)'),
        ({"models": ["knn", "svm"], "member_params": {"knn": {"k": 3}}}, "model.member_params.knn: .*model.k"),
    ],
)
def test_bad_members_are_user_errors_naming_the_field(params: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_params("stacking", params)


def test_build_time_errors() -> None:
    with pytest.raises(UserError, match='model.models: "logistic_regression" does not support regression'):
        create_model("voting", {"models": ["logistic_regression", "knn"]}, ctx("regression"))
    with pytest.raises(UserError, match="model.weights: give one weight per member"):
        create_model("voting", {"models": ["svm", "knn"], "weights": [1.0]}, ctx())
