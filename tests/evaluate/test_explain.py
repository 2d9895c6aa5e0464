"""Explanations rank a planted informative feature first, and their numbers add up to the model's output."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from trainwell.config import PrepareConfig
from trainwell.data.prepare import build_preparer, describe_features
from trainwell.errors import UserError
from trainwell.evaluate.explain import (
    explain_rows,
    explanation_method,
    integrated_gradients,
    linear_coefficients,
    model_importance,
    partial_dependence_curves,
    permutation_importance_table,
    shap_importance,
)
from trainwell.models.classical import SklearnModel

NAMES = ["noise_a", "weak", "signal", "noise_b", "noise_c"]


def planted(n: int = 600, seed: int = 0, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Feature 2 ("signal") decides the label; feature 1 helps a little; the rest are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    score = 3 * X[:, 2] + 0.5 * X[:, 1] + rng.normal(0, 0.5, n)
    edges = [0.0] if classes == 2 else [-1.5, 1.5]
    return X, np.digitize(score, edges).astype(np.int64)


def lgbm(classes: int = 2) -> tuple[LGBMClassifier, np.ndarray, np.ndarray]:
    X, y = planted(classes=classes)
    return LGBMClassifier(n_estimators=40, num_leaves=8, verbose=-1, n_jobs=1).fit(X[:400], y[:400]), X, y


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 2) logits


@functools.cache
def trained_mlp() -> tuple[MLP, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    X, y = planted()
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xs, ys = torch.as_tensor(X[:400]), torch.as_tensor(y[:400])
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xs), ys).backward()
        opt.step()
    return model, X, y


def top(rows: list[dict]) -> str:
    return rows[0]["feature"]


def total(row: dict) -> float:
    """Base value plus every listed contribution: the explained output when top_k covers all features."""
    return row["base_value"] + sum(c["contribution"] for c in row["contributions"])


def test_linear_model_ranks_the_planted_feature_first() -> None:
    X, y = planted()
    model = LogisticRegression().fit(X[:400], y[:400])
    perm = permutation_importance_table(model, X[400:], y[400:], NAMES, task="classification")
    coefs = linear_coefficients(model, NAMES)
    assert top(perm) == "signal" and top(coefs) == "signal" and [r["rank"] for r in perm] == [1, 2, 3, 4, 5]
    assert perm[0]["importance"] > 0.2 and perm[1]["feature"] == "weak"
    assert coefs[0]["coefficient"] == pytest.approx(model.coef_[0, 2])
    # one row: contributions + base reproduce the log-odds of the predicted class exactly
    rows = explain_rows(model, X[400:405], NAMES, background=X[:400], top_k=5)
    logit = model.decision_function(X[400:405])
    for row, z in zip(rows, logit, strict=True):
        assert total(row) == pytest.approx(z if row["prediction"] == 1 else -z, rel=1e-5)
        assert row["method"] == "linear" and row["output"] == f"log-odds of class {row['prediction']}"
    json.dumps(rows, allow_nan=False)


def test_lightgbm_ranks_the_planted_feature_first() -> None:
    model, X, y = lgbm()
    assert top(permutation_importance_table(model, X[400:], y[400:], NAMES, task="classification")) == "signal"
    assert top(shap_importance(model, X[400:], NAMES)) == "signal"
    rows = explain_rows(model, X[400:406], NAMES, background=X[:400], top_k=5)
    margin = model.predict(X[400:406], raw_score=True)  # SHAP adds up to the raw log-odds
    for row, m in zip(rows, margin, strict=True):
        assert total(row) == pytest.approx(m if row["prediction"] == 1 else -m, abs=1e-4)
    row = explain_rows(model, np.array([[0, 0, 2.5, 0, 0]], np.float32), NAMES, background=X)[0]
    assert row["prediction"] == 1 and row["contributions"][0]["feature"] == "signal"
    assert row["contributions"][0]["contribution"] > 0


def test_torch_mlp_ranks_the_planted_feature_first() -> None:
    module, X, y = trained_mlp()
    ig = integrated_gradients(module, X[400:], NAMES)
    assert top(ig) == "signal"
    assert top(permutation_importance_table(module, X[400:], y[400:], NAMES, task="classification")) == "signal"
    rows = explain_rows(module, X[400:404], NAMES, background=X[:400], top_k=5)
    with torch.no_grad():
        logits = module(torch.as_tensor(X[400:404])).numpy()
    for i, row in enumerate(rows):  # completeness: attributions sum to logit(x) - logit(baseline)
        assert total(row) == pytest.approx(logits[i, row["prediction"]], abs=0.05)
        assert row["method"] == "integrated_gradients"
    assert module.training  # explanations put the module back in the mode they found it in


def test_fallback_model_gets_kernel_shap() -> None:
    X, y = planted()
    model = KNeighborsClassifier(15).fit(X[:400], y[:400])
    assert explanation_method(model) == "kernel_shap"
    assert model_importance(model, X, NAMES) == {"method": "none", "features": []}
    row = np.array([[0, 0, 2.5, 0, 0]], np.float32)
    explained = explain_rows(model, row, NAMES, background=X[:400], top_k=5)[0]
    assert explained["contributions"][0]["feature"] == "signal"
    assert total(explained) == pytest.approx(model.predict_proba(row)[0, 1], abs=1e-6)  # SHAP efficiency


def test_trainwell_model_wrappers_are_unwrapped() -> None:
    model, X, y = lgbm()
    wrapped = SklearnModel("lightgbm", {}, model, "classification")
    assert explanation_method(wrapped) == "tree_shap"
    result = model_importance(wrapped, X[400:], NAMES)
    assert result["method"] == "tree_shap" and top(result["features"]) == "signal"
    assert top(permutation_importance_table(wrapped, X[400:], y[400:], NAMES, task="classification")) == "signal"


def test_multiclass_explanations() -> None:
    model, X, y = lgbm(classes=3)
    assert top(shap_importance(model, X[400:], NAMES)) == "signal"
    rows = explain_rows(model, X[400:403], NAMES, background=X[:400])
    assert [r["prediction"] for r in rows] == model.predict(X[400:403]).tolist()
    linear = LogisticRegression().fit(X, y)
    coefs = linear_coefficients(linear, NAMES, class_names=["low", "mid", "high"])
    assert top(coefs) == "signal" and set(coefs[0]["coefficients"]) == {"low", "mid", "high"}
    assert coefs[0]["coefficients"]["high"] > 0 > coefs[0]["coefficients"]["low"]


def test_partial_dependence_follows_the_model() -> None:
    X, _ = planted()
    rng = np.random.default_rng(1)
    y = 2.0 * X[:, 2] - 0.5 * X[:, 0] + rng.normal(0, 0.1, len(X))
    linear = LinearRegression().fit(X, y)
    curve = partial_dependence_curves(linear, X, ["signal", 0], NAMES, grid_resolution=10)
    slope = np.diff(curve[0]["average"][0]) / np.diff(curve[0]["grid"])
    assert slope == pytest.approx(np.full(9, linear.coef_[2]), rel=1e-4)  # a linear model's PD is its line
    assert curve[1]["feature"] == "noise_a" and curve[0]["outputs"] == ["value"]
    tree = LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1).fit(X, y)
    rising = partial_dependence_curves(tree, X, ["signal"], NAMES)[0]["average"][0]
    assert rising[-1] - rising[0] > 4
    module, Xc, _ = trained_mlp()  # a torch module goes through the adapter
    proba = partial_dependence_curves(module, Xc, ["signal"], NAMES, grid_resolution=8)[0]
    assert proba["outputs"] == ["probability of class 1"] and proba["average"][0][-1] > proba["average"][0][0] + 0.5
    json.dumps(curve, allow_nan=False)
    with pytest.raises(UserError, match="feature 9"):
        partial_dependence_curves(linear, X, [9], NAMES)
    with pytest.raises(UserError, match="feature 'signl'"):
        partial_dependence_curves(linear, X, ["signl"], NAMES)


def test_partial_dependence_reads_in_the_columns_own_units() -> None:
    """Through a fitted preparer: age per year (not per standard deviation), city over its categories."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.uniform(20, 70, 300), "city": rng.choice(["lyon", "nice", "paris"], 300)})
    y = 0.1 * frame["age"] + frame["city"].map({"lyon": 0.0, "nice": 1.0, "paris": 3.0}) + rng.normal(0, 0.1, 300)
    preparer = build_preparer({"age": "numeric", "city": "categorical"}, PrepareConfig()).fit(frame)
    X, described = preparer.transform(frame), describe_features(preparer)
    names = [f.name for f in described]
    model = LinearRegression().fit(X, y)
    curves = partial_dependence_curves(model, X, ["age", "city=nice", "city=paris"], names, described=described)
    age, city = curves  # two categories of one column give one curve
    assert age["units"] == "original" and 20 <= min(age["grid"]) < 30 and 60 < max(age["grid"]) <= 70
    assert np.diff(age["average"][0]) / np.diff(age["grid"]) == pytest.approx(np.full(19, 0.1), rel=0.03)
    assert np.ptp(age["grid_prepared"]) < 4  # what the model saw: standardised
    assert city["feature"] == "city" and city["kind"] == "categorical" and city["grid"] == ["lyon", "nice", "paris"]
    assert np.diff(city["average"][0]) == pytest.approx([1.0, 2.0], abs=0.05)
    json.dumps(curves, allow_nan=False)
    ordinal = build_preparer({"age": "numeric", "city": "categorical"}, PrepareConfig(encoding="ordinal")).fit(frame)
    X, described = ordinal.transform(frame), describe_features(ordinal)
    paris = LogisticRegression().fit(X, frame["city"] == "paris")
    (curve,) = partial_dependence_curves(paris, X, ["city"], ["age", "city"], described=described)
    assert curve["grid"] == ["lyon", "nice", "paris"] and curve["outputs"] == ["probability of class True"]
    assert curve["average"][0][2] > curve["average"][0][0]


def test_regression_rows_add_up() -> None:
    X, _ = planted()
    y = 2.0 * X[:, 2] + 0.5 * X[:, 1]
    tree = LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1).fit(X, y)
    for row, value in zip(explain_rows(tree, X[:3], NAMES, background=X), tree.predict(X[:3]), strict=True):
        assert row["output"] == "value" and row["contributions"][0]["feature"] == "signal"
        assert total(row) == pytest.approx(value, abs=1e-6)
    linear = torch.nn.Linear(5, 1)  # integrated gradients of a linear function are exact: w * (x - baseline)
    with torch.no_grad():
        linear.weight[:] = torch.tensor([[0.0, 0.5, 3.0, 0.0, 0.0]])
    assert top(integrated_gradients(linear, X, NAMES)) == "signal"
    row = explain_rows(linear, X[:1], NAMES, background=X, top_k=5)[0]
    expected = 3.0 * (X[0, 2] - X[:, 2].mean())
    assert row["contributions"][0]["contribution"] == pytest.approx(expected, rel=1e-4)


def test_method_table() -> None:
    X, y = planted(200)
    assert explanation_method(LogisticRegression().fit(X, y)) == "linear"
    assert explanation_method(LGBMRegressor(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)) == "tree_shap"
    assert explanation_method(MLP()) == "integrated_gradients"


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_trainwell_neural_model(task: str) -> None:
    """The registry's MLP: IG runs on its module, and rows add up in the target's own units."""
    from trainwell.config import TrainConfig
    from trainwell.models.registry import BuildContext, create_model

    X, y = planted(400)
    target = y if task == "classification" else 100 + 20 * X[:, 2] + 5 * X[:, 1]
    ctx = BuildContext(task=task, n_features=5, n_classes=2 if task == "classification" else 0, seed=0,  # type: ignore[arg-type]
                       train=TrainConfig(epochs=15, lr=0.01, early_stopping=False, device="cpu"))  # fmt: skip
    model = create_model("mlp", {"hidden_sizes": [16], "dropout": 0.0}, ctx).fit(X, target)
    assert explanation_method(model) == "integrated_gradients"
    assert top(model_importance(model, X, NAMES)["features"]) == "signal"
    assert top(permutation_importance_table(model, X, target, NAMES, task=task)) == "signal"  # type: ignore[arg-type]
    rows = explain_rows(model, X[:3], NAMES, background=X)
    if task == "regression":
        for row, value in zip(rows, model.predict(X[:3]), strict=True):
            assert total(row) == pytest.approx(value, abs=0.5)  # IG completeness, in target units (std 20)
    curve = partial_dependence_curves(model, X, ["signal"], NAMES)[0]
    assert curve["average"][0][-1] > curve["average"][0][0]
