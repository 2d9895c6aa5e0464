"""Mitigated models (fairness.mitigation): trained inside a run, saved without pickle, reloaded exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference

import trainwell
from trainwell.errors import UserError


def biased(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Group a gets approved far more often at the same x; `proxy` leaks the group into the features."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n)
    x = rng.normal(size=n)
    proxy = (group == "a") + rng.normal(0, 0.3, n)
    approved = x + 1.2 * (group == "a") + rng.normal(0, 0.5, n) > 0.6
    return pd.DataFrame({"x": x, "proxy": proxy, "noise": rng.normal(size=n), "group": group,
                         "approved": np.where(approved, "yes", "no")})  # fmt: skip


def run(tmp_path: Path, frame: pd.DataFrame, mitigation: str) -> trainwell.Run:
    return trainwell.train(
        {"data": {"target": "approved"}, "model": {"name": "logistic_regression"},
         "fairness": {"sensitive": ["group"], "mitigation": mitigation, "compare": False}},
        data=frame, run_dir=tmp_path / mitigation, quiet=True,
    )  # fmt: skip


def test_mitigations_cut_the_planted_disparity_and_reload_exactly(tmp_path: Path) -> None:
    frame = biased()
    gaps = {}
    for mitigation in ("none", "exponentiated_gradient", "threshold_optimizer"):
        r = run(tmp_path, frame, mitigation)
        saved = pd.read_csv(r.dir / "predictions.csv")
        test = saved[saved["split"] == "test"]
        again = trainwell.load(r.dir).predict(frame.iloc[test["row"].to_numpy()])
        assert list(again) == list(test["y_pred"]), mitigation  # the reloaded model decides identically
        groups = frame["group"].iloc[test["row"]]
        yes = {k: (test[k] == "yes").astype(int).to_numpy() for k in ("y_true", "y_pred")}
        gaps[mitigation] = demographic_parity_difference(yes["y_true"], yes["y_pred"], sensitive_features=groups)
        assert r.metrics["fairness"]["test"]["demographic_parity_difference"] == pytest.approx(gaps[mitigation])
        assert r.metrics["fairness"]["mitigation"] == mitigation
        assert "group" not in r.info["input_columns"]
    assert gaps["none"] > 0.25  # the planted bias shows through the proxy feature
    assert gaps["exponentiated_gradient"] < gaps["none"] / 2
    assert gaps["threshold_optimizer"] < gaps["none"] / 2


def test_threshold_model_needs_the_group_at_prediction_time(tmp_path: Path) -> None:
    frame = biased(600)
    r = trainwell.load(run(tmp_path, frame, "threshold_optimizer").dir)
    with pytest.raises(UserError, match="sensitive column.*group"):
        r.predict(frame.drop(columns=["group"]))
    assert r.explain(frame.head(2))[0]["contributions"]  # explained through its base model


def test_mitigation_needs_a_binary_target_and_a_classical_model(tmp_path: Path) -> None:
    frame = biased(400)
    with pytest.raises(UserError, match="scikit-learn-family"):
        trainwell.train({"data": {"target": "approved"}, "model": {"name": "mlp"}, "train": {"epochs": 2},
                         "fairness": {"sensitive": ["group"], "mitigation": "threshold_optimizer"}},
                        data=frame, run_dir=tmp_path / "mlp", quiet=True)  # fmt: skip
    frame["approved"] = np.resize(["low", "mid", "high"], len(frame))
    with pytest.raises(UserError, match="binary"):
        trainwell.train({"data": {"target": "approved"}, "model": {"name": "logistic_regression"},
                         "fairness": {"sensitive": ["group"], "mitigation": "exponentiated_gradient"}},
                        data=frame, run_dir=tmp_path / "multi", quiet=True)  # fmt: skip


def test_mitigated_models_keep_the_estimator_contract_and_declare_whether_they_need_groups(tmp_path: Path) -> None:
    from sklearn.base import clone
    from sklearn.utils import get_tags

    from trainwell.models.registry import model_tags

    frame = biased(600)
    for mitigation, needs_groups in (("exponentiated_gradient", False), ("threshold_optimizer", True)):
        model = trainwell.load(run(tmp_path, frame, mitigation).dir).model
        abilities = model_tags(model)
        assert abilities.needs_groups is needs_groups and abilities.probabilities
        assert get_tags(model).estimator_type == "classifier"
        copy = clone(model)  # parameters in, learned state out: the copy shares the configuration
        assert copy.get_params(deep=False).keys() == model.get_params(deep=False).keys()
        assert copy.method == mitigation


def test_exponentiated_gradient_probabilities_match_fairlearns_own_mix() -> None:
    """The public-attribute vote (predictors_ weighted by weights_) equals Fairlearn's internal mix."""
    from sklearn.linear_model import LogisticRegression

    from trainwell.models.fair import FairModel
    from trainwell.models.mitigation import fit_exponentiated_gradient

    frame = biased(600)
    X = frame[["x", "proxy", "noise"]].to_numpy()
    y = (frame["approved"] == "yes").to_numpy().astype(int)
    fitted = fit_exponentiated_gradient(LogisticRegression(), X, y, frame["group"], seed=0).fitted
    model = FairModel(None, "exponentiated_gradient", seed=0)
    model.mitigator_ = fitted
    np.testing.assert_allclose(model.predict_proba(X), fitted._pmf_predict(X), atol=1e-12)
