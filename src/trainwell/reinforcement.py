"""One reinforcement-learning experiment, top to bottom: make the environment → build the agent → learn with
periodic deterministic evaluations → evaluate the final policy once on fresh episodes → save the run.

The periodic evaluations drive the progress bar, the stop at `env.target_return`, the diagnosis and (under
`trainwell tune`) pruning; the final evaluation uses its own seeded environment and is the run's score.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

from trainwell.config import ExperimentConfig, dump_config
from trainwell.data.env import env_factory, make_vec_env
from trainwell.errors import UserError
from trainwell.evaluate.rl import diagnose_returns
from trainwell.files import atomic_path, write_json, write_text
from trainwell.models.rl import Agent, build_agent, get_agent, parse_agent_params, space_to_json
from trainwell.run import RUN_FORMAT, UNSEALED, Run
from trainwell.track.rundir import Stage, library_versions

TASK = "reinforcement_learning"
DEFAULT_AGENT = "ppo"
EVAL_SEED, FINAL_SEED = 10_000, 20_000  # offsets: evaluation episodes never replay the training seeds
ROLLOUT_FRAMES = 8


@dataclass
class Learned:
    """What `learn` returns: the trained SB3 algorithm, its evaluation curve and the final evaluation."""

    name: str
    params: dict[str, Any]
    algorithm: Any
    history: list[dict[str, float]]
    final: dict[str, Any]
    training: dict[str, Any]
    pruned: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


def agent_name(cfg: ExperimentConfig) -> str:
    return DEFAULT_AGENT if cfg.model.name == "auto" else cfg.model.name


def learn(cfg: ExperimentConfig, *, quiet: bool = True, trial: Any = None) -> Learned:
    """Train the configured agent; with an Optuna `trial`, report each evaluation and stop early when pruned."""
    import torch

    assert cfg.env is not None
    name = agent_name(cfg)
    params = parse_agent_params(name, cfg.model.params).model_dump(mode="json")
    envs = make_vec_env(cfg.env, seed=cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small policy networks: one thread is fastest and keeps runs reproducible
    try:
        algorithm = build_agent(name, params, envs, seed=cfg.seed)
        evaluations = _Evaluations(cfg, trial, quiet)
        started = time.perf_counter()
        algorithm.learn(cfg.env.total_timesteps, callback=evaluations)
        evaluations.close()
        final_env = make_vec_env(cfg.env, seed=cfg.seed + FINAL_SEED, n_envs=1)
        returns, lengths = evaluate_policy(algorithm, final_env, n_eval_episodes=cfg.env.final_episodes,
                                           deterministic=True, return_episode_rewards=True)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    final = {"episodes": len(returns), "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
             "min_return": float(np.min(returns)), "max_return": float(np.max(returns)),
             "mean_length": float(np.mean(lengths)), "returns": [float(r) for r in returns]}  # fmt: skip
    target = cfg.env.target_return
    solved = next((h["timesteps"] for h in evaluations.history if target is not None and h["mean_return"] >= target),
                  None)  # fmt: skip
    training = {"timesteps": int(algorithm.num_timesteps), "target_return": target, "solved_at": solved,
                "stopped": "target_reached" if evaluations.reached else "pruned" if evaluations.pruned else "budget",
                "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    return Learned(name, params, algorithm, evaluations.history, final, training, evaluations.pruned)


class _Evaluations(BaseCallback):
    """An SB3 callback: every `env.eval_every` timesteps, deterministic episodes on a separate seeded env."""

    def __init__(self, cfg: ExperimentConfig, trial: Any, quiet: bool) -> None:
        super().__init__()
        assert cfg.env is not None
        self.settings, self.trial = cfg.env, trial
        self.env = make_vec_env(cfg.env, seed=cfg.seed + EVAL_SEED, n_envs=1)
        self.history: list[dict[str, float]] = []
        self.last, self.reached, self.pruned, self.started = 0, False, False, time.perf_counter()
        self.progress = _progress(quiet, cfg.env.total_timesteps)

    def _on_step(self) -> bool:
        if self.progress is not None:
            self.progress[0].update(self.progress[1], completed=self.num_timesteps)
        if self.num_timesteps - self.last < self.settings.eval_every:
            return True
        self.last = self.num_timesteps
        returns, lengths = evaluate_policy(self.model, self.env, n_eval_episodes=self.settings.eval_episodes,
                                           deterministic=True, return_episode_rewards=True)  # fmt: skip
        row = {"timesteps": int(self.num_timesteps), "mean_return": float(np.mean(returns)),
               "std_return": float(np.std(returns)), "mean_length": float(np.mean(lengths)),
               "wall_s": round(time.perf_counter() - self.started, 3)}  # fmt: skip
        self.history.append(row)
        if self.progress is not None:
            self.progress[0].update(self.progress[1], stats=f"return {row['mean_return']:.1f}")
        if self.trial is not None:
            self.trial.report(row["mean_return"], row["timesteps"])
            if self.trial.should_prune():
                self.pruned = True
                return False
        target = self.settings.target_return
        self.reached = target is not None and row["mean_return"] >= target
        return not self.reached

    def close(self) -> None:
        if self.progress is not None:
            self.progress[0].stop()


def _progress(quiet: bool, total: int) -> tuple[Any, Any] | None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    if quiet or not console.is_terminal:
        return None
    progress = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console)  # fmt: skip
    task = progress.add_task("timesteps", total=total, stats="")
    progress.start()
    return progress, task


def check_config(cfg: ExperimentConfig) -> None:
    """Refuse settings that do not apply to an agent before anything runs."""
    assert cfg.env is not None
    name = agent_name(cfg)
    get_agent(name)
    parse_agent_params(name, cfg.model.params)
    if cfg.data.source:
        raise UserError("give env or data.source, not both: env trains an agent in an environment, data a model on "
                        "a table")  # fmt: skip


def train_agent(cfg: ExperimentConfig, stage: Stage, *, quiet: bool, started: float) -> Run:
    """Learn, evaluate, save: the run folder holds the policy, the return curve, the report and run.json."""
    learned = learn(cfg, quiet=quiet)
    return save_agent_run(cfg, learned, stage=stage, started=started)


def save_agent_run(cfg: ExperimentConfig, learned: Learned, *, stage: Stage, started: float,
                   extra: dict[str, Any] | None = None) -> Run:  # fmt: skip
    """Write the agent's run into its staging folder, seal it with a manifest and rename it into place."""
    from trainwell.artifacts import build_manifest
    from trainwell.report.html import write_report

    assert cfg.env is not None
    path = stage.path
    agent = Agent.from_algorithm(learned.name, learned.params, learned.algorithm, cfg.seed)
    agent.save(path / "model")
    resolved = cfg.model_copy(deep=True)
    resolved.model = type(cfg.model).model_validate({"name": learned.name, **learned.params})
    write_text(path / "config.yaml", dump_config(resolved))
    if learned.history:
        write_text(path / "history.csv", pd.DataFrame(learned.history).to_csv(index=False))
    metrics = {"evaluation": learned.final, "training": learned.training,
               "diagnosis": diagnose_returns(learned.history, learned.final, cfg.env.target_return)} | (extra or {})
    skipped = _rollout(cfg, agent, path / "rollout.png")
    if skipped:
        metrics["rollout_skipped"] = skipped
    write_json(path / "metrics.json", metrics)
    info = {
        "status": "complete", "name": cfg.name, "task": TASK, "target": None, "classes": [], "model": learned.name,
        "env": cfg.env.model_dump(mode="json"),
        "observation_space": space_to_json(learned.algorithm.observation_space),
        "action_space": space_to_json(learned.algorithm.action_space),
        "seed": cfg.seed, "versions": library_versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "duration_s": round(time.time() - started, 3),
    }  # fmt: skip
    write_json(path / "run.json", info | {"status": "saving"})
    write_report(path)
    manifest = build_manifest(path, exclude=UNSEALED)
    write_json(path / "run.json", info | {"format": RUN_FORMAT, "manifest": manifest})
    return Run.load(stage.finish())


def _rollout(cfg: ExperimentConfig, agent: Agent, path: Path) -> str | None:
    """A strip of frames from one deterministic episode, for the report; the reason when the env cannot render."""
    assert cfg.env is not None
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # classic-control renders through pygame, off screen
    try:
        frames = record_episode(cfg, agent, seed=cfg.seed + FINAL_SEED, every=None)[1]
    except UserError as exc:
        return str(exc)
    from PIL import Image

    height = 120
    images = [Image.fromarray(f) for f in frames]
    images = [im.resize((max(1, round(im.width * height / im.height)), height)) for im in images]
    strip = Image.new("RGB", (sum(im.width for im in images) + 4 * (len(images) - 1), height), "white")
    x = 0
    for im in images:
        strip.paste(im.convert("RGB"), (x, 0))
        x += im.width + 4
    with atomic_path(path) as tmp:
        strip.save(tmp, format="PNG")
    return None


def record_episode(cfg: ExperimentConfig, agent: Agent, *, seed: int,
                   every: int | None = 1) -> tuple[float, list[np.ndarray]]:  # fmt: skip
    """(return, frames) of one deterministic episode rendered as rgb_array; every `every`-th frame (None: about
    ROLLOUT_FRAMES spread over the episode). A UserError says why when the environment cannot render.

    With `every=None` the episode is played once without drawing to learn its length, then replayed with the
    same seed drawing only the frames kept: drawing is what costs (CartPole: 500 frames 1.7 s, 8 frames 0.03 s).
    """
    import gymnasium as gym

    assert cfg.env is not None
    keep: set[int] | None = None
    if every is None:
        length = _episode(cfg, agent, seed=seed, env=env_factory(cfg.env)(), draw=lambda step: False)[2]
        keep = set(np.linspace(0, length, min(ROLLOUT_FRAMES, length + 1)).round().astype(int).tolist())
    try:
        env = env_factory(cfg.env, render_mode="rgb_array")()
    except (gym.error.Error, UserError) as exc:
        raise UserError(f"env {cfg.env.id} cannot render frames: {exc}") from None
    if "rgb_array" not in (env.metadata.get("render_modes") or []):
        env.close()
        raise UserError(f"env {cfg.env.id} does not render rgb_array frames")
    try:
        total, frames, _ = _episode(cfg, agent, seed=seed, env=env,
                                    draw=lambda step: step in keep if keep is not None else step % every == 0)  # type: ignore[operator]
    except (gym.error.Error, OSError, RuntimeError) as exc:
        raise UserError(f"env {cfg.env.id} failed while rendering: {type(exc).__name__}: {exc}") from None
    return total, frames


def _episode(cfg: ExperimentConfig, agent: Agent, *, seed: int, env: Any,
             draw: Any) -> tuple[float, list[np.ndarray], int]:  # fmt: skip
    """(return, frames drawn at the steps where `draw(step)` holds, steps) of one deterministic episode."""
    frames, total, step = [], 0.0, 0
    try:
        observation, _ = env.reset(seed=seed)
        done = False
        while True:
            if draw(step):
                frame = env.render()
                if frame is not None:
                    frames.append(np.asarray(frame))
            if done:
                break
            observation, reward, terminated, truncated, _ = env.step(agent.act(observation))
            total += float(reward)
            done = terminated or truncated
            step += 1
    finally:
        env.close()
    return total, frames, step


def play_episodes(run: Run, episodes: int, *, seed: int = 0, record: Path | None = None) -> list[float]:
    """Returns of `episodes` deterministic episodes of a saved agent (seeds seed, seed+1, ...); with `record`,
    the first episode's frames as a GIF."""
    cfg = run.config
    if cfg.env is None:
        raise UserError(f"{run.dir} has no env section; play needs a reinforcement-learning run")
    agent: Agent = run.model  # type: ignore[assignment]
    returns = []
    for i in range(episodes):
        if i == 0 and record is not None:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            total, frames = record_episode(cfg, agent, seed=seed)
            _write_gif(frames, record)
        else:
            total = _episode_return(cfg, agent, seed=seed + i)
        returns.append(total)
    return returns


def _episode_return(cfg: ExperimentConfig, agent: Agent, *, seed: int) -> float:
    assert cfg.env is not None
    return _episode(cfg, agent, seed=seed, env=env_factory(cfg.env)(), draw=lambda step: False)[0]


def _write_gif(frames: list[np.ndarray], path: Path) -> None:
    from PIL import Image

    if not frames:
        raise UserError("the episode rendered no frames to record")
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
