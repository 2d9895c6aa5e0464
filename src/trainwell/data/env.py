"""The environment a reinforcement-learning agent learns from: a registered Gymnasium id, or the user's own class.

A user's environment is given as `path/to/file.py:ClassName`; it is imported from that path (the user's code,
named in their config, never from a run folder) and checked with Gymnasium's environment checker, so a broken
environment fails at once with the check that failed rather than deep inside training.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainwell.config import EnvConfig
from trainwell.errors import UserError, did_you_mean, first_line


def env_factory(cfg: EnvConfig, *, render_mode: str | None = None) -> Callable[[], Any]:
    """A function that builds one fresh environment, checked once up front."""
    import gymnasium as gym

    if ":" in cfg.id and cfg.id.split(":", 1)[0].endswith(".py"):
        cls = _custom_class(cfg.id)

        def make() -> Any:
            env = cls(**cfg.kwargs, **({"render_mode": render_mode} if render_mode else {}))
            return gym.wrappers.TimeLimit(env, cfg.max_episode_steps) if cfg.max_episode_steps else env

        _check(make(), cfg.id)
        return make
    if cfg.id not in gym.registry:
        raise UserError(f'env.id "{cfg.id}" is not a registered Gymnasium environment'
                        f"{did_you_mean(cfg.id, list(gym.registry))}; or give path/to/file.py:ClassName")  # fmt: skip
    extra = {"max_episode_steps": cfg.max_episode_steps} if cfg.max_episode_steps else {}

    def make_registered() -> Any:
        try:
            return gym.make(cfg.id, render_mode=render_mode, **cfg.kwargs, **extra)
        except (TypeError, ValueError, gym.error.Error) as exc:
            raise UserError(f"env {cfg.id} could not be made with env.kwargs {cfg.kwargs}: {first_line(exc)}") from None

    make_registered().close()  # fail on bad kwargs before training starts
    return make_registered


def make_vec_env(cfg: EnvConfig, *, seed: int, n_envs: int | None = None) -> Any:
    """`n_envs` seeded copies stepped together (Stable-Baselines3's DummyVecEnv, each wrapped in a Monitor)."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env

    return sb3_vec_env(env_factory(cfg), n_envs=n_envs or cfg.n_envs, seed=seed)


def _custom_class(spec: str) -> type:
    """Import `ClassName` from `path/to/file.py`; a missing file or class is a UserError naming it."""
    import gymnasium as gym

    path_text, _, name = spec.rpartition(":")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"env.id: file {path} not found; give path/to/file.py:ClassName")
    module_name = f"trainwell_env_{abs(hash(str(path.resolve())))}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    if loader is None or loader.loader is None:
        raise UserError(f"env.id: {path} is not a Python file that can be imported")
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file failed to import: say so in one line
        raise UserError(f"env.id: importing {path} failed ({type(exc).__name__}: {first_line(exc)})") from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type) or not issubclass(cls, gym.Env):
        found = [n for n, v in vars(module).items()
                 if isinstance(v, type) and issubclass(v, gym.Env) and v is not gym.Env]  # fmt: skip
        raise UserError(f"env.id: {path} has no gymnasium.Env subclass named {name}"
                        f"{did_you_mean(name, found)}; environments there: {', '.join(found) or 'none'}")  # fmt: skip
    return cls


def _check(env: Any, spec: str) -> None:
    """Gymnasium's environment checker; its first failed check becomes the error line."""
    from gymnasium.utils.env_checker import check_env

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env.unwrapped, skip_render_check=True)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's environment is the message to show
        raise UserError(f"env {spec} failed Gymnasium's environment check: {type(exc).__name__}: "
                        f"{first_line(exc)}") from None  # fmt: skip
    finally:
        env.close()
