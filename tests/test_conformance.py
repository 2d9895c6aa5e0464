"""Every registered model passes the same checks: builds from defaults, learns on toy data, is
reproducible for a seed, and train → save → load → predict reproduces the in-memory predictions exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_regression

import trainwell
from trainwell.models.registry import list_models

CASES = [(spec.name, task) for spec in list_models() for task in sorted(spec.tasks)]
# Quick budgets so the whole matrix stays within seconds per model.
FAST = {"mlp": {"train": {"epochs": 15}}, "cnn": {"train": {"epochs": 4}}}


def toy_data(name: str, task: str, mixed_frame) -> tuple[pd.DataFrame, str]:
    if name == "cnn":  # image arrays: 8x8 digits
        X, y = load_digits(return_X_y=True)
        frame = pd.DataFrame(X[:400], columns=[f"pixel_{i}" for i in range(64)])
        frame["label"] = y[:400] if task == "classification" else y[:400] * 1.5
        return frame, "label"
    if task == "classification":
        return mixed_frame(300), "label"
    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame["y"] = y
    return frame, "y"


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_check_model(name: str, task: str, tmp_path: Path, mixed_frame) -> None:
    frame, target = toy_data(name, task, mixed_frame)
    common = dict(data=frame, quiet=True, model=name, seed=3, **FAST.get(name, {}))
    common["data.target"], common["data.task"] = target, task
    run = trainwell.train(None, run_dir=tmp_path / "a", **common)

    # learns: clearly better than a constant guess on the validation split
    val = run.metrics["validation"]
    if task == "classification":
        majority = frame[target].value_counts(normalize=True).iloc[0]
        assert val["accuracy"] > majority + 0.05, val
    else:
        assert val["r2"] > 0.3, val

    # round trip: predictions of the loaded run equal those made in memory before saving
    saved = pd.read_csv(run.dir / "predictions.csv")
    test = saved[saved.split == "test"]
    rows = frame.drop_duplicates().reset_index(drop=True).iloc[test.row.to_numpy()]
    assert run.info["data"]["duplicates_removed"] == len(frame) - len(frame.drop_duplicates())
    reloaded = trainwell.load(run.dir)
    pred = reloaded.predict(rows)
    if task == "classification":
        assert [str(p) for p in pred] == test.y_pred.astype(str).tolist()
        proba = reloaded.predict_proba(rows).to_numpy()
        np.testing.assert_array_equal(proba, test.filter(like="proba_").to_numpy())
    else:
        np.testing.assert_array_equal(pred, test.y_pred.to_numpy())

    # reproducible: same config and seed give identical metrics
    again = trainwell.train(None, run_dir=tmp_path / "b", **common)
    assert again.metrics == run.metrics
