"""Reinforcement learning through the product: an `env` config trains a Stable-Baselines3 agent, saves it
without pickle, reloads and replays it exactly, tunes with pruning, and refuses bad environments in one line.

The learning checks use two tiny custom environments written here (a corridor for discrete actions, a point
to steer home for continuous ones) so each agent learns in seconds; CartPole is solved by the example config
in tests/test_examples.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainwell.errors import UserError
from trainwell.experiment import reproduce, train
from trainwell.reinforcement import play_episodes
from trainwell.run import Run
from trainwell.tune import tune

ENVS = '''
import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right along 6 cells to the goal (+1); every step costs 0.05; 20 steps at most."""

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (6,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode

    def _obs(self):
        obs = np.zeros(6, np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.steps = 0, 0
        return self._obs(), {}

    def step(self, action):
        self.pos = min(5, self.pos + 1) if action == 1 else max(0, self.pos - 1)
        self.steps += 1
        done = self.pos == 5
        return self._obs(), (1.0 if done else -0.05), done, self.steps >= 20, {}


class Home(gym.Env):
    """Steer a point on a line home to 0: reward -|x| per step, 30 steps."""

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.steps = float(self.np_random.uniform(-3, 3)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.5 * float(np.clip(action[0], -1, 1)), -5, 5))
        self.steps += 1
        return np.array([self.x], np.float32), -abs(self.x), False, self.steps >= 30, {}


class Broken(gym.Env):
    """Observations outside the declared space: the environment checker must catch it."""

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(5, np.float32), {}

    def step(self, action):
        return np.zeros(5, np.float32), 0.0, True, False, {}
'''


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("envs") / "envs.py"
    path.write_text(ENVS)
    return path


def config(env_id: str, model: str, **env: Any) -> dict[str, Any]:
    settings = {"id": env_id, "total_timesteps": 3000, "eval_every": 500, "eval_episodes": 5, "final_episodes": 10}
    return {"name": model, "seed": 0, "env": settings | env, "model": {"name": model}}


def test_dqn_learns_the_corridor_and_replays_exactly_after_reload(tmp_path: Path, envs: Path) -> None:
    cfg = config(f"{envs}:Corridor", "dqn", target_return=0.7)
    cfg["model"] |= {"learning_starts": 200, "exploration_fraction": 0.3, "target_update_interval": 200,
                     "train_freq": 1, "net_arch": [32]}  # fmt: skip
    run = train(cfg, run_dir=tmp_path / "dqn", quiet=True)
    # the best return is 1 - 4 * 0.05 = 0.8 (five steps right); a random walk rarely reaches the goal in 20 steps
    assert run.metrics["evaluation"]["mean_return"] == pytest.approx(0.8)
    assert run.metrics["training"]["stopped"] == "target_reached" and run.metrics["training"]["solved_at"]
    assert run.metrics["diagnosis"]["verdict"] == "solved"
    files = sorted(p.name for p in (run.dir / "model").iterdir())
    assert files == ["model.json", "policy.safetensors"]  # no pickle, no zip: weights and JSON only
    history = run.history
    assert list(history.columns) == ["timesteps", "mean_return", "std_return", "mean_length", "wall_s"]

    again = Run.load(run.dir)
    assert play_episodes(again, 3, seed=5) == pytest.approx([0.8, 0.8, 0.8])
    obs = np.eye(6, dtype=np.float32)
    np.testing.assert_array_equal(again.model.act(obs), run.model.act(obs))  # type: ignore[attr-defined]


def test_sac_steers_home_far_better_than_random(tmp_path: Path, envs: Path) -> None:
    cfg = config(f"{envs}:Home", "sac", total_timesteps=1500)
    cfg["model"] |= {"learning_starts": 100, "batch_size": 64, "net_arch": [32, 32]}
    run = train(cfg, run_dir=tmp_path / "sac", quiet=True)
    random_return = -30 * 1.5 * 0.9  # about |x| ≈ 1.5 on average for 30 steps when the actions do not help
    assert run.metrics["evaluation"]["mean_return"] > random_return / 4, run.metrics["evaluation"]


def test_same_seed_gives_the_same_returns(tmp_path: Path, envs: Path) -> None:
    cfg = config(f"{envs}:Corridor", "ppo", total_timesteps=1024, eval_every=512)
    cfg["model"] |= {"n_steps": 128, "net_arch": [16]}
    train(cfg, run_dir=tmp_path / "a", quiet=True)
    result = reproduce(tmp_path / "a")
    assert result["match"], result["differences"]
    assert result["compared"] >= 7  # the final evaluation's numbers, returns list included


def test_tuning_prunes_agent_trials_and_keeps_the_best(tmp_path: Path, envs: Path) -> None:
    cfg = config(f"{envs}:Corridor", "ppo", total_timesteps=1024, eval_every=128, eval_episodes=2, final_episodes=5)
    cfg["model"] |= {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "net_arch": [16]}
    space = {"model.learning_rate": {"type": "log_float", "low": 1e-5, "high": 1e-2}}
    cfg["tune"] = {"n_trials": 8, "pruner": "successive_halving", "sampler": "random", "space": space}
    run = tune(cfg, run_dir=tmp_path / "tuned", quiet=True)
    tuning = run.metrics["tuning"]
    assert tuning["n_trials"] == 8 and tuning["states"].get("pruned", 0) >= 1, tuning["states"]
    assert tuning["best_value"] == max(t["value"] for t in tuning["trials"] if t["value"] is not None)
    assert run.config.model.params["learning_rate"] == tuning["best_params"]["model.learning_rate"]
    assert (run.dir / "trials.csv").is_file() and run.metrics["evaluation"]["episodes"] == 5


@pytest.mark.parametrize(
    ("env_id", "model", "message"),
    [
        ("CartPol-v1", "ppo", 'not a registered Gymnasium environment (did you mean "CartPole-v1"?)'),
        ("Pendulum-v1", "dqn", 'model "dqn" cannot act in'),
        ("{envs}:Broken", "ppo", "failed Gymnasium's environment check"),
        ("{envs}:Nope", "ppo", "no gymnasium.Env subclass named Nope"),
        ("missing.py:Env", "ppo", "file missing.py not found"),
        ("CartPole-v1", "ppp", "ppo"),
    ],
)
def test_bad_environments_and_agents_get_one_clear_error(tmp_path: Path, envs: Path, env_id: str, model: str,
                                                          message: str) -> None:  # fmt: skip
    with pytest.raises(UserError) as caught:
        train(config(env_id.format(envs=envs), model), run_dir=tmp_path / "bad", quiet=True)
    assert message in str(caught.value)
    assert not (tmp_path / "bad").exists()


def test_cli_trains_plays_and_records(cli, tmp_path: Path, envs: Path) -> None:
    cfg = tmp_path / "cartpole.yaml"
    cfg.write_text(json.dumps(config("CartPole-v1", "a2c", total_timesteps=500, eval_every=250, final_episodes=3)))
    code, out, err = cli("train", cfg, "--run-dir", tmp_path / "r", "-q")
    assert code == 0, err
    assert "a2c on CartPole-v1: mean return" in out and "over 3 deterministic episodes" in out
    code, out, err = cli("play", tmp_path / "r", "--episodes", "2", "--record", tmp_path / "play.gif")
    assert code == 0, err
    assert "episode 2: return" in out and (tmp_path / "play.gif").read_bytes()[:6] == b"GIF89a"
    assert (tmp_path / "r" / "rollout.png").is_file()  # the report's strip of frames
    code, _, err = cli("play", tmp_path / "r", "--record", tmp_path / "play.gif")
    assert code == 2 and "exists" in err  # never replaced without --force
    code, _, err = cli("play", tmp_path / "r", "--record", tmp_path / "x.mp4")
    assert code == 2 and "write a .gif file" in err
