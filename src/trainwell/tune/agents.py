"""`trainwell tune` for reinforcement learning: Optuna over the agent's parameters (and any env or seed field),
each trial scored by its final deterministic evaluation, pruned on the returns of its periodic evaluations.

The kept agent is evaluated once more on fresh episodes (seeds no trial was scored on), so the return the
run reports was not used to choose it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from trainwell.config import ExperimentConfig
from trainwell.data.env import make_vec_env
from trainwell.errors import UserError
from trainwell.files import write_text
from trainwell.reinforcement import TASK, Learned, agent_name, check_config, learn, save_agent_run
from trainwell.run import Run, staged
from trainwell.track.rundir import claim, default_run_dir
from trainwell.tune.search import _optuna_quiet, make_pruner, make_sampler, param_importances, trial_row, trials_frame
from trainwell.tune.space import apply_params, base_values, parse_space, sample

TEST_SEED = 30_000  # episodes the kept agent is reported on: no trial saw these seeds


def tune_agent(cfg: ExperimentConfig, run_dir: str | Path | None = None, *, quiet: bool = True) -> Run:
    """Search, keep the best trial's agent, evaluate it on fresh episodes and save it as a run."""
    assert cfg.env is not None
    check_config(cfg)
    if cfg.model.name == "auto" and "model.name" not in cfg.tune.space:  # model.X keys need a concrete agent
        cfg = apply_params(cfg, {"model.name": agent_name(cfg)})
    if cfg.tune.storage:
        raise UserError("tune.storage (a shared study) is not supported for reinforcement learning yet; "
                        "leave it unset to tune in this process")  # fmt: skip
    dims = parse_space(cfg, TASK)
    started = time.time()
    with staged(claim(run_dir or default_run_dir(cfg.name))) as stage:
        with _optuna_quiet():
            study = optuna.create_study(
                direction="maximize", sampler=make_sampler(cfg.tune.sampler, cfg.seed),
                pruner=make_pruner(cfg.tune.pruner, cfg.env.total_timesteps),
            )  # fmt: skip
            first = base_values(cfg, dims)
            if first:
                study.enqueue_trial(first)  # the configured values first: tuning never reports worse than them
            kept: dict[int, Learned] = {}

            def objective(trial: optuna.Trial) -> float:
                trial_cfg = apply_params(cfg, sample(trial, dims, cfg.model.name))
                learned = learn(trial_cfg, trial=trial)
                if learned.pruned:
                    raise optuna.TrialPruned(f"pruned at {learned.training['timesteps']} timesteps")
                value = learned.final["mean_return"]
                best = max((t.value for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                            if t.value is not None), default=-np.inf)  # fmt: skip
                if value > best:  # keep only the leader's agent in memory
                    kept.clear()
                    kept[trial.number] = learned
                if not quiet:
                    print(f"trial {trial.number}: mean return {value:.1f}", flush=True)
                return value

            study.optimize(objective, n_trials=cfg.tune.n_trials, timeout=cfg.tune.timeout_s)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            raise UserError(f"no tuning trial completed ({len(study.trials)} pruned or failed); widen tune.space or "
                            "raise env.total_timesteps")  # fmt: skip
        best = study.best_trial
        best_cfg = apply_params(cfg, {d.key: d.decode(best.params[d.key]) for d in dims if d.key in best.params})
        learned = kept[best.number]
        learned.final = _fresh_evaluation(best_cfg, learned)
        trials = [trial_row(t, dims) for t in study.trials]
        tuning = {"metric": "mean_return", "direction": "maximize", "best_value": best.value,
                  "best_params": {d.key: d.decode(best.params[d.key]) for d in dims if d.key in best.params},
                  "best_trial": best.number, "n_trials": len(trials),
                  "states": {s: sum(t["state"] == s for t in trials) for s in {t["state"] for t in trials}},
                  "trials": trials, "param_importances": param_importances(study), "sampler": cfg.tune.sampler,
                  "pruner": cfg.tune.pruner, "scored_on": "each trial's final evaluation; the kept agent is "
                  "reported on fresh episodes"}  # fmt: skip
        write_text(stage.path / "trials.csv", trials_frame(trials).to_csv(index=False))
        return save_agent_run(best_cfg, learned, stage=stage, started=started, extra={"tuning": tuning})


def _fresh_evaluation(cfg: ExperimentConfig, learned: Learned) -> dict[str, Any]:
    from stable_baselines3.common.evaluation import evaluate_policy

    assert cfg.env is not None
    env = make_vec_env(cfg.env, seed=cfg.seed + TEST_SEED, n_envs=1)
    returns, lengths = evaluate_policy(learned.algorithm, env, n_eval_episodes=cfg.env.final_episodes,
                                       deterministic=True, return_episode_rewards=True)  # fmt: skip
    return {"episodes": len(returns), "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
            "min_return": float(np.min(returns)), "max_return": float(np.max(returns)),
            "mean_length": float(np.mean(lengths)), "returns": [float(r) for r in returns]}  # fmt: skip
