"""Autoencoders as scikit-learn estimators over a small torch network: codes for dimensionality reduction,
reconstruction error for anomaly detection.

They train in a loop of their own (Adam, MSE, seeded, early stopping on a held-out 10%): the supervised loop
takes 1-D targets, a reconstruction has (B, F). Float64 on the CPU, so a row's score does not depend on
which rows it is batched with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from trainwell.errors import UserError
from trainwell.models.neural import ACTIVATIONS

WEIGHTS = "weights.safetensors"


class _Autoencoder(nn.Module):
    """Standardise → encoder MLP → (B, K) codes → mirrored decoder MLP; the scaling is saved with the weights."""

    def __init__(self, n_features: int, n_components: int, hidden_sizes: tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.encoder = _mlp([n_features, *hidden_sizes, n_components], activation)
        self.decoder = _mlp([n_components, *reversed(hidden_sizes), n_features], activation)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.standardise(x))  # (B, F) → (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))  # (B, F) reconstruction, in standardised units


def _mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Linear layers with `activation` between them; the last layer is linear (codes and outputs are unbounded)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [nn.Linear(a, b)] + ([ACTIVATIONS[activation]()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers)


def _train_autoencoder(module: _Autoencoder, X: torch.Tensor, est: AutoencoderTransformer) -> list[dict[str, float]]:
    """Adam on the MSE of the reconstruction, early stopping on a held-out 10%; ends with the best weights.

    Not `training.loop.fit`: that loop takes 1-D targets (class indices or one value per row) and reshapes
    regression outputs to (B,), so it cannot train a (B, F) reconstruction of the input.
    """
    gen = torch.Generator().manual_seed(est.random_state)
    order = torch.randperm(len(X), generator=gen)
    n_val = len(X) // 10 if len(X) >= 20 else 0  # too few rows to hold any out: monitor the training loss
    val, train = X[order[:n_val]], X[order[n_val:]]
    optimizer = torch.optim.Adam(module.parameters(), lr=est.lr)
    best, best_state, waited, history = float("inf"), _copy(module), 0, []
    for epoch in range(1, est.epochs + 1):
        module.train()
        total = 0.0
        for idx in torch.randperm(len(train), generator=gen).split(est.batch_size):
            loss = F.mse_loss(module(train[idx]), module.standardise(train[idx]))  # (B, F) vs (B, F)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        module.eval()
        with torch.no_grad():
            watched = val if n_val else train
            val_loss = F.mse_loss(module(watched), module.standardise(watched)).item()
        history.append({"epoch": epoch, "train_loss": total / len(train), "val_loss": val_loss})
        if val_loss < best:
            best, best_state, waited = val_loss, _copy(module), 0
        else:
            waited += 1
            if waited >= est.patience:
                break
    module.load_state_dict(best_state)
    return history


def _copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class AutoencoderTransformer(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer whose `transform` gives an autoencoder's bottleneck codes (N, n_components).

    Features are standardised inside the network; `inverse_transform` decodes codes back to original units and
    `score_samples` is minus the per-row reconstruction error (mean squared, in standardised units).
    Training runs on the CPU in float64, seeded by `random_state` (initial weights, the held-out 10%, shuffles).
    """

    def __init__(self, n_components: int = 2, hidden_sizes: tuple[int, ...] = (64,), activation: str = "relu",
                 epochs: int = 100, batch_size: int = 64, lr: float = 1e-3, patience: int = 10,
                 random_state: int = 0) -> None:  # fmt: skip
        self.n_components, self.hidden_sizes, self.activation = n_components, hidden_sizes, activation
        self.epochs, self.batch_size, self.lr, self.patience = epochs, batch_size, lr, patience
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> AutoencoderTransformer:
        X = validate_data(self, X, dtype=np.float64)
        torch.manual_seed(self.random_state)  # initial weights follow the seed
        self.module_ = self._build(X.shape[1])
        std = X.std(axis=0)
        self.module_.mean.copy_(torch.as_tensor(X.mean(axis=0)))
        self.module_.scale.copy_(torch.as_tensor(np.where(std > 0, std, 1.0)))  # constant columns stay put
        self.history_ = _train_autoencoder(self.module_, torch.tensor(X), self)
        self.module_.eval()
        return self

    def transform(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            return self.module_.encode(self._tensor(X)).numpy()  # (N, K)

    def inverse_transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        module = self.module_
        with torch.no_grad():
            out = module.decoder(torch.tensor(np.asarray(X, dtype=np.float64)))  # (N, K) → (N, F) standardised
            return (out * module.scale + module.mean).numpy()

    def score_samples(self, X: Any) -> np.ndarray:
        x = self._tensor(X)
        with torch.no_grad():
            return -(self.module_(x) - self.module_.standardise(x)).square().mean(dim=1).numpy()  # (N,)

    def weights(self) -> dict[str, torch.Tensor]:
        """The tensors `save_unsupervised` writes: the network's weights and its feature scaling."""
        check_is_fitted(self)
        return {k: v.detach().contiguous() for k, v in self.module_.state_dict().items()}

    def set_weights(self, tensors: dict[str, torch.Tensor]) -> AutoencoderTransformer:
        """Restore a fitted state from `weights()`; tensors that do not fit the parameters are a UserError."""
        self.n_features_in_ = int(tensors["mean"].shape[0]) if "mean" in tensors else 0
        self.module_ = self._build(self.n_features_in_)
        try:
            self.module_.load_state_dict(tensors)
        except RuntimeError:
            raise UserError(f"{WEIGHTS} does not fit the autoencoder its model.json describes; the run was "
                            "altered, train it again") from None  # fmt: skip
        self.module_.eval()
        self.history_: list[dict[str, float]] = []
        return self

    def _build(self, n_features: int) -> _Autoencoder:
        # float64: small networks on the CPU, and outputs that do not depend on how rows are batched
        return _Autoencoder(n_features, self.n_components, tuple(self.hidden_sizes), self.activation).double()

    def _tensor(self, X: Any) -> torch.Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return torch.as_tensor(np.require(X, requirements="W"))  # torch refuses read-only memory


class AutoencoderDetector(OutlierMixin, BaseEstimator):
    """Anomalies by autoencoder reconstruction error, with scikit-learn's outlier-detector API.

    `score_samples` is minus the reconstruction error (higher is more normal); `predict` gives -1 for the
    `contamination` share of training rows rebuilt worst (and new rows past that cut), +1 otherwise.
    """

    def __init__(self, n_components: int = 2, hidden_sizes: tuple[int, ...] = (64,), activation: str = "relu",
                 epochs: int = 100, batch_size: int = 64, lr: float = 1e-3, patience: int = 10,
                 contamination: float = 0.05, random_state: int = 0) -> None:  # fmt: skip
        self.n_components, self.hidden_sizes, self.activation = n_components, hidden_sizes, activation
        self.epochs, self.batch_size, self.lr, self.patience = epochs, batch_size, lr, patience
        self.contamination, self.random_state = contamination, random_state

    def fit(self, X: Any, y: Any = None) -> AutoencoderDetector:
        X = validate_data(self, X, dtype=np.float64)
        self.autoencoder_ = self._autoencoder().fit(X)
        self.offset_ = float(np.quantile(self.autoencoder_.score_samples(X), self.contamination))
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.autoencoder_.score_samples(X)

    def decision_function(self, X: Any) -> np.ndarray:
        return self.score_samples(X) - self.offset_  # negative: an anomaly

    def predict(self, X: Any) -> np.ndarray:
        return np.where(self.decision_function(X) < 0, -1, 1)

    def weights(self) -> dict[str, torch.Tensor]:
        """The tensors `save_unsupervised` writes: the autoencoder's and the score cut."""
        check_is_fitted(self)
        return self.autoencoder_.weights() | {"offset": torch.tensor([self.offset_], dtype=torch.float64)}

    def set_weights(self, tensors: dict[str, torch.Tensor]) -> AutoencoderDetector:
        """Restore a fitted state from `weights()`."""
        tensors = dict(tensors)
        offset = tensors.pop("offset", None)
        if offset is None or offset.numel() != 1:
            raise UserError(f"{WEIGHTS} holds no score cut (offset); the run was altered, train it again")
        self.autoencoder_ = self._autoencoder().set_weights(tensors)
        self.n_features_in_, self.offset_ = self.autoencoder_.n_features_in_, float(offset.item())
        return self

    def _autoencoder(self) -> AutoencoderTransformer:
        params = self.get_params()
        del params["contamination"]
        return AutoencoderTransformer(**params)
