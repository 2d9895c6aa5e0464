"""Small data and nets for the training-loop tests: each fit takes a fraction of a second."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from torch import nn

from trainwell.config import TrainConfig

torch.set_num_threads(1)

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="session")
def moons() -> Data:
    X, y = make_moons(300, noise=0.2, random_state=0)
    X = X.astype(np.float32)
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture(scope="session")
def wave() -> Data:
    """A smooth regression target in standardised units."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (300, 2)).astype(np.float32)
    y = (np.sin(X[:, 0]) + 0.5 * X[:, 1]).astype(np.float32)
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture
def net() -> Callable[..., nn.Module]:
    """A seeded two-layer net: net(n_in, n_out, dropout=0.0)."""

    def build(n_in: int = 2, n_out: int = 2, dropout: float = 0.0, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, n_out))

    return build


@pytest.fixture
def cfg() -> Callable[..., TrainConfig]:
    """cfg(**changes): a quick TrainConfig on the CPU, with early stopping off unless asked for."""

    def make(**changes: Any) -> TrainConfig:
        base: dict[str, Any] = {"epochs": 5, "batch_size": 32, "lr": 0.01, "early_stopping": False, "device": "cpu"}
        return TrainConfig(**(base | changes))

    return make
