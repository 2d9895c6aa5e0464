"""Reading an agent's return curve: solved, still improving, plateaued, unstable or collapsed, with advice.

The curve is the mean deterministic evaluation return at each evaluation during training; the final
evaluation (more episodes) is the score the run reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STILL_RISING = 0.10  # the last evaluations gained this share of the curve's range: more timesteps would help
COLLAPSE = 0.5  # the final return lost this share of the range below the peak: training broke a good policy
UNSTABLE_DROPS = 0.4  # this share of evaluations fell by over a fifth of the range: updates are too large


def diagnose_returns(history: list[dict[str, float]], final: dict[str, Any], target: float | None) -> dict[str, Any]:
    """A verdict, one sentence, advice and the evidence, from the evaluation history and the final evaluation."""
    means = np.array([h["mean_return"] for h in history], dtype=float)
    final_mean, final_std = float(final["mean_return"]), float(final["std_return"])
    evidence: dict[str, Any] = {"final_mean_return": final_mean, "final_std_return": final_std,
                                "evaluations": len(means)}  # fmt: skip
    if target is not None:
        evidence["target_return"] = target
    if len(means):
        evidence |= {"best_evaluation_return": float(means.max()), "first_evaluation_return": float(means[0])}
    if target is not None and final_mean >= target:
        return _verdict("solved", f"solved: mean return {final_mean:.1f} ± {final_std:.1f} reaches the target "
                        f"{target:g}", ["check the rollout looks sensible; try fewer timesteps or a smaller "
                                        "network if training time matters"], evidence)  # fmt: skip
    if target is not None and len(means) and means.max() >= target:
        return _verdict("unreliable", f"reached the target {target:g} in a training evaluation (best "
                        f"{means.max():.1f}) but the final evaluation gives {final_mean:.1f} ± {final_std:.1f} over "
                        f"{final['episodes']} episodes",
                        [
                            "raise env.eval_episodes so training stops only on a steadier policy",
                            "or raise env.target_return a little above the score you need"], evidence)  # fmt: skip
    if len(means) < 3:
        return _verdict("too_short", f"mean return {final_mean:.1f} after {len(means)} evaluation(s): too few to read "
                        "a trend", ["raise env.total_timesteps or lower env.eval_every"], evidence)  # fmt: skip
    span = float(means.max() - means.min()) or 1e-9
    peak_at = int(means.argmax())
    if (means.max() - final_mean) / span > COLLAPSE and peak_at < len(means) - 1:
        advice = ["lower model.learning_rate, or for ppo lower model.clip_range",
                  "keep the best policy by stopping at env.target_return"]  # fmt: skip
        return _verdict("collapsed", f"collapsed after peaking: best evaluation {means.max():.1f}, final "
                        f"{final_mean:.1f}", advice, evidence)  # fmt: skip
    drops = np.diff(means) < -0.2 * span
    if drops.mean() > UNSTABLE_DROPS:
        return _verdict("unstable", f"unstable: {int(drops.sum())} of {len(drops)} evaluations fell by over a "
                        "fifth of the curve's range", ["lower model.learning_rate; for ppo raise model.n_steps or "
                                                       "model.batch_size; use more env.n_envs"], evidence)  # fmt: skip
    recent = means[-2:].mean() - means[-4:-2].mean() if len(means) >= 4 else means[-1] - means[-2]
    if recent / span > STILL_RISING:
        return _verdict("still_improving", f"still improving: the return rose {recent:.1f} over the last "
                        f"evaluations (final {final_mean:.1f})", ["raise env.total_timesteps: the agent has "
                                                                  "not converged"], evidence)  # fmt: skip
    below = f" below the target {target:g}" if target is not None else ""
    return _verdict("plateaued", f"plateaued at mean return {final_mean:.1f}{below}", [
        "tune the learning rate and gamma (trainwell tune), or try another algorithm (ppo, a2c, dqn, sac)",
        "reward shaping or a larger network can lift a plateau"], evidence)  # fmt: skip


def _verdict(verdict: str, summary: str, advice: list[str], evidence: dict[str, Any]) -> dict[str, Any]:
    return {"verdict": verdict, "summary": summary, "advice": advice, "evidence": evidence}
