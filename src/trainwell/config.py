"""The experiment config: pydantic models, YAML in, resolved YAML out.

Every field carries a description: the CLI help, `trainwell init` comments and the docs read them.
Unknown keys are rejected with a "did you mean" suggestion; `--set section.field=value` overrides apply
before validation, so an override is checked exactly like the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainwell.errors import UserError, did_you_mean

Task = Literal["classification", "regression"]
UnsupervisedTask = Literal["clustering", "dimensionality_reduction", "anomaly_detection"]
UNSUPERVISED_TASKS: tuple[str, ...] = get_args(UnsupervisedTask)
ColumnType = Literal["numeric", "categorical", "boolean", "datetime", "text", "id"]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    """Where the data comes from and what to predict."""

    source: str | None = Field(
        None, description="A CSV/Parquet/.npz path, or builtin:NAME (see `trainwell datasets`)."
    )
    target: str | None = Field(
        None, description="The column to predict; builtin datasets set it themselves. For unsupervised tasks an "
        "optional label column, used only to score the result (never as a feature).",
    )  # fmt: skip
    task: Literal["auto", "classification", "regression", "clustering", "dimensionality_reduction",
                  "anomaly_detection"] = Field(
        "auto", description="auto infers classification or regression from the target (few distinct values or "
        "text: classification); clustering, dimensionality_reduction and anomaly_detection need no target.",
    )  # fmt: skip
    features: list[str] | None = Field(
        None, description="Columns to use as features; default: every column but the target and `drop`."
    )
    drop: list[str] = Field(default_factory=list, description="Columns never used as features.")
    column_types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Override the inferred type of a column: numeric, categorical, boolean, datetime, text, id.",
    )


class PrepareConfig(Section):
    """The preparation pipeline, fitted on the training split only and saved with the model."""

    drop_duplicates: bool = Field(True, description="Remove exact duplicate rows before splitting.")
    impute_numeric: Literal["mean", "median", "most_frequent", "constant"] = Field(
        "median", description="How missing numeric values are filled."
    )
    impute_categorical: Literal["most_frequent", "constant"] = Field(
        "constant", description="How missing categories are filled (constant adds a 'missing' category)."
    )
    missing_indicators: bool = Field(True, description="Add a 0/1 column for each numeric column with gaps.")
    scaling: Literal["standard", "minmax", "robust", "none"] = Field(
        "standard", description="How numeric features are scaled."
    )
    encoding: Literal["onehot", "ordinal"] = Field(
        "onehot", description="How categorical features become numbers; unseen categories are handled."
    )
    max_categories: int = Field(
        30, ge=2, description="One-hot keeps the most frequent categories; rarer ones share one column."
    )
    clip_outliers: float | None = Field(
        None, gt=0, description="Clip numeric values beyond this many IQRs outside the quartiles (None: off)."
    )
    datetime_parts: list[Literal["year", "month", "day", "dayofweek", "hour", "minute"]] = Field(
        default_factory=lambda: ["year", "month", "day", "dayofweek", "hour"],
        description="Parts extracted from datetime columns.",
    )


class SplitConfig(Section):
    """How rows are divided into train, validation and test without leakage."""

    validation: float = Field(0.15, ge=0, lt=1, description="Fraction of rows for validation.")
    test: float = Field(0.15, gt=0, lt=1, description="Fraction of rows for the one final test.")
    stratify: bool = Field(True, description="Keep class proportions equal across splits (classification).")
    group_column: str | None = Field(None, description="Rows sharing this value stay in the same split.")
    time_column: str | None = Field(
        None, description="Split by time: train is the past, validation the middle, test the future."
    )


class ModelConfig(BaseModel):
    """The model by registry name; its own parameters sit beside `name` and are checked by the registry."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = Field("auto", description="A registered model (see `trainwell models`), or auto.")

    @property
    def params(self) -> dict[str, Any]:
        """The model's own parameters: every key but `name`."""
        return dict(self.model_extra or {})


class TrainConfig(Section):
    """How neural networks are trained (classical models take their settings under `model`)."""

    epochs: int = Field(30, ge=1, description="Passes over the training split.")
    batch_size: int = Field(64, ge=1, description="Rows per optimisation step.")
    lr: float = Field(1e-3, gt=0, description="Learning rate.")
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = Field("adam", description="Optimizer.")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum (sgd, rmsprop).")
    nesterov: bool = Field(False, description="Nesterov momentum (sgd).")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty applied by the optimizer.")
    l1: float = Field(0.0, ge=0, description="L1 penalty added to the loss: l1 * sum(|w|) over weights.")
    loss: Literal["auto", "mse", "mae", "huber", "cross_entropy", "bce"] = Field(
        "auto", description="Loss; auto is cross_entropy for classification and mse for regression."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing for cross_entropy.")
    scheduler: Literal["none", "step", "cosine", "onecycle", "plateau"] = Field(
        "none", description="Learning-rate schedule."
    )
    step_size: int = Field(10, ge=1, description="Epochs between decays (step scheduler).")
    gamma: float = Field(0.1, gt=0, le=1, description="Decay factor (step and plateau schedulers).")
    grad_clip: float | None = Field(None, gt=0, description="Clip the gradient norm to this value.")
    early_stopping: bool = Field(True, description="Stop when the monitored validation metric stalls.")
    patience: int = Field(8, ge=1, description="Epochs without improvement before stopping.")
    monitor: str = Field(
        "auto", description="Validation metric to monitor and select the best epoch on; auto is the loss."
    )
    deterministic: bool = Field(
        False, description="Use deterministic algorithms only (slower, exact; a resumed run then ends with "
        "the same weights as an uninterrupted one, bit for bit).",
    )  # fmt: skip
    checkpoint_every: int | None = Field(
        None, ge=1, description="Write a resumable checkpoint (weights, optimizer, schedule, RNG, early stopping) "
        "every N epochs into the unfinished run folder; None: only by time (checkpoint_minutes).",
    )  # fmt: skip
    checkpoint_minutes: float | None = Field(
        1.0, gt=0, description="Write a checkpoint at the end of an epoch once this many minutes have passed since "
        "the last one (default: a crash costs at most a minute and an epoch; small models pay nothing).",
    )  # fmt: skip
    divergence_retries: int = Field(
        0, ge=0, description="On a NaN/inf loss or gradient, restart from the best epoch so far this many times, "
        "each with the learning rate times divergence_lr_factor (0: stop and keep the last good weights).",
    )  # fmt: skip
    divergence_lr_factor: float = Field(
        0.1, gt=0, lt=1, description="Learning-rate multiplier applied on each divergence retry."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train; auto picks a GPU.")


class ValidationConfig(Section):
    """How models are scored before the one final test: a holdout split or k-fold cross-validation."""

    strategy: Literal["holdout", "kfold"] = Field(
        "holdout", description="holdout scores on the validation split; kfold cross-validates train+validation."
    )
    folds: int = Field(5, ge=2, description="Folds for kfold (stratified for classification, grouped by group_column).")
    learning_curve: bool = Field(
        False, description="Classical models: also score them at growing training-set sizes (3-fold), "
        "so the diagnosis can tell 'more data' from 'more model'.",
    )  # fmt: skip
    explain: bool = Field(True, description="Permutation importance, the model's own importance and partial "
                          "dependence on the validation split, for the report and `trainwell explain`.")  # fmt: skip


class SearchDimension(Section):
    """One tunable config field."""

    type: Literal["float", "log_float", "int", "categorical"] = Field(description="Kind of search dimension.")
    low: float | None = Field(None, description="Lower bound (float, log_float, int).")
    high: float | None = Field(None, description="Upper bound (float, log_float, int).")
    step: float | None = Field(None, description="Grid step for int/float dimensions (optional).")
    choices: list[Any] | None = Field(None, description="Values to choose from (categorical).")


class TuneConfig(Section):
    """Hyperparameter search with Optuna over any config field, scored on validation data."""

    space: dict[str, SearchDimension] = Field(
        default_factory=dict, description="Dotted config field → search dimension, e.g. train.lr: {type: log_float}."
    )
    n_trials: int = Field(20, ge=1, description="Trial budget.")
    timeout_s: float | None = Field(None, gt=0, description="Wall-time budget in seconds (None: no limit).")
    sampler: Literal["tpe", "random"] = Field("tpe", description="How trials are proposed.")
    pruner: Literal["none", "median", "successive_halving", "hyperband"] = Field(
        "hyperband", description="How bad trials are stopped early from their per-epoch validation scores "
        "(hyperband needed 0.16 of random search's epoch budget in benchmarks/RESULTS.md, median 0.27).",
    )
    metric: str = Field("auto", description="Validation metric to optimise; auto is the task's primary metric.")
    storage: str | None = Field(
        None, description="Optuna storage URL (e.g. postgresql://...); default SQLite in the run folder."
    )
    study_name: str | None = Field(None, description="Study name in the storage; resumes it when it exists.")
    n_jobs: int = Field(1, ge=1, description="Trials run in parallel in this process.")
    refit_on_validation: bool = Field(
        False, description="Retrain the best configuration on train+validation before the one test."
    )


CheckName = Literal[
    "missing", "constant", "id_like", "duplicates", "split_overlap", "imbalance",
    "leakage", "future_timestamp", "outliers", "label_noise", "shift",
]  # fmt: skip
CHECKS: tuple[str, ...] = get_args(CheckName)


class AuditConfig(Section):
    """The data audit run before training; its findings go into metrics.json and the report."""

    fail_on: Literal["error", "warning", "never"] = Field(
        "error", description="Stop before training on findings this severe (warning includes error); never: report."
    )
    skip: list[CheckName] = Field(default_factory=list, description=f"Checks not to run: {', '.join(CHECKS)}.")
    trusted_columns: list[str] = Field(
        default_factory=list,
        description="Columns known to be available at prediction time; the leakage checks skip them.",
    )
    label_time_column: str | None = Field(
        None, description="When each label became known; datetime features later than it are leakage. "
        "Default: split.time_column.",
    )  # fmt: skip
    missing_warning: float = Field(0.3, gt=0, le=1, description="Missing share of a column that is a warning.")
    near_constant: float = Field(0.99, gt=0.5, le=1, description="Share of one value that is near-constant.")
    imbalance_ratio: float = Field(10.0, gt=1, description="Largest/smallest class size that is a warning.")
    leakage_score: float = Field(
        0.98, gt=0, le=1, description="Cross-validated score of a one-feature model (balanced accuracy or R²) "
        "that counts as leakage.",
    )  # fmt: skip
    noise_confidence: float = Field(
        0.9, gt=0.5, lt=1, description="Out-of-fold probability of another class that marks a label as suspect."
    )
    noise_warning: float = Field(
        0.025, gt=0, le=1, description="Share of suspect labels that is a warning; noisy problems always have a few."
    )
    shift_psi: float = Field(0.25, gt=0, description="Population stability index (train vs test) that is a warning.")
    max_rows: int = Field(5000, ge=100, description="Rows sampled for the model-based checks (leakage, label noise).")
    max_model_features: int = Field(
        100, ge=1, description="Wider data: leakage models only the features a cheap univariate screen ranks "
        "highest (F-test), and so does label noise.",
    )  # fmt: skip


Mitigation = Literal["none", "reweighing", "exponentiated_gradient", "threshold_optimizer"]
Constraint = Literal["demographic_parity", "equalized_odds"]


class FairnessConfig(Section):
    """Fairness across groups of sensitive columns: per-group metrics, and optional mitigation."""

    sensitive: list[str] = Field(
        default_factory=list, description="Columns defining the groups (e.g. [sex, age_band]); empty: no fairness."
    )
    keep_in_features: bool = Field(
        False, description="Also use the sensitive columns as model features (default: measure only)."
    )
    mitigation: Mitigation = Field(
        "none", description="none, reweighing (before training), exponentiated_gradient (constrained training) "
        "or threshold_optimizer (per-group thresholds after training); the last two need a binary target.",
    )  # fmt: skip
    constraint: Constraint = Field(
        "demographic_parity", description="What mitigation equalises: selection rates, or TPR and FPR together."
    )
    difference_bound: float = Field(
        0.01, gt=0, le=1, description="Allowed constraint violation for exponentiated_gradient."
    )
    compare: bool = Field(
        True, description="Also train every mitigation and report the fairness/accuracy trade-off side by side."
    )


class CompareConfig(Section):
    """Model comparison (`trainwell compare`): several model families on one split, ranked on validation."""

    models: list[str] | None = Field(
        None,
        description="Registry names to compare; default: logistic/linear regression, knn, lightgbm, "
        "random_forest, svm, mlp (cnn first for images), plus model.name with its parameters.",
    )
    time_budget_s: float | None = Field(
        None, gt=0, description="No new candidate starts after this many seconds (the first always runs)."
    )
    metric: str = Field("auto", description="Validation metric that ranks the models; auto is the primary metric.")
    ensemble_top_k: int | None = Field(
        None, ge=2, description="Also rank an ensemble of the k best classical candidates (None: off)."
    )
    ensemble: Literal["voting", "stacking"] = Field("voting", description="The ensemble ensemble_top_k builds.")


class EnvConfig(Section):
    """Reinforcement learning: the environment an agent learns in, instead of a `data` table."""

    id: str = Field(..., description="A registered Gymnasium id (CartPole-v1, Pendulum-v1, ...), or your own "
                    "environment as path/to/file.py:ClassName (checked with Gymnasium's environment checker).")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the environment.")
    n_envs: int = Field(1, ge=1, description="Environments stepped side by side (vectorised) while training.")
    total_timesteps: int = Field(50_000, ge=1, description="Environment steps to train for, at most.")
    target_return: float | None = Field(
        None, description="Stop once the mean evaluation return reaches this (None: train all timesteps)."
    )
    eval_every: int = Field(5_000, ge=1, description="Timesteps between evaluations during training.")
    eval_episodes: int = Field(10, ge=1, description="Deterministic episodes per evaluation during training.")
    final_episodes: int = Field(20, ge=1, description="Deterministic episodes of the final evaluation.")
    max_episode_steps: int | None = Field(None, ge=1, description="Cut episodes at this length (None: the env's).")


class ExperimentConfig(Section):
    """One experiment: data in, a tested and saved model out."""

    name: str = Field("experiment", description="A name for the run.")
    seed: int = Field(0, description="Seed for splits, initialisation and shuffling.")
    data: DataConfig = Field(default_factory=DataConfig, description="Where the data comes from.")
    prepare: PrepareConfig = Field(default_factory=PrepareConfig, description="Preparation pipeline.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train/validation/test split.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The model and its parameters.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Neural-network training.")
    validation: ValidationConfig = Field(default_factory=ValidationConfig, description="How models are scored.")
    tune: TuneConfig = Field(default_factory=TuneConfig, description="Hyperparameter search.")
    compare: CompareConfig = Field(default_factory=CompareConfig, description="Model comparison (trainwell compare).")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="The data audit run before training.")
    fairness: FairnessConfig = Field(default_factory=FairnessConfig, description="Fairness across groups.")
    env: EnvConfig | None = Field(None, description="Reinforcement learning: train an agent in this environment "
                                  "(then `data` is not used and model.name is ppo, a2c, dqn, sac or td3).")


# ---------------------------------------------------------------- loading, overrides, errors


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ['train.lr=0.1', 'model.name=mlp'] into a nested dict; values are parsed as YAML.

    Raises:
        UserError: naming the override, when it has no `=`, an empty or spaced key part, or a value that is
            not valid YAML (quote a value that is plain text: `data.source='a: b.csv'`).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p and p.isprintable() and " " not in p for p in parts):
            raise UserError(f"override {_quoted(pair)} must look like section.field=value, e.g. train.lr=0.01")
        try:
            set_dotted(out, ".".join(parts), _override_value(pair, raw))
        except UserError as exc:
            raise UserError(f"override {_quoted(pair)} {exc}") from None
    return out


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """tree["a"]["b"]["c"] = value for key "a.b.c", creating sections; a section given as a dict is merged.

    The one implementation of dotted keys: `--set`, `trainwell.train(**{"train.lr": ...})` and tuning use it.

    Raises:
        UserError: a plain value already stands where a section is needed ("conflicts with ...").
    """
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f'conflicts with another override of "{part}"')
    merge = isinstance(value, dict) and isinstance(node.get(leaf), dict)
    node[leaf] = deep_merge(node[leaf], value) if merge else value


def _override_value(pair: str, raw: str) -> Any:
    """The YAML value of one override; a YAML error is a one-line UserError naming the override."""
    if not raw.strip():
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or _first_line(exc)
        raise UserError(f"override {_quoted(pair)}: the value is not valid YAML ({problem}); quote it if it is "
                        "text, e.g. key='value'") from None  # fmt: skip


def _quoted(text: str) -> str:
    """Text in double quotes, with newlines and other control characters escaped so a message stays one line."""
    return json.dumps(text, ensure_ascii=False)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge `extra` into a copy of `base`, recursing into nested dicts."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear one-line error for a missing, unreadable, non-UTF-8 or malformed file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {path} is a folder; give a YAML file such as experiment.yaml")
    if not path.is_file():
        raise UserError(f"config file {path} not found")
    try:
        data = path.read_bytes()
        text = data.decode("utf-8").removeprefix("\ufeff")  # a byte order mark some editors write
    except OSError as exc:
        raise UserError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                        f"{exc.start}); save it as UTF-8") from None  # fmt: skip
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        raise UserError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must be a YAML mapping with a `data:` section")
    return raw


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML in which a key given twice in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:  # keys as written; merged keys (<<: *anchor) may be overridden
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(None, None, f'duplicate key "{key_node.value}"',
                                                            key_node.start_mark)  # fmt: skip
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _first_line(exc: BaseException) -> str:
    """The first line of a library's message, so a UserError stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_config(
    source: str | Path | dict[str, Any] | ExperimentConfig, overrides: dict[str, Any] | None = None
) -> ExperimentConfig:
    """Build a validated ExperimentConfig from a YAML path, a dict or a config, plus nested overrides."""
    if isinstance(source, ExperimentConfig):
        raw, origin = source.model_dump(mode="json", exclude_unset=False), "config"
    elif isinstance(source, dict):
        raw, origin = source, "config"
    else:
        raw, origin = read_yaml(source), str(source)
    raw = deep_merge(raw, overrides or {})
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"{origin}: {describe_validation_error(exc, ExperimentConfig)}") from None


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """One line for the first validation problem: the dotted field, what is wrong, a suggestion."""
    err = exc.errors()[0]
    loc = [str(p) if str(p).isprintable() else _quoted(str(p))[1:-1] for p in err["loc"]]  # keys with newlines
    field = ".".join(loc) or "config"
    if err["type"] == "extra_forbidden":
        known = _field_names(root, loc[:-1])
        return f'unknown field "{field}"{did_you_mean(loc[-1], known)}; known fields: {", ".join(known)}'
    if err["type"] == "missing":
        return f'missing required field "{field}"'
    got, msg = repr(err.get("input")), " ".join(str(err["msg"]).split())
    return f'field "{field}": {msg} (got {got if len(got) <= 80 else got[:77] + "..."})'


def _field_names(root: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the section at `path` below `root`."""
    model: Any = root
    for part in path:
        field = model.model_fields.get(part) if isinstance(model, type) else None
        model = field.annotation if field else None
    return sorted(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def dump_config(config: ExperimentConfig) -> str:
    """The fully resolved config as YAML, in declaration order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def field_reference(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(dotted name, description, default) for every config field, for CLI help and `trainwell init`."""
    rows: list[tuple[str, str, Any]] = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            rows.extend(field_reference(sub, f"{prefix}{name}."))
        else:
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            rows.append((f"{prefix}{name}", field.description or "", default))
    return rows


def commented_yaml(config: ExperimentConfig, notes: dict[str, str] | None = None) -> str:
    """The config as YAML with each field's description as a trailing comment (for `trainwell init`)."""
    docs = {name: desc for name, desc, _ in field_reference()}
    docs.update(notes or {})
    lines: list[str] = []

    def emit(data: dict[str, Any], path: str, indent: int) -> None:
        for key, value in data.items():
            dotted, pad = f"{path}{key}", "  " * indent
            if isinstance(value, dict) and value:
                lines.append(f"{pad}{key}:")
                emit(value, f"{dotted}.", indent + 1)
                continue
            text = yaml.safe_dump({key: value}, default_flow_style=True, width=10_000).strip()[1:-1]
            comment = f"  # {docs[dotted]}" if docs.get(dotted) else ""
            lines.append(f"{pad}{text}{comment}")

    emit(config.model_dump(mode="json"), "", 0)
    return "\n".join(lines) + "\n"
