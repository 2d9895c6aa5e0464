"""Neural models: plain builder functions for an MLP and a small CNN, and one `NeuralModel` wrapper.

The builders only turn parameters into a torch module; `NeuralModel` owns what is the same for every
network: seeding, target scaling for regression, the training loop, batched inference, save and load.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import save_file
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from torch import nn

from trainwell.artifacts import load_tensors
from trainwell.config import TrainConfig
from trainwell.errors import UserError
from trainwell.files import atomic_path, write_json
from trainwell.models.registry import (
    BuildContext,
    ModelTags,
    NotTrainedError,
    TrainwellTags,
    model_json,
    register_loader,
    register_model,
    score_model,
    with_trainwell_tags,
)
from trainwell.training.callbacks import Callback, ProgressBar
from trainwell.training.checkpoint import Checkpointing
from trainwell.training.loop import fit as fit_loop
from trainwell.training.loop import forward_in_batches

EPOCHS = TrainwellTags(epoch_history=True)  # what every neural registry entry declares

BOTH = ("classification", "regression")
WEIGHTS = "weights.safetensors"
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU, "selu": nn.SELU, "sigmoid": nn.Sigmoid,
}  # fmt: skip


class MLPParams(BaseModel):
    """A multilayer perceptron for tabular features."""

    model_config = ConfigDict(extra="forbid")

    hidden_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        [128, 64], description="Units per hidden layer, input side first; [] gives a linear model."
    )
    activation: Literal["relu", "gelu", "tanh", "leaky_relu", "elu", "selu", "sigmoid"] = Field(
        "relu", description="Nonlinearity after each hidden layer."
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="Fraction of hidden units dropped while training.")
    batch_norm: bool = Field(False, description="Batch normalisation after each hidden linear layer.")


class CNNParams(BaseModel):
    """A small convolutional network for image arrays."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Annotated[int, Field(ge=1)]] = Field(
        [32, 64], description="Filters per conv block; each block is conv, (batch norm), ReLU, 2x2 max-pool."
    )
    kernel_size: int = Field(3, ge=1, description="Side of the square convolution kernels ('same' padding).")
    hidden: int = Field(128, ge=1, description="Units in the dense layer after the conv blocks.")
    dropout: float = Field(0.25, ge=0, lt=1, description="Dropout before the output layer while training.")
    batch_norm: bool = Field(True, description="Batch normalisation after each convolution.")


def _n_outputs(ctx: BuildContext) -> int:
    if ctx.task == "classification" and ctx.n_classes < 2:
        raise UserError(f"classification needs at least 2 classes in the target, found {ctx.n_classes}")
    return ctx.n_classes if ctx.task == "classification" else 1


def build_mlp(p: MLPParams, ctx: BuildContext) -> nn.Module:
    """(B, F) features → (B, K) logits or (B, 1) value."""
    layers: list[nn.Module] = []
    width = ctx.n_features
    for units in p.hidden_sizes:
        layers.append(nn.Linear(width, units, bias=not p.batch_norm))  # batch norm brings its own shift
        if p.batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(ACTIVATIONS[p.activation]())
        if p.dropout:
            layers.append(nn.Dropout(p.dropout))
        width = units
    layers.append(nn.Linear(width, _n_outputs(ctx)))
    return nn.Sequential(*layers)


def image_shape(ctx: BuildContext) -> tuple[int, int, int]:
    """(C, H, W) from the context, or a square single-channel image when the pixel count allows one."""
    if ctx.image_shape is not None:
        c, h, w = ctx.image_shape
        if c * h * w != ctx.n_features:
            raise UserError(f"cnn: image shape {ctx.image_shape} holds {c * h * w} pixels, the data has "
                            f"{ctx.n_features} features")  # fmt: skip
        return c, h, w
    side = math.isqrt(ctx.n_features)
    if side < 2 or side * side != ctx.n_features:
        raise UserError(f"cnn needs image data; {ctx.n_features} features are not a square image "
                        "- use mlp or a classical model such as lightgbm")  # fmt: skip
    return 1, side, side


class CNN(nn.Module):
    """Conv → (BN) → ReLU → MaxPool blocks, then a dense head, over flat pixel vectors."""

    def __init__(self, shape: tuple[int, int, int], p: CNNParams, n_out: int) -> None:
        super().__init__()
        self.shape = shape
        c, h, w = shape
        blocks: list[nn.Module] = []
        for out_c in p.channels:
            blocks.append(nn.Conv2d(c, out_c, p.kernel_size, padding="same", bias=not p.batch_norm))
            blocks += [nn.BatchNorm2d(out_c)] if p.batch_norm else []
            blocks.append(nn.ReLU())
            if h >= 2 and w >= 2:  # small images run out of pixels: later blocks keep their size
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out_c
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c * h * w, p.hidden), nn.ReLU(), nn.Dropout(p.dropout), nn.Linear(p.hidden, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), *self.shape)  # (B, C*H*W) → (B, C, H, W)
        return self.head(self.features(x))  # (B, n_out)


def build_cnn(p: CNNParams, ctx: BuildContext) -> nn.Module:
    return CNN(image_shape(ctx), p, _n_outputs(ctx))


# name → (params class, builder): how a saved model.json becomes a module again
ARCHITECTURES: dict[str, tuple[type[BaseModel], Callable[[Any, BuildContext], nn.Module]]] = {
    "mlp": (MLPParams, build_mlp),
    "cnn": (CNNParams, build_cnn),
}


class NeuralModel(BaseEstimator):
    """A torch network behind the Model protocol; the constructor stores, `fit` builds and trains."""

    family = "neural"

    def __init__(self, name: str, params: BaseModel, ctx: BuildContext) -> None:
        self.name, self.params, self.ctx = name, params, ctx

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch rows of the last fit (empty before fitting or after loading)."""
        return getattr(self, "history_", [])

    def __sklearn_tags__(self) -> ModelTags:
        classifier = self.ctx.task == "classification"
        abilities = TrainwellTags(probabilities=classifier, epoch_history=True, sample_weight=True, incremental=True,
                                  inputs="image pixels" if self.name == "cnn" else "dense float32")  # fmt: skip
        tags = with_trainwell_tags(super().__sklearn_tags__(), self.ctx.task, abilities)
        tags.non_deterministic = self.ctx.train.device != "cpu"  # GPU kernels may differ in the last bits
        return tags

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None, *, callbacks: Sequence[Callback] = (),
    ) -> NeuralModel:
        """Build the network from the seed and train it; regression targets are standardised meanwhile."""
        ctx = self.ctx
        X, y = validate_data(self, X, y, dtype=np.float32)  # (N, F); sets n_features_in_; rejects NaN, sparse
        y, sample_weight = self._targets(y), self._weights(sample_weight, len(X))
        if X.shape[1] != ctx.n_features:  # the network's input width is fixed when it is built
            raise UserError(f"model {self.name} expects (rows, {ctx.n_features}) features, got {X.shape}")
        val: tuple[np.ndarray, np.ndarray] | None = None  # rows that early stopping watches
        if X_val is not None and y_val is not None:
            val = (validate_data(self, X_val, reset=False, dtype=np.float32), self._targets(y_val))
        regression = ctx.task == "regression"
        self.target_mean_, self.target_std_ = 0.0, 1.0  # regression targets are trained standardised
        if regression:
            std = float(y.std())
            self.target_mean_, self.target_std_ = float(y.mean()), std if std > 0 else 1.0
            y = self._scale(y)
            val = (val[0], self._scale(val[1])) if val is not None else None
        torch.manual_seed(ctx.seed)  # initial weights follow the seed
        self.module_ = ARCHITECTURES[self.name][1](self.params, ctx)
        if ctx.task == "classification":
            self.classes_ = np.arange(ctx.n_classes)  # targets are class indices 0..K-1
        checkpoints = Checkpointing(ctx.checkpoint_dir, ctx.resume) if ctx.checkpoint_dir is not None else None
        self.history_ = fit_loop(
            self.module_, X, y, val=val, task=ctx.task, cfg=ctx.train, seed=ctx.seed,
            callbacks=[*callbacks, ProgressBar(quiet=ctx.quiet)], unscale=self._unscale if regression else None,
            sample_weight=sample_weight, checkpoints=checkpoints,
        )  # fmt: skip
        return self

    def partial_fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None, *, classes: Any = None, epochs: int | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> NeuralModel:
        """Continue training the fitted network on new rows for `epochs` (default train.epochs), from its weights
        and with its target scaling kept: how `trainwell update` teaches a deployed network new data.

        `classes` is scikit-learn's partial_fit argument; a network's classes are fixed when it is built (0..K-1).
        """
        if not hasattr(self, "module_"):
            return self.fit(X, y, X_val, y_val, sample_weight, callbacks=callbacks)
        ctx = self.ctx
        X = validate_data(self, X, reset=False, dtype=np.float32)
        y, sample_weight = self._targets(np.asarray(y)), self._weights(sample_weight, len(X))
        val = None
        if X_val is not None and y_val is not None:
            val = (validate_data(self, X_val, reset=False, dtype=np.float32), self._targets(y_val))
        regression = ctx.task == "regression"
        if regression:  # the scale the network was trained in
            y = self._scale(y)
            val = (val[0], self._scale(val[1])) if val is not None else None
        cfg = ctx.train.model_copy(update={"epochs": epochs or ctx.train.epochs})
        self.history_ = fit_loop(
            self.module_, X, y, val=val, task=ctx.task, cfg=cfg, seed=ctx.seed,
            callbacks=[*callbacks, ProgressBar(quiet=ctx.quiet)], unscale=self._unscale if regression else None,
            sample_weight=sample_weight, checkpoints=None,
        )  # fmt: skip
        return self

    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """Accuracy (classification) or R² (regression), as scikit-learn's mixins define `score`."""
        return score_model(self, X, y, sample_weight)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(N,) class indices as int64, or values in the target's units as float64."""
        out = self._outputs(X)  # (N, K) or (N, 1)
        if self.ctx.task == "classification":
            return out.argmax(1).numpy().astype(np.int64)
        return self._unscale(out[:, 0].double()).numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        """(N, K) class probabilities as float64 rows summing to 1; None for regression."""
        if self.ctx.task != "classification":
            self._features(X)  # the same checks as a classifier's, though the answer is None
            return None
        return torch.softmax(self._outputs(X).double(), dim=1).numpy()

    def save(self, directory: Path) -> None:
        """model.json (architecture, shapes, target scaling) and weights.safetensors, each written atomically."""
        module = self._fitted()
        directory = Path(directory)
        weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        with atomic_path(directory / WEIGHTS) as tmp:
            save_file(weights, str(tmp))
        ctx = self.ctx
        write_json(directory / "model.json", {
            "family": self.family, "name": self.name, "params": self.params.model_dump(mode="json"),
            "task": ctx.task, "n_features": ctx.n_features, "n_classes": ctx.n_classes,
            "image_shape": list(ctx.image_shape) if ctx.image_shape else None,
            "target_mean": self.target_mean_, "target_std": self.target_std_, "seed": ctx.seed,
            "train": ctx.train.model_dump(mode="json"), "torch": torch.__version__,
        })  # fmt: skip

    @classmethod
    def load(cls, directory: Path) -> NeuralModel:
        """Rebuild the network from model.json and load its weights; predictions equal the saved model's."""
        directory = Path(directory)
        path = directory / "model.json"
        with model_json(directory) as meta:
            if meta.get("name") not in ARCHITECTURES:
                raise UserError(f"{directory}: unknown neural model {meta.get('name')!r} in model.json")
            params_cls, build = ARCHITECTURES[meta["name"]]
            shape = meta.get("image_shape")
            ctx = BuildContext(
                task=meta["task"], n_features=meta["n_features"], n_classes=meta["n_classes"], seed=meta["seed"],
                train=TrainConfig.model_validate(meta["train"]), image_shape=tuple(shape) if shape else None,
            )  # fmt: skip
            model = cls(meta["name"], params_cls.model_validate(meta["params"]), ctx)
            model.target_mean_, model.target_std_ = float(meta["target_mean"]), float(meta["target_std"])
        module = build(model.params, ctx)
        try:
            module.load_state_dict(load_tensors(directory / WEIGHTS))
        except RuntimeError:  # names or shapes that do not fit the architecture model.json describes
            raise UserError(f"{directory / WEIGHTS} does not fit the model in {path}; the run was altered, "
                            "train it again") from None  # fmt: skip
        use_gpu = ctx.train.device != "cpu" and torch.cuda.is_available()  # predict where it was trained
        model.module_ = module.to("cuda" if use_gpu else "cpu").eval()
        model.n_features_in_ = ctx.n_features
        return model

    # ------------------------------------------------------------ helpers

    def _fitted(self) -> nn.Module:
        if getattr(self, "module_", None) is None:
            raise NotTrainedError(f"model {self.name} is not trained yet; call fit first")
        return self.module_

    def _outputs(self, X: np.ndarray) -> torch.Tensor:
        """Eval-mode outputs on the CPU, computed in batches on the module's device."""
        X = self._features(X)
        module = self._fitted()
        device = next(module.parameters()).device
        return forward_in_batches(module, torch.as_tensor(X, device=device)).cpu()

    def _features(self, X: np.ndarray) -> np.ndarray:
        """(N, F) float32 features with as many columns as the model was fitted on."""
        self._fitted()  # predicting before fit is a NotTrainedError
        return validate_data(self, X, reset=False, dtype=np.float32)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if self.ctx.task == "regression":
            return y.astype(np.float64)
        check_classification_targets(y)  # a continuous target is a ValueError, as scikit-learn's classifiers raise
        if not np.issubdtype(y.dtype, np.number) or len(y) and (y.min() < 0 or y.max() >= self.ctx.n_classes):
            raise UserError(f"classification targets must be class indices 0..{self.ctx.n_classes - 1}")
        return y.astype(np.int64)

    @staticmethod
    def _weights(sample_weight: np.ndarray | None, n_rows: int) -> np.ndarray | None:
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (n_rows,) or (weights < 0).any() or not weights.sum() > 0:
            raise ValueError(f"sample_weight needs one non-negative weight per row ({n_rows}), not all zero; "
                             f"got shape {weights.shape}")  # fmt: skip
        return weights

    def _scale(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.target_mean_) / self.target_std_).astype(np.float32)

    def _unscale(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.target_std_ + self.target_mean_


@register_model(
    "mlp", family="neural", tasks=BOTH, params=MLPParams, abilities=EPOCHS,
    description="Multilayer perceptron on tabular features (dense layers, dropout, optional batch norm).",
)  # fmt: skip
def _mlp(p: MLPParams, ctx: BuildContext) -> NeuralModel:
    _n_outputs(ctx)
    return NeuralModel("mlp", p, ctx)


@register_model(
    "cnn", family="neural", tasks=BOTH, params=CNNParams, abilities=EPOCHS,
    description="Small convolutional network for image arrays (conv/pool blocks, then a dense head).",
)  # fmt: skip
def _cnn(p: CNNParams, ctx: BuildContext) -> NeuralModel:
    image_shape(ctx)  # fail now, not after the data is loaded into a training loop
    _n_outputs(ctx)
    return NeuralModel("cnn", p, ctx)


register_loader("neural", NeuralModel.load)
