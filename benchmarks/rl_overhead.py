"""RL overhead: trainwell solving CartPole-v1 with PPO against a plain Stable-Baselines3 script doing the same.

Both arms train the same PPO (trainwell's defaults: MLP 64-64 with tanh, learning rate 3e-4, gamma 0.99, 256
steps per rollout, minibatches of 64, 10 epochs, GAE 0.95, clip 0.2, no entropy bonus, value weight 0.5) on
the same vectorised environment (`make_vec_env(id, n_envs, seed=seed)`) with the same seed, evaluate the
deterministic policy on 10 episodes every 5,000 timesteps on a separately seeded env and stop at a mean return
of 475. The plain script then does what a careful SB3 user does at the end: a final 20-episode evaluation and
`model.save`. trainwell's arm is one `train(config)` call, so it also pays for checking the environment, its
run folder, the diagnosis, the rollout strip (one more episode, rendered), the report and the manifest.

Reported per arm: timesteps to solve (the same seed gives the same number in both: the same updates on the
same transitions), seconds to the solving evaluation, seconds learning (`learn` with its evaluations, then the
final evaluation: trainwell's own `training.seconds`) and seconds in all (the whole call). Ratios are trainwell
over plain within the same round (paired), median over rounds; the arms alternate which goes first, after an
untimed 1,000-timestep call each (imports, first use of torch and pygame). Target: a wall-time ratio of at
most 1.05. Without `trainwell.reinforcement` only the plain arm runs.

    .venv/bin/python benchmarks/rl_overhead.py                    # 3 rounds, ~25 s per solve on 2 busy cores
    .venv/bin/python benchmarks/rl_overhead.py --repeats 2 --write  # and append the table to RESULTS.md
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from torch import nn

ENV_ID = "CartPole-v1"
TARGET = 475.0
EVAL_EVERY = 5_000  # timesteps between evaluations
EVAL_EPISODES = 10
FINAL_EPISODES = 20  # the closing evaluation, as trainwell's metrics.json holds
BUDGET = 300_000  # timesteps; CartPole with these settings solves well before
WARM_UP = 1_000  # timesteps of the untimed first call per arm: imports and first-use costs land in no round
EVAL_SEED, FINAL_SEED = 10_000, 20_000  # seed offsets of the evaluation envs, as trainwell.reinforcement's
PPO_PARAMS: dict[str, Any] = {"learning_rate": 3e-4, "gamma": 0.99, "n_steps": 256, "batch_size": 64, "n_epochs": 10,
                              "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.0, "vf_coef": 0.5}  # fmt: skip
NET_ARCH = [64, 64]
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass
class Result:
    """One solve: when it reached the target and what it cost."""

    arm: str
    solved_at: int | None  # timesteps of the first evaluation at or above the target; None: budget ran out
    timesteps: int  # trained in all
    seconds: float  # the whole call
    learn_seconds: float  # `learn` with its periodic evaluations, then the final evaluation
    solve_seconds: float | None  # from the start of `learn` to the end of the solving evaluation


class EvaluateAndStop(BaseCallback):
    """Every `every` timesteps, the deterministic policy's mean return on `episodes` episodes; stop at `target`.

    Checked after each environment step, as SB3's own EvalCallback does, so training stops mid-rollout; the next
    evaluation comes `every` timesteps after the last one, as in trainwell (they differ only with n_envs > 1).
    """

    def __init__(self, eval_env: Any, every: int, episodes: int, target: float) -> None:
        super().__init__()
        self.eval_env, self.every, self.episodes, self.target = eval_env, every, episodes, target
        self.last = 0
        self.started = time.perf_counter()
        self.solved_at: int | None = None
        self.solve_seconds: float | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last < self.every:
            return True
        self.last = self.num_timesteps
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True,
                                     return_episode_rewards=True)  # fmt: skip
        if float(np.mean(returns)) < self.target:
            return True
        self.solved_at, self.solve_seconds = self.num_timesteps, time.perf_counter() - self.started
        return False


def plain_sb3(seed: int, n_envs: int, folder: Path, budget: int = BUDGET) -> Result:
    """The script an SB3 user writes: train with periodic evaluation until solved, evaluate once more, save."""
    started = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs, seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0,
                policy_kwargs={"net_arch": NET_ARCH, "activation_fn": nn.Tanh}, **PPO_PARAMS)  # fmt: skip
    stop = EvaluateAndStop(make_vec_env(ENV_ID, 1, seed=seed + EVAL_SEED), EVAL_EVERY, EVAL_EPISODES, TARGET)
    model.learn(budget, callback=stop)
    final_env = make_vec_env(ENV_ID, 1, seed=seed + FINAL_SEED)
    final, _ = evaluate_policy(model, final_env, n_eval_episodes=FINAL_EPISODES, deterministic=True)
    learn_seconds = time.perf_counter() - stop.started
    model.save(folder / "ppo.zip")
    assert final > 0
    return Result("plain SB3", stop.solved_at, int(model.num_timesteps), time.perf_counter() - started,
                  learn_seconds, stop.solve_seconds)  # fmt: skip


def trainwell_arm(seed: int, n_envs: int, folder: Path, budget: int = BUDGET) -> Result:
    """One `train(config)` call with the same algorithm, parameters, seed and evaluation schedule."""
    from trainwell.experiment import train

    config = {
        "name": "rl_overhead", "seed": seed,
        "env": {"id": ENV_ID, "n_envs": n_envs, "total_timesteps": budget, "target_return": TARGET,
                "eval_every": EVAL_EVERY, "eval_episodes": EVAL_EPISODES},
        "model": {"name": "ppo", "net_arch": NET_ARCH, "activation": "tanh", **PPO_PARAMS},
    }  # fmt: skip
    started = time.perf_counter()
    run = train(config, run_dir=folder / "run", quiet=True)
    seconds = time.perf_counter() - started
    training = run.metrics["training"]
    solved_at = training.get("solved_at")
    solve_seconds = None
    history = run.dir / "history.csv"
    if solved_at is not None and history.is_file():  # wall_s of the solving evaluation, as trainwell logged it
        rows = pd.read_csv(history)
        at = rows[rows["timesteps"] == solved_at]
        solve_seconds = float(at["wall_s"].iloc[0]) if len(at) else None
    return Result("trainwell", solved_at, int(training["timesteps"]), seconds, float(training["seconds"]),
                  solve_seconds)  # fmt: skip


def machine() -> str:
    import gymnasium

    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
             if line.startswith("model name")] if info.is_file() else []  # fmt: skip
    load = f" (load average {os.getloadavg()[0]:.1f} at the start)" if hasattr(os, "getloadavg") else ""
    return (f"{names[0] if names else cpu}, {os.cpu_count()} cores{load}; Python "
            f"{platform.python_version()}, torch {torch.__version__} (1 thread), stable-baselines3 "
            f"{stable_baselines3.__version__}, gymnasium {gymnasium.__version__}")  # fmt: skip


def _solved(r: Result) -> str:
    return f"{r.solved_at:,}" if r.solved_at is not None else f"not solved in {r.timesteps:,}"


def _seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "—"


def rows(rounds: list[list[Result]]) -> list[list[str]]:
    """One table row per arm and round: timesteps to solve, seconds, ratios to plain SB3 in the same round."""
    out = []
    for i, results in enumerate(rounds, start=1):
        base = next(r for r in results if r.arm == "plain SB3")
        for r in results:
            out.append([str(i), r.arm, _solved(r), f"{r.timesteps:,}", _seconds(r.solve_seconds),
                        f"{r.learn_seconds:.1f}", f"{r.seconds:.1f}", f"{r.learn_seconds / base.learn_seconds:.3f}",
                        f"{r.seconds / base.seconds:.3f}"])  # fmt: skip
    return out


HEADERS = ["round", "arm", "solved at", "timesteps", "s to solve", "s learning", "s in all", "ratio learning",
           "ratio in all"]  # fmt: skip


def summary(rounds: list[list[Result]]) -> str | None:
    """Median paired ratios of trainwell over plain SB3; None when only one arm ran."""
    pairs = [(next(r for r in rs if r.arm == "trainwell"), next(r for r in rs if r.arm == "plain SB3"))
             for rs in rounds if len(rs) == 2]  # fmt: skip
    if not pairs:
        return None
    whole = [t.seconds / p.seconds for t, p in pairs]
    learning = [t.learn_seconds / p.learn_seconds for t, p in pairs]
    same = all(t.solved_at == p.solved_at for t, p in pairs)
    verdict = "within" if statistics.median(whole) <= 1.05 else "over"
    return (f"median wall-time ratio {statistics.median(whole):.3f} in all (rounds {min(whole):.3f}-{max(whole):.3f}; "
            f"{verdict} the 1.05 target), {statistics.median(learning):.3f} learning and evaluating (rounds "
            f"{min(learning):.3f}-{max(learning):.3f}); timesteps to solve {'identical' if same else 'differ'} "
            "between the arms")  # fmt: skip


DESCRIPTION = (
    "`benchmarks/rl_overhead.py`: one `trainwell train` of PPO on CartPole-v1 (stopping at a mean evaluation return "
    f"of {TARGET:g} over {EVAL_EPISODES} deterministic episodes, evaluated every {EVAL_EVERY:,} timesteps) against a "
    "plain Stable-Baselines3 script with the same algorithm, hyperparameters, vectorised environment, seed and "
    f'evaluation schedule, which then evaluates {FINAL_EPISODES} episodes and saves the model. "s learning" is '
    '`learn` with its evaluations plus the final evaluation; "in all" the whole call, which for trainwell adds the '
    "environment check, run folder, diagnosis, rendered rollout strip, report and manifest. The arms alternate, "
    "after an untimed 1,000-timestep call each; "
    "ratios are trainwell over plain in the same round. Target: at most 1.05."
)


def write_results(rounds: list[list[Result]], seed: int, n_envs: int, line: str, described: str) -> None:
    """Append this run's table to RESULTS.md: the section's description the first time, then one block per run."""
    text = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    block = ["## RL overhead", "", textwrap.fill(DESCRIPTION, 110), ""] if "## RL overhead" not in text else []
    align = "|".join("---" if h == "arm" else "---:" for h in HEADERS)  # numbers right-aligned
    block += [f"### Run of {time.strftime('%Y-%m-%d')} (seed {seed}, n_envs {n_envs})", "",
              textwrap.fill(f"- Machine: {described}.", 110, subsequent_indent="  "), "",
              "| " + " | ".join(HEADERS) + " |", f"|{align}|", *("| " + " | ".join(r) + " |" for r in rows(rounds)),
              "", f"**{line}.**", ""]  # fmt: skip
    RESULTS.write_text(text.rstrip("\n") + "\n\n" + "\n".join(block))
    print(f"appended to {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds, each one solve per arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-envs", type=int, default=1, help="parallel environments (env.n_envs)")
    parser.add_argument("--write", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the machine is shared and the nets are tiny: one thread keeps the arms comparable
    arms = {"plain SB3": plain_sb3}
    if importlib.util.find_spec("trainwell.reinforcement") is not None:
        importlib.import_module("trainwell.experiment")  # imports paid before the clock starts, as for SB3's
        arms["trainwell"] = trainwell_arm
    else:
        print("trainwell.reinforcement is not there yet: running the plain SB3 arm only")
    described = machine()
    print(f"machine: {described}")
    print(f"{ENV_ID}, PPO, seed {args.seed}, n_envs {args.n_envs}, target {TARGET:g}, evaluation every "
          f"{EVAL_EVERY:,} timesteps on {EVAL_EPISODES} episodes, budget {BUDGET:,}")  # fmt: skip
    print("  ".join(HEADERS))
    rounds: list[list[Result]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rl-overhead-") as tmp:
        for name, arm in arms.items():
            (Path(tmp) / f"warm-up-{name.replace(' ', '_')}").mkdir()
            arm(args.seed, args.n_envs, Path(tmp) / f"warm-up-{name.replace(' ', '_')}", WARM_UP)
        for i in range(args.repeats):
            names = list(arms) if i % 2 == 0 else list(arms)[::-1]  # alternate who goes first
            results = []
            for name in names:
                folder = Path(tmp) / f"{i}-{name.replace(' ', '_')}"
                folder.mkdir()
                results.append(arms[name](args.seed, args.n_envs, folder))
            rounds.append(sorted(results, key=lambda r: r.arm))
            for row in rows(rounds[-1:]):
                print("  ".join([str(i + 1), *row[1:]]), flush=True)
    line = summary(rounds)
    print(f"\n{line or 'plain SB3 only: no ratio'}; total {time.perf_counter() - started:.0f} s")
    if args.write:
        if line is None:
            raise SystemExit("--write needs both arms; trainwell.reinforcement is missing")
        write_results(rounds, args.seed, args.n_envs, line, described)


if __name__ == "__main__":
    main()
