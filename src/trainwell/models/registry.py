"""One registry of models by name: what exists, which tasks it serves, its parameters and its builder.

A model family ("classical" scikit-learn-style estimators, "neural" torch modules) supplies a `Model`
wrapper with one API, so the run, the CLI and the conformance suite never special-case a family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ValidationError
from sklearn.exceptions import NotFittedError
from sklearn.utils import Tags, get_tags

from trainwell.config import Task, TrainConfig, describe_validation_error
from trainwell.errors import UserError, first_line, unknown

Family = Literal["classical", "neural", "unsupervised", "rl"]


class NotTrainedError(UserError, NotFittedError):
    """Predicting before fit: a mistake the user fixes, and scikit-learn's NotFittedError for its tools."""


@dataclass(frozen=True)
class TrainwellTags:
    """What a model can do beyond scikit-learn's tags, so callers ask an ability and never a model's name."""

    probabilities: bool = False  # predict_proba returns (N, K) rather than None
    epoch_history: bool = False  # trains in epochs: `history` rows, TrainState callbacks, train.epochs
    boosting_rounds: bool = False  # trains in boosting rounds: per-round callbacks, best_iteration_ on validation
    sample_weight: bool = False  # fit accepts per-row weights (fairness reweighing)
    incremental: bool = False  # can continue training on new rows without starting over
    needs_groups: bool = False  # predict/predict_proba also take `sensitive_features` (per-group thresholds)
    inputs: str = "dense float32"  # the features it reads: "dense float32" or "image pixels" (flattened C*H*W)


NO_ABILITIES = TrainwellTags()


@dataclass(slots=True)
class ModelTags(Tags):
    """scikit-learn's estimator tags plus trainwell's own abilities in `trainwell`."""

    trainwell: TrainwellTags = field(default_factory=TrainwellTags)


def model_tags(model: Any) -> TrainwellTags:
    """The abilities `model` declares in its estimator tags; none for an object that declares no tags."""
    try:
        tags = get_tags(model)
    except AttributeError:  # not a scikit-learn estimator
        return NO_ABILITIES
    return tags.trainwell if isinstance(tags, ModelTags) else NO_ABILITIES


def with_trainwell_tags(tags: Tags, task: str, abilities: TrainwellTags) -> ModelTags:
    """`tags` as ModelTags for a classifier or regressor on `task`, carrying `abilities`."""
    from sklearn.utils import ClassifierTags, RegressorTags

    values = {name: getattr(tags, name) for name in Tags.__dataclass_fields__}
    classifier = task == "classification"
    values.update(
        estimator_type="classifier" if classifier else "regressor",
        classifier_tags=replace(tags.classifier_tags or ClassifierTags(), multi_label=False) if classifier else None,
        regressor_tags=None if classifier else tags.regressor_tags or RegressorTags(),
        target_tags=replace(tags.target_tags, required=True, multi_output=False),  # y is (N,)
        input_tags=replace(tags.input_tags, sparse=False),  # trainwell feeds dense arrays (Model protocol)
    )
    return ModelTags(**values, trainwell=abilities)


def score_model(model: Model, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """scikit-learn's default score for the model's task: accuracy for classifiers, R² for regressors."""
    from sklearn.metrics import accuracy_score, r2_score

    metric = accuracy_score if get_tags(model).estimator_type == "classifier" else r2_score
    return float(metric(y, model.predict(X), sample_weight=sample_weight))


class Model(Protocol):
    """A model over prepared float32 features; classification targets are class indices 0..K-1.

    Every registered model is also a scikit-learn estimator (get_params, clone) declaring `TrainwellTags`.
    """

    history: list[dict[str, float]]  # per-epoch rows for neural models, empty for classical ones

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None, *, callbacks: Sequence[Any] = (),
    ) -> Model: ...  # sample_weight: per training row, averaging 1; callbacks: per-epoch or per-round hooks

    def predict(self, X: np.ndarray) -> np.ndarray: ...  # (N,) class indices (int64) or values (float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None: ...  # (N, K) or None for regression

    def save(self, directory: Path) -> None: ...  # writes model.json and weights into `directory`


@dataclass(frozen=True)
class BuildContext:
    """What a builder may need beyond its own parameters; known only once the data is prepared."""

    task: Task
    n_features: int
    n_classes: int  # 0 for regression
    seed: int
    train: TrainConfig
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) when the features are image pixels
    quiet: bool = True
    checkpoint_dir: Path | None = None  # where neural training keeps its resumable checkpoint; classical ignore it
    resume: bool = False  # continue from the checkpoint in checkpoint_dir when there is one


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: `create(params, ctx)` returns an unfitted Model."""

    name: str
    family: Family
    tasks: frozenset[str]
    params: type[BaseModel]
    create: Callable[[Any, BuildContext], Model]
    description: str
    abilities: TrainwellTags = NO_ABILITIES  # what every model of this entry can do, known before building one


_REGISTRY: dict[str, ModelSpec] = {}
_LOADERS: dict[Family, Callable[[Path], Model]] = {}


def register_model(
    name: str, *, family: Family, tasks: tuple[str, ...], params: type[BaseModel], description: str,
    abilities: TrainwellTags = NO_ABILITIES,
) -> Callable[[Callable[[Any, BuildContext], Model]], Callable[[Any, BuildContext], Model]]:
    """Decorator: register `create(params, ctx) -> Model` under `name`.

    `abilities` are those that shape how a model is tuned or cross-validated before one exists (trains in
    epochs, in boosting rounds); the conformance suite checks every built model declares them too.
    """

    def decorator(create: Callable[[Any, BuildContext], Model]) -> Callable[[Any, BuildContext], Model]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, family, frozenset(tasks), params, create, description, abilities)
        return create

    return decorator


def register_loader(family: Family, loader: Callable[[Path], Model]) -> None:
    """Register how a saved model of `family` is read back from its directory."""
    _LOADERS[family] = loader


def _ensure_loaded() -> None:
    """Import the modules whose decorators fill the registry."""
    from trainwell.models import classical, ensemble, fair, neural, unsupervised  # noqa: F401


def list_models() -> list[ModelSpec]:
    """Every registered model, sorted by family then name."""
    _ensure_loaded()
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a UserError suggesting the closest name."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise unknown("model", name, _REGISTRY)
    return _REGISTRY[name]


def parse_params(name: str, params: dict[str, Any]) -> BaseModel:
    """Validate a model's parameters against its params class; errors name the `model.` field."""
    return validate_params(name, get_spec(name).params, params)


def validate_params(name: str, params_cls: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    """`params` checked by `params_cls` (any registry's); the error names the `model.` field and the model."""
    try:
        return params_cls.model_validate(params)
    except ValidationError as exc:
        message = describe_validation_error(exc, params_cls).replace('"', '"model.', 1)
        raise UserError(f"model {name}: {message}") from None


def auto_model_name(task: Task, n_rows: int, image_shape: tuple[int, int, int] | None) -> str:
    """The strong default: a CNN for image arrays, LightGBM for tables."""
    if image_shape is not None:
        return "cnn"
    return "lightgbm"


def create_model(name: str, params: dict[str, Any], ctx: BuildContext) -> Model:
    """Build an unfitted Model from its name, raw parameters and build context."""
    spec = get_spec(name)
    if ctx.task not in spec.tasks:
        raise UserError(
            f'model "{name}" does not support {ctx.task}; models that do: '
            + ", ".join(s.name for s in list_models() if ctx.task in s.tasks)
        )
    return spec.create(parse_params(name, params), ctx)


@contextmanager
def model_json(directory: Path) -> Iterator[dict[str, Any]]:
    """`directory/model.json` to read fields from; a missing file, or a field that is absent or malformed while
    the block reads it, becomes one UserError naming the file (never a KeyError from deep inside a loader)."""
    import json

    path = Path(directory) / "model.json"
    try:
        yield json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found; the run folder is incomplete, train it again") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # ValidationError is a ValueError
        raise UserError(f"{path} is damaged ({type(exc).__name__}: {first_line(exc)}); train again") from None


def load_model(directory: Path) -> Model:
    """Read a saved model back; the family is in `directory/model.json`."""
    import json

    _ensure_loaded()
    meta_path = Path(directory) / "model.json"
    if not meta_path.is_file():
        raise UserError(f"{directory} holds no saved model (model.json is missing)")
    family = json.loads(meta_path.read_text())["family"]
    return _LOADERS[family](Path(directory))
