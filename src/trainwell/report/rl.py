"""Report sections for reinforcement-learning runs: the evaluation returns during and after training, a strip of
frames from one episode, and the environment. Registered like the others; each returns None for other tasks.

An RL run has no train/validation/test splits: its scores are returns of evaluation episodes, in metrics.json
`evaluation` (the final one) and history.csv (one row per periodic evaluation during training).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from trainwell.report import plots
from trainwell.report.html import RunData, esc, figures, fmt, note, section, table

TASK = "reinforcement_learning"
ROLLOUT = "rollout.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BOUNDS = 8  # Box dimensions whose bounds are listed one by one
STRIP_JITTER = 0.25  # vertical spread of the dots in the per-episode strip, so equal returns stay countable


@section("returns", "Returns", order=21)
def returns_section(data: RunData) -> str | None:
    """The return curve over training, the final evaluation's episodes, and its numbers."""
    if data.task != TASK:
        return None
    evaluation: dict[str, Any] = data.metrics.get("evaluation") or {}
    training: dict[str, Any] = data.metrics.get("training") or {}
    h = data.history if data.history is not None and {"timesteps", "mean_return"} <= set(data.history) else None
    if h is not None and not len(h):
        h = None
    if h is None and not evaluation:
        return None
    target, solved_at = training.get("target_return"), training.get("solved_at")
    svgs = []
    if h is not None:
        svgs.append(_return_curve(h, target, solved_at))
    episodes = [float(r) for r in evaluation.get("returns") or [] if r is not None]
    if episodes:
        svgs.append(_episode_strip(np.asarray(episodes), target))
    per_evaluation = (data.run.get("env") or {}).get("eval_episodes")
    sentences = [_final_sentence(evaluation), _stop_sentence(training, h), _curve_sentence(h, per_evaluation)]
    out = figures(*svgs, caption=" ".join(s for s in sentences if s))
    if evaluation or training:
        out += f'<div class="cols">{_evaluation_table(evaluation)}{_training_table(training)}</div>'
    return out


def _return_curve(h: pd.DataFrame, target: float | None, solved_at: int | None) -> str:
    """Mean evaluation return over timesteps with a ±1 std band; the target dashed, the solving evaluation starred."""
    steps, mean = h["timesteps"].to_numpy(float), h["mean_return"].to_numpy(float)
    with plots.figure() as (fig, ax):
        style = {"marker": "o", "markersize": 2.5} if len(steps) <= 60 else {}
        ax.plot(steps, mean, color=plots.TRAIN, label="mean return", **style)
        if "std_return" in h:
            std = h["std_return"].to_numpy(float)
            ax.fill_between(steps, mean - std, mean + std, color=plots.TRAIN, alpha=0.15, linewidth=0, label="± 1 std")
        if target is not None:
            ax.axhline(target, color=plots.NEUTRAL, linestyle="--", linewidth=1, label=f"target {fmt(target)}")
        if solved_at is not None:
            at = steps == solved_at
            if at.any():  # the evaluation that reached the target
                ax.scatter(steps[at], mean[at], s=90, marker="*", color=plots.VAL, zorder=4,
                           label=f"solved at {solved_at:,} steps")  # fmt: skip
            else:  # history thinned or cut: still show when
                ax.axvline(solved_at, color=plots.VAL, linestyle=":", label=f"solved at {solved_at:,} steps")
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
        ax.set(xlabel="timesteps", ylabel="evaluation return", title="Evaluation return")
        ax.legend(loc="best")
        return plots.to_svg(fig)


def _steps_label(value: float, _: Any) -> str:
    """Tick labels like 25k and 1.5M: a timestep axis reaches millions."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if abs(value) >= 1e3 else f"{value:g}"


def _episode_strip(returns: np.ndarray, target: float | None) -> str:
    """One dot per final evaluation episode (jittered up and down), the mean as a line: spread and outliers at once."""
    jitter = np.random.default_rng(0).uniform(-STRIP_JITTER, STRIP_JITTER, len(returns))
    with plots.figure(4.4, 2.4) as (fig, ax):
        ax.scatter(returns, jitter, s=18, color=plots.TRAIN, alpha=0.6, linewidths=0)
        ax.axvline(float(returns.mean()), color=plots.VAL, linewidth=1.2, label=f"mean {fmt(float(returns.mean()))}")
        if target is not None:
            ax.axvline(target, color=plots.NEUTRAL, linestyle="--", linewidth=1, label=f"target {fmt(target)}")
        ax.set_yticks([])
        ax.set(ylim=(-0.6, 0.6), xlabel="episode return", title=f"Final evaluation: {len(returns)} episodes")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return plots.to_svg(fig)


def _final_sentence(evaluation: dict[str, Any]) -> str:
    if evaluation.get("mean_return") is None:
        return ""
    n = evaluation.get("episodes") or len(evaluation.get("returns") or [])
    spread = f" ± {fmt(evaluation['std_return'])}" if evaluation.get("std_return") is not None else ""
    out = f"Final evaluation: mean return {fmt(evaluation['mean_return'])}{spread} over {fmt(n)} episodes"
    if evaluation.get("min_return") is not None and evaluation.get("max_return") is not None:
        out += f" (min {fmt(evaluation['min_return'])}, max {fmt(evaluation['max_return'])})"
    return out + "."


def _stop_sentence(training: dict[str, Any], h: pd.DataFrame | None) -> str:
    """When and why training stopped, and the best evaluation when the target was missed."""
    steps, target, solved_at = training.get("timesteps"), training.get("target_return"), training.get("solved_at")
    trained = f"{fmt(steps)} timesteps" if steps is not None else "its timesteps"
    if training.get("stopped") == "pruned":
        out = f"The tuner stopped this trial after {trained}: its evaluations trailed the other trials' at that point."
    elif solved_at is not None:
        reached = f"the evaluation at {fmt(solved_at)} timesteps reached the target return {fmt(target)}"
        ended = "stopped after" if training.get("stopped") == "target_reached" else "used its whole budget of"
        out = f"Training {ended} {trained}: {reached}."
    elif target is not None:
        out = f"Training used its whole budget of {trained} without reaching the target return {fmt(target)}"
        if h is not None and h["mean_return"].notna().any():
            best = h.loc[h["mean_return"].idxmax()]
            out += f"; the best evaluation was {fmt(float(best['mean_return']))} at {fmt(int(best['timesteps']))}"
        out += "."
    elif training:
        out = f"Training used its whole budget of {trained}; no target return was set."
    else:
        out = ""
    return out


def _curve_sentence(h: pd.DataFrame | None, per_evaluation: int | None) -> str:
    if h is None:
        return ""
    wall = f" over {fmt(float(h['wall_s'].iloc[-1]))} s" if "wall_s" in h and pd.notna(h["wall_s"].iloc[-1]) else ""
    episodes = f"its {fmt(per_evaluation)} episodes" if per_evaluation else "its episodes"
    return f"The curve: {len(h)} evaluations during training{wall}, each the mean ± std of {episodes}."


def _evaluation_table(evaluation: dict[str, Any]) -> str:
    names = {"episodes": "episodes", "mean_return": "mean return", "std_return": "std of returns",
             "min_return": "min return", "max_return": "max return", "mean_length": "mean episode length"}  # fmt: skip
    rows = [[label, evaluation.get(key)] for key, label in names.items()]
    rows = [r for r in rows if r[1] is not None]
    return table(["final evaluation", "value"], rows) if rows else ""


def _training_table(training: dict[str, Any]) -> str:
    stopped = {"target_reached": "target reached", "budget": "budget spent", "pruned": "pruned by the tuner"}
    rows = [["timesteps trained", training.get("timesteps")], ["target return", training.get("target_return")],
            ["solved at (timesteps)", training.get("solved_at")],
            ["stopped", stopped.get(training.get("stopped", ""), training.get("stopped"))]]  # fmt: skip
    rows = [r for r in rows if r[1] is not None]
    return table(["training", "value"], rows) if rows else ""


@section("rollout", "Rollout", order=22)
def rollout_section(data: RunData) -> str | None:
    """The frames of one deterministic episode, embedded in the page (the report is one file, read offline)."""
    path = data.dir / ROLLOUT
    if data.task != TASK:
        return None
    if not path.is_file():  # the environment cannot render: say why when training said so
        reason = data.metrics.get("rollout_skipped")
        return note(f"No rollout strip: {reason}.") if reason else None
    image = path.read_bytes()
    if not image.startswith(PNG_SIGNATURE) or len(image) < 24:
        return note(f"{ROLLOUT} in the run folder is not a PNG image, so it is not shown.")
    width, height = struct.unpack(">II", image[16:24])  # the IHDR chunk, first after the signature
    env = str((data.run.get("env") or {}).get("id") or "the environment")
    alt = f"Frames from one episode of the trained agent in {env}"
    img = (f'<img src="data:image/png;base64,{base64.b64encode(image).decode("ascii")}" width="{width}" '
           f'height="{height}" alt="{esc(alt)}" style="max-width:100%;height:auto;display:block">')  # fmt: skip
    return img + note(f"{alt}, acting deterministically; time runs left to right.")


@section("environment", "Environment", order=99)
def environment_section(data: RunData) -> str | None:
    """What the agent acted in: the environment, its spaces, how many copies ran, the seed."""
    if data.task != TASK:
        return None
    r = data.run
    env: dict[str, Any] = r.get("env") or {}
    rows = [["environment", env.get("id")], ["algorithm", r.get("model")], ["parallel environments", env.get("n_envs")],
            ["seed", r.get("seed")], ["observations", _space(r.get("observation_space"))],
            ["actions", _space(r.get("action_space"))]]  # fmt: skip
    shown = {"id", "n_envs"}
    for key, value in env.items():
        if key in shown or value in (None, {}, []):
            continue
        text = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
        rows.append([key.replace("_", " "), text])
    rows = [row for row in rows if row[1] is not None]
    return table(None, rows) if rows else None


def _space(space: dict[str, Any] | None) -> str | None:
    """A space in words: "Discrete(2)", "Box(1,) float32 in [-2, 2]", per-dimension bounds when they differ."""
    if not space:
        return None
    kind = str(space.get("type", "?"))
    if kind == "Discrete":
        start = int(space.get("start", 0))
        return f"Discrete({space.get('n')})" + (f" from {start}" if start else "")
    if kind == "Box" and space.get("low") is not None and space.get("high") is not None:
        low, high = _bounds(space["low"]), _bounds(space["high"])
        head = f"Box{tuple(np.shape(space['low']))} {space.get('dtype', '')}".rstrip()
        if low.size and np.all(low == low[0]) and np.all(high == high[0]):
            return f"{head} in [{fmt(float(low[0]))}, {fmt(float(high[0]))}]"
        if low.size <= MAX_BOUNDS:
            return f"{head}, low [{', '.join(map(fmt, low.tolist()))}], high [{', '.join(map(fmt, high.tolist()))}]"
        return f"{head}, bounds differ per dimension"
    return f"{kind}({space.get('n')})" if "n" in space else kind


def _bounds(values: Any) -> np.ndarray:
    """Box bounds as floats, flat; JSON has no infinity, so a writer may store null (shown "—") or "inf" strings."""
    return np.asarray([np.nan if v is None else v for v in np.ravel(np.asarray(values, dtype=object))], float)
