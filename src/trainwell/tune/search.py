"""Hyperparameter search with Optuna: sample a config, fit it on train, score it on validation, repeat.

`tune` reads like `train`: load → split → search → retrain the best config → test once → save. Trials
fit on the training rows and are scored on the validation rows only; the test rows are evaluated once,
on the retrained best model.

Where the study lives: `tune.storage` when set (any Optuna database URL, e.g. PostgreSQL, so several
machines can work on one study). Otherwise a SQLite file `<runs>/.studies/<study>.db` while trials run,
moved into the run folder as `study.db` once the run is saved. The default study name is the config
name plus a hash of everything that defines the search (config, space, sampler, pruner, metric, data
fingerprint) but not the budgets, so running the same command again after a crash or Ctrl-C resumes
the study. `tune.n_trials` counts the study's finished trials, not this process's, so a resumed study
runs only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import sqlalchemy
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from trainwell.config import ExperimentConfig
from trainwell.data.prepared import Prepared
from trainwell.data.sources import Dataset
from trainwell.data.split import Splits
from trainwell.errors import UserError
from trainwell.evaluate.metrics import (
    GREATER_IS_BETTER,
    require_labels,
    resolve_metric,
    score,
)
from trainwell.models.fitted import Fitted
from trainwell.models.registry import (
    NO_ABILITIES,
    TrainwellTags,
    auto_model_name,
    get_spec,
    list_models,
    model_tags,
    parse_params,
)
from trainwell.models.unsupervised import DEFAULT_MODEL
from trainwell.pipeline import evaluate_splits, fit_candidate, load_and_split, resolve
from trainwell.run import Run, save_run, staged
from trainwell.track.rundir import claim, default_run_dir
from trainwell.training.callbacks import Callback, TrainState
from trainwell.tune.cv import cross_validate
from trainwell.tune.space import (
    Dimension,
    apply_params,
    base_values,
    decode_params,
    model_candidates,
    parse_space,
    sample,
)

STUDIES = ".studies"  # beside the run folders: where default SQLite studies live while trials run
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts towards tune.n_trials
BUDGET_FIELDS = ("n_trials", "timeout_s", "n_jobs", "storage", "study_name", "refit_on_validation")
HEARTBEAT_S = 30  # a trial whose process died is failed (and retried once) after 4 missed heartbeats
console = Console(stderr=True)


@dataclass
class Search:
    """What every trial needs: the base config, the prepared data, its splits and the checked space."""

    cfg: ExperimentConfig
    ds: Dataset
    prep: Prepared
    splits: Splits
    dims: list[Dimension]
    metric: str
    direction: Literal["maximize", "minimize"]


def tune(
    config: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    *,
    data: pd.DataFrame | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    quiet: bool = False,
    **overrides: Any,
) -> Run:
    """Search `tune.space`, retrain the best configuration, test it once and save a run; returns the Run.

    Arguments mirror `trainwell.train`. The run's metrics.json holds a `tuning` block (every
    trial, the best parameters, parameter importances, the storage) and trials.csv lists the trials.
    """
    cfg, frame = resolve(config, data, overrides)
    if cfg.env is not None:  # reinforcement learning: trials train agents, scored by their returns
        from trainwell.tune.agents import tune_agent

        return tune_agent(cfg, run_dir, quiet=quiet)
    started = time.time()
    with staged(claim(run_dir or default_run_dir(cfg.name))) as stage:
        search = prepare_search(cfg, frame)
        own_db = stage.final.parent / STUDIES / f"{study_name(search)}.db"
        storage = make_storage(cfg.tune.storage or sqlite_url(own_db))
        with _optuna_quiet():
            study = open_study(search, storage, study_name(search))
            run_trials(study, search, quiet=quiet)
        best = best_trial(study)
        best_cfg, fitted, splits = refit(search, best, quiet=quiet)
        # The test split is evaluated here, once, after the search and the refit.
        metrics, outputs = evaluate_splits(fitted, search.prep, splits)
        where = storage.url if cfg.tune.storage else sqlite_url(stage.final / "study.db")
        metrics["tuning"] = summarize(study, search, storage=where)
        trials = trials_frame(metrics["tuning"]["trials"]).to_csv(index=False)
        run = save_run(best_cfg, search.ds, search.prep, splits, fitted, metrics, outputs, stage=stage,
                       started=started, extra={"trials.csv": trials})  # fmt: skip
    if not cfg.tune.storage:  # the study is part of the run from now on
        storage.remove_session()
        storage.engine.dispose()
        os.replace(own_db, run.dir / "study.db")
        with suppress(OSError):
            own_db.parent.rmdir()  # only when no other study is in progress there
    return run


def prepare_search(cfg: ExperimentConfig, frame: pd.DataFrame | None = None) -> Search:
    """Load and split the data once for all trials, then check the space and the metric against it."""
    ds, prep, splits = load_and_split(cfg, frame)
    if cfg.model.name == "auto" and "model.name" not in cfg.tune.space:  # model.X keys need a concrete model
        name = auto_model_name(prep.task, len(splits.train), ds.image_shape) if prep.supervised else (  # type: ignore[arg-type]
            DEFAULT_MODEL[prep.task])  # fmt: skip
        cfg = apply_params(cfg, {"model.name": name})
    dims = parse_space(cfg, prep.task)
    metric = resolve_metric("tune.metric", cfg.tune.metric, prep.task, len(prep.classes))
    require_labels("tune.metric", metric, prep.task, prep.labelled, ds.name)
    if cfg.validation.strategy == "holdout" and not len(splits.validation):
        raise UserError("split.validation is 0, but trials are scored on the validation split; "
                        "set split.validation > 0 (e.g. 0.15)")  # fmt: skip
    direction: Literal["maximize", "minimize"] = "maximize" if metric in GREATER_IS_BETTER else "minimize"
    return Search(cfg, ds, prep, splits, dims, metric, direction)


# ---------------------------------------------------------------- the study and its storage


def search_key(search: Search) -> str:
    """A hash of what defines the search (not its budgets): equal keys mean one study can continue."""
    raw = search.cfg.model_dump(mode="json")
    for name in BUDGET_FIELDS:
        raw["tune"].pop(name)
    raw["data_fingerprint"] = search.ds.fingerprint
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]


def study_name(search: Search) -> str:
    return search.cfg.tune.study_name or f"{search.cfg.name}-{search_key(search)}"


def sqlite_url(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def make_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with heartbeats, so trials of a crashed process are failed and retried once."""
    sqlite = url.startswith("sqlite")
    # SQLite: parallel writers wait for the lock; pysqlite's own BEGIN is off, `_serialise` issues its own
    engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}} if sqlite else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=4 * HEARTBEAT_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            )  # fmt: skip
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"tune.storage {url!r} cannot be opened: {first}") from None
    if sqlite:
        _serialise(storage.engine)
    return storage


def _serialise(engine: sqlalchemy.engine.Engine) -> None:
    """Take SQLite's write lock when a transaction begins.

    SQLite ignores SELECT ... FOR UPDATE, so two workers could both claim one queued trial (the enqueued
    configured values, a retried trial) and one of them then fails; BEGIN IMMEDIATE makes them take turns.
    """
    sqlalchemy.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def open_study(search: Search, storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """Create the study, or resume it when `name` exists for the same search; the configured values go first."""
    t = search.cfg.tune
    study = optuna.create_study(storage=storage, study_name=name, direction=search.direction,
                                pruner=make_pruner(t.pruner, step_budget(search.cfg)), load_if_exists=True)  # fmt: skip
    key = search_key(search)
    stored = study.user_attrs.get("search_key")
    if stored is None:
        study.set_user_attr("search_key", key)
        if not study.trials and (first := base_values(search.cfg, search.dims)):
            study.enqueue_trial(first)
    elif stored != key:
        raise UserError(f'tune.study_name "{name}" holds a study of another search (config, space, metric or data '
                        "changed); choose a new tune.study_name, or restore the config to resume it")  # fmt: skip
    fail_orphaned_trials(study, storage)
    # a resumed study gets a fresh sampler seed, so random start-up trials are not drawn again
    study.sampler = make_sampler(t.sampler, search.cfg.seed + len(study.trials), parallel=t.n_jobs > 1)
    return study


def fail_orphaned_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Fail (and queue once more) trials left `running` by a process of this machine that no longer exists.

    Heartbeats catch the same for other machines, after their grace period; a local kill is known at once.
    Returns how many trials were failed.
    """
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
            continue
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)(study, storage.get_trial(trial._trial_id))
        failed += 1
    return failed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_sampler(name: str, seed: int, *, parallel: bool = False) -> optuna.samplers.BaseSampler:
    """TPE, or random search; parallel TPE trials pretend running ones did badly so they spread out."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel, group=True)


def make_pruner(name: str, steps: int) -> optuna.pruners.BasePruner:
    """The `tune.pruner` for trials of up to `steps` epochs (or boosting rounds).

    No pruner gives a verdict in the first quarter of the budget: learning curves still cross there, and
    a slow starter pruned early is often the configuration that ends best.
    """
    warmup = max(1, steps // 4)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=steps, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _abilities(name: str) -> TrainwellTags:
    """What the registry says models of `name` can do; none for auto or an unsupervised model."""
    spec = next((s for s in list_models() if s.name == name), None)
    return spec.abilities if spec else NO_ABILITIES


def step_budget(cfg: ExperimentConfig) -> int:
    """Steps a trial reports at most: boosting rounds (n_estimators) for boosting models, epochs otherwise."""
    name = cfg.model.name
    if _abilities(name).boosting_rounds:
        return int(parse_params(name, cfg.model.params).n_estimators)  # type: ignore[attr-defined]
    return cfg.train.epochs


# ---------------------------------------------------------------- trials


class PruneOnValidation(Callback):
    """Report each epoch's (or boosting round's) validation score to the trial; stop when Optuna prunes it.

    The reported value is the tuning metric when the epoch row holds it (accuracy; rmse, mse and r2 from
    val_rmse), else the validation loss, negated when the study maximises: a pruner compares trials at
    the same step, so the value needs the study's direction and one meaning across trials, not the scale
    of the final metric.
    """

    def __init__(self, trial: optuna.Trial, search: Search) -> None:
        self.trial, self.metric, self.direction = trial, search.metric, search.direction
        y_val = search.prep.y[search.splits.validation]
        self.target_var = float(np.var(y_val)) if search.prep.task == "regression" and len(y_val) else 0.0
        self.steps, self.best_epoch, self.pruned = 0, 0, False

    def on_epoch_end(self, state: TrainState) -> None:
        self._report(self._epoch_value(state.history[-1]), state.epoch)
        state.stop = state.stop or self.pruned

    def on_fit_end(self, state: TrainState) -> None:
        self.best_epoch = state.best_epoch

    def __call__(self, env: Any) -> None:
        """LightGBM calls this after every boosting round with the validation scores so far."""
        results = [r for r in env.evaluation_result_list if r[0] != "training"]
        if not results:
            return
        _, _, value, higher_is_better = results[0]
        self._report(value if higher_is_better == (self.direction == "maximize") else -value, env.iteration + 1)
        if self.pruned:
            raise optuna.TrialPruned(f"pruned after {self.steps} boosting rounds")

    def _epoch_value(self, row: dict[str, float]) -> float:
        if self.metric == "accuracy" and "val_accuracy" in row:
            return row["val_accuracy"]
        rmse = row.get("val_rmse")
        if rmse is not None and self.metric in ("rmse", "mse"):
            return rmse if self.metric == "rmse" else rmse**2
        if rmse is not None and self.metric == "r2" and self.target_var > 0:
            return 1 - rmse**2 / self.target_var  # r2 = 1 - mse / var(y_val), exactly
        loss = row.get("val_loss", math.nan)
        return loss if self.direction == "minimize" else -loss

    def _report(self, value: float, step: int) -> None:
        self.steps = step
        self.trial.report(float(value), step)  # NaN (diverged) makes the percentile pruners prune
        self.pruned = self.trial.should_prune()


class Objective:
    """One trial: sample a config, fit it on train (pruned from per-epoch validation scores), score validation."""

    def __init__(self, search: Search) -> None:
        self.search = search
        # Boosting rounds are reported only when no trial counts epochs, so a pruner never compares the two.
        names = model_candidates(search.cfg, search.prep.task) if search.prep.supervised else []
        self.report_rounds = not any(get_spec(m).abilities.epoch_history for m in names)

    def __call__(self, trial: optuna.Trial) -> float:
        s = self.search
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # see fail_orphaned_trials
        pruning = PruneOnValidation(trial, s)
        try:
            cfg = apply_params(s.cfg, sample(trial, s.dims, s.cfg.model.name))
            if cfg.validation.strategy == "kfold":
                return cross_validated_score(cfg, s)
            hooks = (pruning,) if self._reports(cfg.model.name) else ()
            fitted = fit_candidate(cfg, s.ds, s.prep, s.splits.train, s.splits.validation, callbacks=hooks)
        except UserError as exc:
            trial.set_user_attr("error", str(exc))
            raise
        finally:
            trial.set_user_attr("epochs", pruning.steps or None)
        if pruning.pruned:
            raise optuna.TrialPruned(f"pruned after {pruning.steps} epochs")
        trial.set_user_attr("refit", refit_budget(fitted, cfg, pruning.best_epoch))
        return validation_score(fitted, s)

    def _reports(self, model: str) -> bool:
        if not self.search.prep.supervised:  # unsupervised models have no per-epoch validation score
            return False
        abilities = get_spec(model).abilities
        return abilities.epoch_history or (abilities.boosting_rounds and self.report_rounds)


def cross_validated_score(cfg: ExperimentConfig, search: Search) -> float:
    """The trial's mean k-fold score over train+validation (`validation.strategy: kfold`).

    Not pruned: `cross_validate` reports the folds only once all of them have run.
    """
    rows = np.sort(np.concatenate([search.splits.train, search.splits.validation]))
    means = cross_validate(cfg, search.ds, search.prep, rows)["mean"]
    if search.metric not in means:
        raise UserError(f"tune.metric {search.metric} is not reported by every fold; pick another")
    return float(means[search.metric])


def validation_score(fitted: Fitted, search: Search) -> float:
    """The tuning metric of a fitted trial on the validation rows (never the test rows)."""
    rows, prep = search.splits.validation, search.prep
    scores = score(fitted, prep, rows)
    if search.metric not in scores:
        raise UserError(f"tune.metric {search.metric} cannot be computed for model {fitted.name}; pick another")
    value = scores[search.metric]
    return math.nan if value is None else float(value)  # None: undefined here (one cluster); the trial fails


def refit_budget(fitted: Fitted, cfg: ExperimentConfig, best_epoch: int) -> dict[str, Any]:
    """Training length the trial chose on validation, for a refit on train+validation that has none to stop on."""
    abilities = model_tags(fitted.model)
    if abilities.epoch_history and cfg.train.early_stopping and best_epoch:
        return {"train.epochs": best_epoch, "train.early_stopping": False}
    best_round = getattr(getattr(fitted.model, "estimator_", None), "best_iteration_", None)
    if abilities.boosting_rounds and best_round:
        return {"model.n_estimators": int(best_round), "model.early_stopping_rounds": None}
    return {}


@contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Trainwell prints its own trial lines (failures included); Optuna's logger goes back as it was after."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def run_trials(study: optuna.Study, search: Search, *, quiet: bool = True, callbacks: Sequence[Callable] = ()) -> None:
    """Run trials until the study holds `tune.n_trials` finished ones or `tune.timeout_s` has passed."""
    t = search.cfg.tune
    remaining = t.n_trials - len(study.get_trials(deepcopy=False, states=FINISHED))
    if remaining <= 0:
        return
    # the callback stops every worker sharing the storage once the study's total is reached
    hooks = [optuna.study.MaxTrialsCallback(t.n_trials, states=FINISHED), *callbacks]
    if not quiet:
        hooks.append(lambda st, tr: print_trial(st, tr, search))
    try:
        study.optimize(Objective(search), n_trials=remaining, timeout=t.timeout_s, n_jobs=t.n_jobs,
                       catch=(UserError,), callbacks=hooks)  # fmt: skip
    except KeyboardInterrupt:
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        console.print(f"interrupted: study {study.study_name} keeps its {done} finished trials; "
                      "run the same command again to resume", markup=False, soft_wrap=True)  # fmt: skip
        raise


def print_trial(study: optuna.Study, trial: FrozenTrial, search: Search) -> None:
    """One line per finished trial: state, score, best so far, time, epochs and parameters."""
    params = ", ".join(f"{k}={_short(v)}" for k, v in decode_params(search.dims, trial.params).items())
    score = f"{search.metric} {trial.value:.4f}" if trial.state == TrialState.COMPLETE else ""
    try:
        best = f"best {study.best_value:.4f}"
    except ValueError:  # no completed trial yet
        best = ""
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    epochs = f"{trial.user_attrs['epochs']} epochs" if trial.user_attrs.get("epochs") else ""
    error = f"  error: {trial.user_attrs['error']}" if "error" in trial.user_attrs else ""
    line = f"trial {trial.number:>3} {trial.state.name.lower():<8} {score:<18} {best:<12} {seconds:6.1f}s {epochs:>10}"
    console.print(f"{line}  {params}{error}", markup=False, highlight=False, soft_wrap=True)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- the best configuration and the record


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best completed trial, or a UserError saying why no trial completed."""
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return study.best_trial
    counts = Counter(t.state.name.lower() for t in study.trials)
    errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
    why = f"first error: {errors[0]}" if errors else "raise tune.n_trials or tune.timeout_s"
    raise UserError(f"no trial completed ({dict(counts) or 'none ran'}); {why}")


def refit(search: Search, trial: FrozenTrial, *, quiet: bool) -> tuple[ExperimentConfig, Fitted, Splits]:
    """Retrain the best configuration on train (validation drives early stopping as in the trials), or with
    `tune.refit_on_validation` on train+validation for the training length the trial found best."""
    cfg = apply_params(search.cfg, decode_params(search.dims, trial.params))
    splits = search.splits
    if cfg.tune.refit_on_validation:
        cfg = apply_params(cfg, trial.user_attrs.get("refit", {}))
        rows = np.sort(np.concatenate([splits.train, splits.validation]))
        splits = Splits(rows, np.array([], dtype=np.int64), splits.test, splits.method)
    fitted = fit_candidate(cfg, search.ds, search.prep, splits.train, splits.validation, quiet=quiet)
    return cfg, fitted, splits


def summarize(study: optuna.Study, search: Search, *, storage: str) -> dict[str, Any]:
    """The `tuning` block of metrics.json: every trial, the best one and the parameter importances."""
    best = study.best_trial
    trials = [trial_row(t, search.dims) for t in study.trials]
    return {
        "metric": search.metric,
        "direction": search.direction,
        "best_value": best.value,
        "best_params": decode_params(search.dims, best.params),
        "best_trial": best.number,
        "n_trials": len(trials),
        "states": dict(Counter(t["state"] for t in trials)),
        "trials": trials,
        "param_importances": param_importances(study),
        "sampler": search.cfg.tune.sampler,
        "pruner": search.cfg.tune.pruner,
        "storage": storage,
        "study_name": study.study_name,
    }


def trial_row(trial: FrozenTrial, dims: list[Dimension]) -> dict[str, Any]:
    """One trial as plain JSON values; `value` is the validation score of completed trials only."""
    value = trial.value if trial.state == TrialState.COMPLETE and math.isfinite(trial.value or math.nan) else None
    row = {
        "number": trial.number,
        "params": decode_params(dims, trial.params),
        "value": value,
        "state": trial.state.name.lower(),
        "duration_s": round(trial.duration.total_seconds(), 3) if trial.duration else None,
        "epochs": trial.user_attrs.get("epochs"),
    }
    return row | ({"error": trial.user_attrs["error"]} if "error" in trial.user_attrs else {})


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances over completed trials; empty when too few trials completed to tell."""
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. every completed trial has the same value
        return {}


def trials_frame(trials: list[dict[str, Any]]) -> pd.DataFrame:
    """trials.csv: one row per trial, one `params.<field>` column per dimension."""
    rows = [{k: v for k, v in t.items() if k != "params"} | {f"params.{k}": v for k, v in t["params"].items()}
            for t in trials]  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- command line


def print_summary(run: Run) -> None:
    """The best trial, the parameter importances and the one test score."""
    tuning, out = run.metrics["tuning"], Console()
    states = ", ".join(f"{n} {s}" for s, n in tuning["states"].items())
    out.print(f"{tuning['n_trials']} trials ({states}); best trial {tuning['best_trial']}: "
              f"validation {tuning['metric']} {tuning['best_value']:.4f}")  # fmt: skip
    table = Table("parameter", "best value", "importance")
    for key, value in tuning["best_params"].items():
        importance = tuning["param_importances"].get(key)
        table.add_row(key, _short(value), "" if importance is None else f"{importance:.2f}")
    out.print(table)
    test = run.metrics.get("test", {}).get(tuning["metric"])
    if test is not None:
        out.print(f"test {tuning['metric']} of the retrained best configuration: {test:.4f}")
    fresh = run.metrics.get("evaluation")
    if fresh:  # an agent: scored again on episodes no trial saw
        out.print(f"the kept agent on {fresh['episodes']} fresh episodes: mean return {fresh['mean_return']:.1f} ± "
                  f"{fresh['std_return']:.1f}")  # fmt: skip
    out.print(f"run saved to [bold]{run.dir}[/bold]")
