"""Neural models: they learn, they are reproducible, and a saved model predicts exactly like the original."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.datasets import load_digits, make_moons
from sklearn.metrics import r2_score

from trainwell.config import TrainConfig
from trainwell.errors import UserError
from trainwell.models import registry
from trainwell.models.neural import ARCHITECTURES, CNNParams, MLPParams, NeuralModel, build_cnn, build_mlp

torch.set_num_threads(1)


def context(task: str = "classification", n_features: int = 2, n_classes: int = 2, seed: int = 0,
            image_shape: tuple[int, int, int] | None = None, **train: Any) -> registry.BuildContext:  # fmt: skip
    cfg = TrainConfig(**({"epochs": 5, "device": "cpu"} | train))
    return registry.BuildContext(task, n_features, n_classes if task == "classification" else 0, seed, cfg,
                                 image_shape=image_shape)  # fmt: skip


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, ...]:
    X, y = make_moons(500, noise=0.15, random_state=0)
    X = X.astype(np.float32)
    return X[:300], y[:300], X[300:], y[300:]


@pytest.fixture(scope="module")
def curve() -> tuple[np.ndarray, ...]:
    """A smooth function in large units, so target scaling matters."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 3)).astype(np.float32)
    y = 300 + 50 * (np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2])
    return X[:300], y[:300], X[300:], y[300:]


@pytest.fixture(scope="module")
def trained_mlp(moons: Any) -> NeuralModel:
    X, y, Xv, yv = moons
    ctx = context(epochs=40, lr=0.01, batch_size=32, early_stopping=False)
    return NeuralModel("mlp", MLPParams(batch_norm=True), ctx).fit(X, y, Xv, yv)


def test_mlp_learns_moons(trained_mlp: NeuralModel, moons: Any) -> None:
    _, _, Xv, yv = moons
    assert (trained_mlp.predict(Xv) == yv).mean() >= 0.95
    assert trained_mlp.history[-1]["val_accuracy"] == pytest.approx((trained_mlp.predict(Xv) == yv).mean())


def test_mlp_regression_in_original_units(curve: Any) -> None:
    X, y, Xv, yv = curve
    ctx = context("regression", 3, epochs=60, lr=0.01, batch_size=32, early_stopping=False)
    model = NeuralModel("mlp", MLPParams(hidden_sizes=[64, 64], dropout=0.0), ctx).fit(X, y, Xv, yv)
    pred = model.predict(Xv)
    assert pred.dtype == np.float64 and r2_score(yv, pred) >= 0.9
    rmse = float(np.sqrt(np.mean((pred - yv) ** 2)))
    assert model.history[-1]["val_rmse"] == pytest.approx(rmse, rel=1e-4)  # reported in the target's units
    assert model.target_mean_ == pytest.approx(y.mean()) and model.predict_proba(Xv) is None


def test_cnn_learns_digits() -> None:
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = (X[order] / 16).astype(np.float32), y[order]
    ctx = context(n_features=64, n_classes=10, epochs=8, early_stopping=False)
    model = NeuralModel("cnn", CNNParams(), ctx).fit(X[:1200], y[:1200], X[1200:1400], y[1200:1400])
    assert (model.predict(X[1400:]) == y[1400:]).mean() >= 0.95


def test_predictions_and_probabilities(trained_mlp: NeuralModel, moons: Any) -> None:
    _, _, Xv, _ = moons
    pred, proba = trained_mlp.predict(Xv), trained_mlp.predict_proba(Xv)
    assert pred.dtype == np.int64 and proba is not None and proba.dtype == np.float64 and proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), pred)


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_save_and_load_reproduce_predictions_exactly(name: str, task: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 16)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) if task == "classification" else 10 * X[:, 0] + 3
    ctx = context(task, 16, epochs=2)
    model = registry.create_model(name, {"batch_norm": True}, ctx).fit(X[:60], y[:60], X[60:], y[60:])
    model.save(tmp_path / "m")
    loaded = registry.load_model(tmp_path / "m")
    assert isinstance(loaded, NeuralModel) and loaded.name == name
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    if task == "classification":
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]


def test_same_seed_same_model_different_seed_different_weights(moons: Any) -> None:
    X, y, Xv, yv = moons
    models = [NeuralModel("mlp", MLPParams(), context(seed=s, epochs=2)).fit(X, y, Xv, yv) for s in (0, 0, 1)]
    np.testing.assert_array_equal(models[0].predict_proba(Xv), models[1].predict_proba(Xv))
    assert [r["val_loss"] for r in models[0].history] == [r["val_loss"] for r in models[1].history]
    first = [m.module_.state_dict()["0.weight"] for m in models]  # type: ignore[union-attr]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])


def test_cnn_needs_an_image() -> None:
    with pytest.raises(UserError, match="cnn needs image data.*use mlp"):
        registry.create_model("cnn", {}, context(n_features=10))
    with pytest.raises(UserError, match="holds 48 pixels"):
        registry.create_model("cnn", {}, context(n_features=64, image_shape=(3, 4, 4)))


def test_cnn_takes_rectangular_multichannel_images() -> None:
    ctx = context(n_features=2 * 4 * 10, n_classes=3, image_shape=(2, 4, 10))
    module = build_cnn(CNNParams(channels=[4, 4, 4]), ctx)  # the third block has too few pixels to pool
    assert module(torch.zeros(5, 80)).shape == (5, 3)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "leaky_relu", "elu", "selu", "sigmoid"])
def test_every_activation_builds(activation: str) -> None:
    params = MLPParams.model_validate({"activation": activation, "hidden_sizes": [8]})
    module = build_mlp(params, context(n_features=4, n_classes=3))
    assert module(torch.zeros(2, 4)).shape == (2, 3)
    assert build_mlp(MLPParams(hidden_sizes=[]), context("regression", 4))(torch.zeros(2, 4)).shape == (2, 1)


def test_params_are_checked_and_described() -> None:
    with pytest.raises(ValidationError):
        MLPParams(dropout=1.0)
    with pytest.raises(ValidationError):
        MLPParams(hidden=[3])  # type: ignore[call-arg]
    with pytest.raises(UserError, match="model.kernel_size"):
        registry.parse_params("cnn", {"kernel_size": 0})
    for params, _ in ARCHITECTURES.values():
        assert all(field.description for field in params.model_fields.values())


def test_user_mistakes_are_user_errors(moons: Any) -> None:
    X, y, _, _ = moons
    model = NeuralModel("mlp", MLPParams(), context(n_classes=2))
    with pytest.raises(UserError, match="not trained"):
        model.predict(X)
    with pytest.raises(UserError, match="class indices 0..1"):
        model.fit(X, y + 1)
    with pytest.raises(UserError, match=r"expects \(rows, 2\)"):
        model.fit(np.zeros((5, 3), np.float32), np.zeros(5, int))
    with pytest.raises(UserError, match="at least 2 classes"):
        registry.create_model("mlp", {}, context(n_classes=1))
