"""Every registered model passes the same checks: builds from defaults, learns on toy data, is
reproducible for a seed, and train → save → load → predict reproduces the in-memory predictions exactly;
it is a scikit-learn estimator (get_params, clone) that declares its abilities as tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

import trainwell
from trainwell.config import TrainConfig
from trainwell.models.registry import BuildContext, create_model, get_spec, list_models, model_tags

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


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_model_is_an_estimator(name: str, task: str) -> None:
    """get_params round-trips, clone gives an unfitted equal-params copy (before and after fit), tags are declared."""
    n_features = 16 if name == "cnn" else 5  # cnn: a 4x4 image
    ctx = BuildContext(task=task, n_features=n_features, n_classes=2 if task == "classification" else 0, seed=3,
                       train=TrainConfig(epochs=2, device="cpu"))  # fmt: skip
    model = create_model(name, {}, ctx)
    params = model.get_params(deep=False)
    assert type(model)(**params).get_params(deep=False).keys() == params.keys()
    assert model.set_params(**params) is model

    abilities = model_tags(model)
    assert get_tags(model).estimator_type == ("classifier" if task == "classification" else "regressor")
    assert abilities.probabilities == (task == "classification")
    assert abilities.epoch_history == (get_spec(name).family == "neural")
    declared = get_spec(name).abilities  # what tuning and cross-validation read before a model exists
    assert all(getattr(abilities, k) for k, v in vars(declared).items() if v is True), (declared, abilities)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, n_features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) if task == "classification" else X[:, 0].astype(np.float64)
    for source in (model, model.fit(X, y)):  # unfitted, then fitted
        copy = clone(source)
        assert copy is not source and repr(copy.get_params(deep=False)) == repr(params)
        with pytest.raises(NotFittedError):
            check_is_fitted(copy)
    assert model.n_features_in_ == n_features
    assert model.predict(X).shape == (60,)
