"""The search space: `tune.space` maps dotted config fields to dimensions; a trial's values become a config.

Keys are checked against the config models before any trial runs (did-you-mean for typos, bounds
checked against the field itself), so a bad space fails in a second, not after an hour of tuning.
`model.X` dimensions are conditional: a trial samples one only when its model has a parameter X, so
`model.name` can be searched together with each family's own parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, get_args

import optuna
from pydantic import BaseModel

from trainwell.config import UNSUPERVISED_TASKS, ExperimentConfig, SearchDimension, load_config, set_dotted
from trainwell.errors import UserError, did_you_mean
from trainwell.models.registry import get_spec, validate_params
from trainwell.models.rl import get_agent
from trainwell.models.unsupervised import get_unsupervised

NOT_TUNABLE = ("tune", "name")  # tuning the tuner, or renaming the run, means nothing
SCALARS = (type(None), bool, int, float, str)  # what Optuna stores as a categorical choice as is


@dataclass(frozen=True)
class Dimension:
    """One checked `tune.space` entry, ready to be sampled by an Optuna trial."""

    key: str  # dotted config field, also the Optuna parameter name
    spec: SearchDimension
    models: frozenset[str] = frozenset()  # for model.X keys: the candidate models that have X
    lookup: dict[Any, Any] = field(default_factory=dict)  # Optuna choice → config value (lists become JSON)

    def applies_to(self, model: str) -> bool:
        """Whether a trial of `model` samples this dimension."""
        return not self.key.startswith("model.") or self.key == "model.name" or model in self.models

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask the trial's sampler for a value, returned as the config value."""
        s = self.spec
        if s.type == "categorical":
            return self.lookup[trial.suggest_categorical(self.key, list(self.lookup))]
        if s.type == "int":
            return trial.suggest_int(self.key, int(s.low), int(s.high), step=int(s.step or 1))  # type: ignore[arg-type]
        return trial.suggest_float(self.key, s.low, s.high, log=s.type == "log_float", step=s.step)  # type: ignore[arg-type]

    def contains(self, value: Any) -> bool:
        """Whether a config value lies inside this dimension (for trying the configured values first)."""
        s = self.spec
        if s.type == "categorical":
            return encode(value) in self.lookup
        if isinstance(value, bool) or not isinstance(value, int | float) or not s.low <= value <= s.high:  # type: ignore[operator]
            return False
        return s.type != "int" or float(value).is_integer()

    def decode(self, value: Any) -> Any:
        """An Optuna value → the config value (a categorical JSON string back to its list or mapping)."""
        return self.lookup.get(value, value) if self.spec.type == "categorical" else value


def encode(choice: Any) -> Any:
    """Optuna keeps scalars only: lists and mappings travel as their JSON text."""
    return choice if isinstance(choice, SCALARS) else json.dumps(choice, sort_keys=True)


def parse_space(cfg: ExperimentConfig, task: str) -> list[Dimension]:
    """Check every `tune.space` entry and return the dimensions, `model.name` first (others depend on it).

    Raises:
        UserError: an empty space, a key that is not a config field, missing or reversed bounds, or a
            bound or choice the field itself refuses.
    """
    if not cfg.tune.space:
        raise UserError("tune.space is empty; add at least one dimension, "
                        "e.g. tune.space: {train.lr: {type: log_float, low: 0.0001, high: 0.1}}")  # fmt: skip
    candidates = model_candidates(cfg, task)
    dims = [_dimension(key, spec, cfg, candidates) for key, spec in cfg.tune.space.items()]
    return sorted(dims, key=lambda d: d.key != "model.name")


def model_candidates(cfg: ExperimentConfig, task: str) -> list[str]:
    """The models trials may build: `model.name`'s choices when it is searched, else the configured model."""
    dim = cfg.tune.space.get("model.name")
    if dim is None:
        return [cfg.model.name]
    if dim.type != "categorical" or not dim.choices:
        raise UserError("tune.space.model.name must be categorical with choices, e.g. {type: categorical, "
                        "choices: [mlp, lightgbm]}")  # fmt: skip
    for name in dim.choices:
        try:
            tasks = model_tasks(cfg, str(name))
        except UserError as exc:
            raise UserError(f"tune.space.model.name: {exc}") from None
        if task not in tasks:
            raise UserError(f'tune.space.model.name: model "{name}" does not support {task}')
    return [str(c) for c in dim.choices]


def model_params(cfg: ExperimentConfig, name: str) -> type[BaseModel]:
    """The parameters class of model `name` in the registry of the config's task (supervised or not)."""
    if cfg.env is not None:
        return get_agent(name).params
    if cfg.data.task in UNSUPERVISED_TASKS:
        return get_unsupervised(name).params
    return get_spec(name).params


def model_tasks(cfg: ExperimentConfig, name: str) -> frozenset[str]:
    if cfg.env is not None:
        return frozenset({"reinforcement_learning"}) if get_agent(name) else frozenset()
    if cfg.data.task in UNSUPERVISED_TASKS:
        return frozenset({get_unsupervised(name).task})
    return get_spec(name).tasks


def _dimension(key: str, spec: SearchDimension, cfg: ExperimentConfig, candidates: list[str]) -> Dimension:
    where = f"tune.space.{key}"
    _check_shape(where, spec)
    models = _check_key(where, key, cfg, candidates)
    values = spec.choices if spec.type == "categorical" else [spec.low, spec.high]
    if spec.type == "int":
        values = [int(v) for v in values]  # type: ignore[arg-type]
    for value in values or []:
        _check_value(where, key, value, cfg, models)
    lookup = {encode(c): c for c in spec.choices or []}
    return Dimension(key, spec, frozenset(models), lookup)


def _check_shape(where: str, s: SearchDimension) -> None:
    """Bounds for numeric dimensions, choices for categorical ones, and nothing that does not fit the type."""
    if s.type == "categorical":
        if not s.choices:
            raise UserError(f"{where}: a categorical dimension needs a non-empty `choices` list")
        if s.low is not None or s.high is not None or s.step is not None:
            raise UserError(f"{where}: low/high/step do not apply to a categorical dimension; use choices")
        if len({encode(c) for c in s.choices}) < len(s.choices):
            raise UserError(f"{where}: choices repeat a value")
        return
    if s.choices is not None:
        raise UserError(f"{where}: choices apply to categorical dimensions only; use low and high for {s.type}")
    if s.low is None or s.high is None:
        raise UserError(f"{where}: a {s.type} dimension needs both low and high")
    if not s.low < s.high:
        raise UserError(f"{where}: low ({s.low}) must be below high ({s.high})")
    if s.type == "log_float" and (s.low <= 0 or s.step is not None):
        raise UserError(f"{where}: log_float needs low > 0 and no step (got low={s.low}, step={s.step})")
    if s.step is not None and s.step <= 0:
        raise UserError(f"{where}: step must be positive (got {s.step})")
    if s.type == "int" and not all(float(v).is_integer() for v in (s.low, s.high, s.step or 1)):
        raise UserError(f"{where}: an int dimension needs whole-number low, high and step")


def _check_key(where: str, key: str, cfg: ExperimentConfig, candidates: list[str]) -> set[str]:
    """Resolve `key` to a config field; for model.X keys, return the candidate models that have X."""
    section, *rest = key.split(".")
    if section in NOT_TUNABLE:
        raise UserError(f"{where}: {section} fields cannot be tuned")
    if section == "model" and len(rest) == 1:
        if rest[0] == "name":
            return set(candidates)
        models = {m for m in candidates if rest[0] in model_params(cfg, m).model_fields}
        if not models:
            known = sorted({f for m in candidates for f in model_params(cfg, m).model_fields})
            raise UserError(f'{where}: no candidate model ({", ".join(candidates)}) has a parameter "{rest[0]}"'
                            f'{did_you_mean(rest[0], known)}; known: {", ".join(known)}')  # fmt: skip
        return models
    node: type[BaseModel] = ExperimentConfig
    path = [section, *rest]
    for depth, part in enumerate(path):
        fields = node.model_fields
        if part not in fields:
            known = [f for f in fields if f not in NOT_TUNABLE]
            raise UserError(f'{where}: "{".".join(path[: depth + 1])}" is not a config field'
                            f"{did_you_mean(part, known)}; known here: {', '.join(known)}")  # fmt: skip
        sub = fields[part].annotation
        sub = next((a for a in get_args(sub) if isinstance(a, type) and issubclass(a, BaseModel)), sub)  # X | None
        is_section = isinstance(sub, type) and issubclass(sub, BaseModel)
        if is_section != (depth < len(path) - 1):
            raise UserError(f'{where}: "{key}" must name one field, e.g. train.lr')
        node = sub if is_section else node
    return set()


def _check_value(where: str, key: str, value: Any, cfg: ExperimentConfig, models: set[str]) -> None:
    """Refuse a bound or choice that the field would reject in a trial."""
    try:
        if key.startswith("model.") and key != "model.name":
            for name in models:
                validate_params(name, model_params(cfg, name), {key.split(".", 1)[1]: value})
        else:
            apply_params(cfg, {key: value})
    except UserError as exc:
        raise UserError(f"{where}: {value!r} is not a valid value ({exc})") from None


def sample(trial: optuna.Trial, dims: list[Dimension], base_model: str) -> dict[str, Any]:
    """Draw one configuration: config field → value, skipping model parameters the trial's model lacks."""
    params: dict[str, Any] = {}
    for dim in dims:  # model.name comes first
        if dim.applies_to(params.get("model.name", base_model)):
            params[dim.key] = dim.suggest(trial)
    return params


def decode_params(dims: list[Dimension], stored: dict[str, Any]) -> dict[str, Any]:
    """Optuna's stored parameters → config values, for the trials table and the best configuration."""
    by_key = {d.key: d for d in dims}
    return {k: by_key[k].decode(v) if k in by_key else v for k, v in stored.items()}


def apply_params(cfg: ExperimentConfig, params: dict[str, Any]) -> ExperimentConfig:
    """The config with `params` set; a new model.name keeps only the base parameters that model accepts."""
    raw = cfg.model_dump(mode="json")
    name = params.get("model.name", cfg.model.name)
    if name != cfg.model.name:
        accepted = model_params(cfg, name).model_fields
        raw["model"] = {"name": name, **{k: v for k, v in cfg.model.params.items() if k in accepted}}
    for key, value in params.items():
        set_dotted(raw, key, value)
    return load_config(raw)


def base_values(cfg: ExperimentConfig, dims: list[Dimension]) -> dict[str, Any]:
    """The configured values that lie inside the space, as Optuna values: tried first, so tuning never
    reports a validation score below the untuned config's."""
    out: dict[str, Any] = {}
    raw = cfg.model_dump(mode="json")
    for dim in dims:
        if not dim.applies_to(cfg.model.name):
            continue
        node: Any = raw
        for part in dim.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        if dim.contains(node):
            out[dim.key] = encode(node)
    return out
