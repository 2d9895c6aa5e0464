"""The report of reinforcement-learning runs: the return curve and final evaluation, the rollout strip, the
environment, and a whole page that renders for an RL run folder.

Run folders are written here in the layout the RL training writes (run.json, metrics.json, history.csv, an
optional rollout.png), with numbers shaped like PPO learning CartPole-v1: returns rising from ~20 to the 500
cap over 40,000 timesteps. Written directly, not trained: an agent would cost more seconds than every test here.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from trainwell.report import load_run_data, render_report
from trainwell.report import rl as report  # importing it registers its sections
from trainwell.report.html import fmt

SECTIONS = (report.returns_section, report.rollout_section, report.environment_section)
ERROR = 'class="section-error"'
# mean and std of 10 evaluation episodes every 5,000 timesteps, shaped like PPO learning CartPole-v1
CURVE = [(22.4, 9.8), (41.0, 17.2), (98.3, 40.1), (187.5, 61.0), (265.2, 88.4), (340.9, 97.3), (421.6, 70.2),
         (488.1, 23.9)]  # fmt: skip
INF = float("inf")
CARTPOLE_LOW = [-4.8, -INF, -0.41887903, -INF]  # CartPole-v1's observation bounds: velocities are unbounded


def _png(width: int = 96, height: int = 32) -> bytes:
    """A strip of three 'frames': a pole leaning a little more in each."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(3):
        x = i * width // 3 + width // 6
        draw.rectangle([x - 6, height - 8, x + 6, height - 4], fill="black")
        draw.line([x, height - 8, x + 3 * i, 4], fill="brown", width=2)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def make_rl_run(run_dir: Path, *, evaluations: int = len(CURVE), target: float | None = 475.0,
                rollout: bool = True) -> Path:  # fmt: skip
    """An RL run folder of the first `evaluations` points of CURVE: solved at the first one reaching `target`."""
    run_dir.mkdir(parents=True)
    steps = [5_000 * (i + 1) for i in range(evaluations)]
    history = pd.DataFrame({"timesteps": steps, "mean_return": [m for m, _ in CURVE[:evaluations]],
                            "std_return": [s for _, s in CURVE[:evaluations]],
                            "mean_length": [m for m, _ in CURVE[:evaluations]],
                            "wall_s": [3.1 * (i + 1) for i in range(evaluations)]})  # fmt: skip
    history.to_csv(run_dir / "history.csv", index=False)
    hits = [t for t, (m, _) in zip(steps, CURVE, strict=False) if target is not None and m >= target]
    solved_at = hits[0] if hits else None
    final = [500.0] * 17 + [481.0, 493.0, 472.0] if solved_at else list(np.linspace(250.0, 410.0, 20))
    metrics: dict[str, Any] = {
        "evaluation": {"episodes": len(final), "mean_return": float(np.mean(final)), "std_return": float(np.std(final)),
                       "min_return": min(final), "max_return": max(final), "mean_length": float(np.mean(final)),
                       "returns": final},
        "training": {"timesteps": steps[-1], "target_return": target, "solved_at": solved_at,
                     "stopped": "target_reached" if solved_at else "budget"},
        "diagnosis": {"verdict": "solved" if solved_at else "still_improving", "summary": "the agent balances the pole",
                      "evidence": {"best_mean_return": max(m for m, _ in CURVE[:evaluations])},
                      "advice": ["raise env.target_return or try a harder environment"]},
    }  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    info = {
        "status": "complete", "name": run_dir.name, "task": "reinforcement_learning", "model": "ppo",
        "env": {"id": "CartPole-v1", "kwargs": {}, "n_envs": 1, "total_timesteps": 100_000, "target_return": target,
                "eval_every": 5_000, "eval_episodes": 10, "final_episodes": 20, "max_episode_steps": None},
        "observation_space": {"type": "Box", "low": CARTPOLE_LOW, "high": [-v for v in CARTPOLE_LOW],
                              "dtype": "float32"},
        "action_space": {"type": "Discrete", "n": 2, "start": 0},
        "seed": 0, "started": "2026-12-02T10:00:00", "duration_s": 27.4,
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))  # inf as Infinity, as Python's json writes it
    (run_dir / "config.yaml").write_text(f"name: {run_dir.name}\nenv:\n  id: CartPole-v1\nmodel:\n  name: ppo\n")
    if rollout:
        (run_dir / "rollout.png").write_bytes(_png())
    return run_dir


@pytest.fixture
def solved(tmp_path: Path) -> Path:
    return make_rl_run(tmp_path / "cartpole")


def _cells(fragment: str) -> dict[str, str]:
    """First cell → second cell of every two-cell table row, tags stripped."""
    rows = re.findall(r"<tr><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td></tr>", fragment)
    return {re.sub("<[^>]+>", "", k): re.sub("<[^>]+>", "", v) for k, v in rows}


def _caption(fragment: str) -> str:
    return re.findall(r'<p class="note">(.*?)</p>', fragment)[0]


def test_return_curve_shows_target_and_solved_point(solved: Path) -> None:
    html = report.returns_section(load_run_data(solved))
    assert html is not None
    curve, strip = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert 'aria-label="Evaluation return"' in curve
    assert "target 475" in curve and "solved at 40,000 steps" in curve
    assert "±" in curve  # the std band is in the legend
    assert 'aria-label="Final evaluation: 20 episodes"' in strip
    assert "mean 497.3" in strip and "target 475" in strip  # (17 * 500 + 481 + 493 + 472) / 20
    caption = _caption(html)
    assert (
        "Training stopped after 40,000 timesteps: the evaluation at 40,000 timesteps reached the target return 475."
        in caption
    )
    assert "The curve: 8 evaluations during training over 24.8 s, each the mean ± std of its 10 episodes." in caption


def test_final_evaluation_numbers_in_caption_and_table(solved: Path) -> None:
    data = load_run_data(solved)
    html = report.returns_section(data)
    assert html is not None
    final = np.array(data.metrics["evaluation"]["returns"])
    assert f"mean return 497.3 ± {fmt(float(final.std()))} over 20 episodes (min 472, max 500)." in _caption(html)
    cells = _cells(html)
    assert cells["episodes"] == "20"
    assert cells["mean return"] == "497.3"
    assert cells["std of returns"] == fmt(float(final.std())) == "7.239"
    assert (cells["min return"], cells["max return"]) == ("472", "500")
    assert cells["timesteps trained"] == "40,000" and cells["solved at (timesteps)"] == "40,000"
    assert cells["target return"] == "475" and cells["stopped"] == "target reached"


def test_budget_run_names_its_best_evaluation(tmp_path: Path) -> None:
    data = load_run_data(make_rl_run(tmp_path / "short", evaluations=6))  # stops at 30,000, best 340.9
    html = report.returns_section(data)
    assert html is not None
    assert "solved at" not in html
    assert ("Training used its whole budget of 30,000 timesteps without reaching the target return 475; the best "
            "evaluation was 340.9 at 30,000.") in _caption(html)  # fmt: skip
    assert _cells(html)["stopped"] == "budget spent" and "solved at (timesteps)" not in _cells(html)


def test_without_target_no_target_line(tmp_path: Path) -> None:
    html = report.returns_section(load_run_data(make_rl_run(tmp_path / "free", target=None)))
    assert html is not None
    assert "target" not in html.split("</svg>")[0]
    assert "Training used its whole budget of 40,000 timesteps; no target return was set." in _caption(html)


def test_final_evaluation_alone_still_reported(tmp_path: Path) -> None:
    run = make_rl_run(tmp_path / "nohistory")
    (run / "history.csv").unlink()
    html = report.returns_section(load_run_data(run))
    assert html is not None
    assert html.count("<svg") == 1  # the per-episode strip only
    assert _cells(html)["mean return"] == "497.3"


def test_rollout_embedded_as_data_uri_only_when_present(solved: Path, tmp_path: Path) -> None:
    html = report.rollout_section(load_run_data(solved))
    assert html is not None
    src = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" width="(\d+)" height="(\d+)"', html)
    assert src is not None
    assert base64.b64decode(src[1]) == (solved / "rollout.png").read_bytes()
    assert (int(src[2]), int(src[3])) == (96, 32)
    assert 'alt="Frames from one episode of the trained agent in CartPole-v1"' in html
    assert report.rollout_section(load_run_data(make_rl_run(tmp_path / "norender", rollout=False))) is None
    (solved / "rollout.png").write_bytes(b"GIF89a" + b"\0" * 40)
    broken = report.rollout_section(load_run_data(solved))
    assert broken is not None and "<img" not in broken and "not a PNG image" in broken


def test_environment_in_words(solved: Path) -> None:
    html = report.environment_section(load_run_data(solved))
    assert html is not None
    cells = _cells(html)
    assert cells["environment"] == "CartPole-v1" and cells["algorithm"] == "ppo"
    assert cells["parallel environments"] == "1" and cells["seed"] == "0"
    assert cells["actions"] == "Discrete(2)"
    assert cells["observations"] == "Box(4,) float32, low [-4.8, −∞, -0.4189, −∞], high [4.8, ∞, 0.4189, ∞]"
    assert cells["eval every"] == "5,000" and cells["total timesteps"] == "100,000"
    assert "kwargs" not in cells  # empty: nothing to say
    info = json.loads((solved / "run.json").read_text())
    info["env"]["kwargs"] = {"sutton_barto_reward": True}
    (solved / "run.json").write_text(json.dumps(info))
    assert _cells(report.environment_section(load_run_data(solved)) or "")["kwargs"] == "sutton_barto_reward=True"


def test_box_space_with_equal_bounds() -> None:
    box = {"type": "Box", "low": [-2.0], "high": [2.0], "dtype": "float32"}
    assert report._space(box) == "Box(1,) float32 in [-2, 2]"
    image = {"type": "Box", "low": np.zeros((3, 4, 4)).tolist(), "high": np.full((3, 4, 4), 255).tolist()}
    assert report._space(image) == "Box(3, 4, 4) in [0, 255]"
    assert report._space({"type": "Box", "low": [None] * 9, "high": list(range(9))}).endswith("differ per dimension")


def test_rollout_absent_says_why_when_training_did(tmp_path: Path) -> None:
    run = make_rl_run(tmp_path / "headless", rollout=False)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["rollout_skipped"] = "env CartPole-v1 cannot render frames: pygame is not installed"
    (run / "metrics.json").write_text(json.dumps(metrics))
    html = report.rollout_section(load_run_data(run))
    assert (
        html == '<p class="note">No rollout strip: env CartPole-v1 cannot render frames: pygame is not installed.</p>'
    )


def test_pruned_trial_says_the_tuner_stopped_it(tmp_path: Path) -> None:
    run = make_rl_run(tmp_path / "trial", evaluations=3)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["training"]["stopped"] = "pruned"
    (run / "metrics.json").write_text(json.dumps(metrics))
    html = report.returns_section(load_run_data(run))
    assert html is not None
    assert _caption(html).startswith("Final evaluation: mean return 330 ± ")  # linspace(250, 410, 20)
    assert "The tuner stopped this trial after 15,000 timesteps" in _caption(html)
    assert _cells(html)["stopped"] == "pruned by the tuner"


@pytest.mark.parametrize("fixture", ["classifier_run", "regressor_run", "binary_run"])
def test_supervised_runs_have_no_rl_sections(fixture: str, request: pytest.FixtureRequest) -> None:
    data = load_run_data(request.getfixturevalue(fixture))
    (data.dir / "rollout.png").write_bytes(_png())  # even a stray image is no rollout of a classifier
    try:
        assert [render(data) for render in SECTIONS] == [None, None, None]
    finally:
        (data.dir / "rollout.png").unlink()


def test_whole_page_renders_for_an_rl_run(solved: Path, parse_sections: Any) -> None:
    page = render_report(load_run_data(solved))
    assert ERROR not in page
    found = parse_sections(page)
    ids = list(found)
    assert ids.index("diagnosis") < ids.index("returns") < ids.index("rollout") < ids.index("environment")
    assert "metrics" not in found and "learning-curves" not in found  # no splits, no epochs: nothing to show
    assert found["returns"]["svg"] == 2 and found["rollout"]["img"] == 1
    assert "reached the target return 475" in found["returns"]["text"]
    assert '<a href="#returns">Returns</a>' in page
    png = base64.b64encode((solved / "rollout.png").read_bytes()).decode()
    assert page.count(png) == 1
