"""Reinforcement-learning agents by name: Stable-Baselines3's PPO, A2C, DQN, SAC and TD3, saved without pickle.

Each entry is a params class (every field described, unknown keys rejected) and the SB3 algorithm it builds.
A trained agent is saved as its policy's weights (safetensors) plus JSON: the algorithm, its parameters and
the observation and action spaces. Loading rebuilds the policy from that JSON alone, so neither the
environment nor any code from the run folder is needed to load and act.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from trainwell.artifacts import load_tensors
from trainwell.errors import UserError, first_line, unknown
from trainwell.files import atomic_path, write_json
from trainwell.models.registry import model_json, register_loader, validate_params

POLICY = "policy.safetensors"
Activation = Literal["tanh", "relu"]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    net_arch: list[Annotated[int, Field(ge=1)]] = Field([64, 64], description="Units per hidden layer of the "
                                                        "policy and value networks.")  # fmt: skip
    activation: Activation = Field("tanh", description="Nonlinearity of the hidden layers.")
    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor: how much future rewards count.")


class PPOParams(Params):
    n_steps: int = Field(256, ge=2, description="Steps per environment between updates (rollout length).")
    batch_size: int = Field(64, ge=2, description="Minibatch size of each gradient step.")
    n_epochs: int = Field(10, ge=1, description="Passes over each rollout.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE bias/variance trade-off.")
    clip_range: float = Field(0.2, gt=0, description="How far one update may move the policy (PPO clipping).")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus: higher explores more.")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")


class A2CParams(Params):
    learning_rate: float = Field(7e-4, gt=0, description="RMSprop learning rate.")
    n_steps: int = Field(5, ge=1, description="Steps per environment between updates.")
    gae_lambda: float = Field(1.0, ge=0, le=1, description="GAE bias/variance trade-off (1: plain returns).")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus: higher explores more.")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")


class OffPolicyParams(Params):
    activation: Activation = Field("relu", description="Nonlinearity of the hidden layers.")
    buffer_size: int = Field(100_000, ge=1, description="Transitions kept in the replay buffer.")
    learning_starts: int = Field(1_000, ge=0, description="Steps of random play before learning starts.")
    batch_size: int = Field(256, ge=1, description="Transitions per gradient step.")
    train_freq: int = Field(1, ge=1, description="Environment steps between gradient updates.")
    gradient_steps: int = Field(1, ge=-1, description="Gradient steps per update (-1: as many as steps taken).")
    tau: float = Field(0.005, gt=0, le=1, description="Soft update rate of the target networks.")


class DQNParams(OffPolicyParams):
    learning_rate: float = Field(1e-4, gt=0, description="Adam learning rate.")
    batch_size: int = Field(32, ge=1, description="Transitions per gradient step.")
    train_freq: int = Field(4, ge=1, description="Environment steps between gradient updates.")
    tau: float = Field(1.0, gt=0, le=1, description="Target network update rate (1: hard copy).")
    target_update_interval: int = Field(1_000, ge=1, description="Steps between target network updates.")
    exploration_fraction: float = Field(0.1, gt=0, le=1, description="Share of training spent lowering epsilon.")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="Final share of random actions.")


class SACParams(OffPolicyParams):
    ent_coef: Literal["auto"] | float = Field("auto", description="Entropy weight; auto learns it.")


class TD3Params(OffPolicyParams):
    policy_delay: int = Field(2, ge=1, description="Critic updates per actor update.")
    target_policy_noise: float = Field(0.2, ge=0, description="Noise added to target actions (smoothing).")


@dataclass(frozen=True)
class AgentSpec:
    """A registry entry: the SB3 algorithm class (imported on use), its params and the action spaces it handles."""

    name: str
    algorithm: str  # class name in stable_baselines3
    params: type[Params]
    actions: tuple[str, ...]  # gymnasium space class names: Discrete, Box
    description: str


AGENTS: dict[str, AgentSpec] = {s.name: s for s in [
    AgentSpec("ppo", "PPO", PPOParams, ("Discrete", "Box", "MultiDiscrete", "MultiBinary"),
              "Proximal policy optimisation: stable on-policy actor-critic, the first choice."),
    AgentSpec("a2c", "A2C", A2CParams, ("Discrete", "Box", "MultiDiscrete", "MultiBinary"),
              "Advantage actor-critic: synchronous, on-policy, fast per step."),
    AgentSpec("dqn", "DQN", DQNParams, ("Discrete",), "Deep Q-network: off-policy, discrete actions."),
    AgentSpec("sac", "SAC", SACParams, ("Box",), "Soft actor-critic: off-policy, continuous actions, explores by "
              "maximising entropy."),
    AgentSpec("td3", "TD3", TD3Params, ("Box",), "Twin delayed DDPG: off-policy, continuous actions."),
]}  # fmt: skip


def get_agent(name: str) -> AgentSpec:
    if name not in AGENTS:
        raise unknown("reinforcement-learning model", name, AGENTS)
    return AGENTS[name]


def parse_agent_params(name: str, params: dict[str, Any]) -> Params:
    return validate_params(name, get_agent(name).params, params)  # type: ignore[return-value]


def check_action_space(name: str, space: Any, env_id: str) -> None:
    """Refuse an algorithm that cannot act in this environment, naming the ones that can."""
    kind = type(space).__name__
    if kind not in get_agent(name).actions:
        fits = ", ".join(s.name for s in AGENTS.values() if kind in s.actions)
        raise UserError(f'model "{name}" cannot act in {env_id}: its actions are {kind}; use one of: {fits}')


def _policy_kwargs(p: Params) -> dict[str, Any]:
    import torch.nn as nn

    return {"net_arch": list(p.net_arch), "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[p.activation]}


def build_agent(name: str, params: dict[str, Any], env: Any, *, seed: int) -> Any:
    """An SB3 algorithm on the (vectorised) `env`, seeded, on the CPU, with trainwell's parameters."""
    import stable_baselines3

    spec = get_agent(name)
    p = parse_agent_params(name, params)
    check_action_space(name, env.action_space, str(getattr(env, "spec_id", "this environment")))
    kwargs = p.model_dump(exclude={"net_arch", "activation"})
    cls = getattr(stable_baselines3, spec.algorithm)
    return cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, policy_kwargs=_policy_kwargs(p), **kwargs)


# ---------------------------------------------------------------- spaces as JSON


def space_to_json(space: Any) -> dict[str, Any]:
    """A gymnasium space as plain JSON (Box, Discrete, MultiDiscrete, MultiBinary)."""
    kind = type(space).__name__
    if kind == "Box":
        return {"type": kind, "low": space.low.tolist(), "high": space.high.tolist(), "dtype": str(space.dtype)}
    if kind == "Discrete":
        return {"type": kind, "n": int(space.n), "start": int(space.start)}
    if kind in ("MultiDiscrete", "MultiBinary"):
        return {"type": kind, "n": np.asarray(space.nvec if kind == "MultiDiscrete" else space.n).tolist()}
    raise UserError(f"observation or action space {kind} is not supported; use Box, Discrete, MultiDiscrete or "
                    "MultiBinary (flatten Dict/Tuple spaces with gymnasium.wrappers.FlattenObservation)")  # fmt: skip


def space_from_json(data: dict[str, Any]) -> Any:
    from gymnasium import spaces

    kind = data["type"]
    if kind == "Box":
        return spaces.Box(np.asarray(data["low"], dtype=data["dtype"]), np.asarray(data["high"], dtype=data["dtype"]),
                          dtype=data["dtype"])  # fmt: skip
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(data["n"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    raise ValueError(f"unknown space type {kind!r}")


# ---------------------------------------------------------------- the trained agent


class Agent:
    """A trained policy that acts: `act(observations)` gives actions; saved as safetensors + JSON."""

    family = "rl"

    def __init__(self, name: str, params: dict[str, Any], policy: Any, seed: int = 0) -> None:
        self.name, self.params, self.policy, self.seed = name, params, policy, seed
        self.history: list[dict[str, float]] = []

    @classmethod
    def from_algorithm(cls, name: str, params: dict[str, Any], algorithm: Any, seed: int) -> Agent:
        return cls(name, parse_agent_params(name, params).model_dump(mode="json"), algorithm.policy, seed)

    def act(self, observation: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations (or one observation)."""
        action, _ = self.policy.predict(observation, deterministic=deterministic)
        return action

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.act(X)

    def predict_proba(self, X: np.ndarray) -> None:
        return None

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.policy.state_dict().items()}
        with atomic_path(directory / POLICY) as tmp:
            save_file(state, str(tmp))
        write_json(directory / "model.json", {
            "family": self.family, "name": self.name, "params": self.params, "seed": self.seed,
            "observation_space": space_to_json(self.policy.observation_space),
            "action_space": space_to_json(self.policy.action_space),
        })  # fmt: skip

    @classmethod
    def load(cls, directory: Path) -> Agent:
        """Rebuild the policy from model.json and load its weights; a damaged file is a UserError naming it."""
        import stable_baselines3

        directory = Path(directory)
        with model_json(directory) as meta:
            name, params = meta["name"], meta["params"]
            observation, action = space_from_json(meta["observation_space"]), space_from_json(meta["action_space"])
        spec = get_agent(name)
        p = parse_agent_params(name, params)
        policy_cls = getattr(stable_baselines3, spec.algorithm).policy_aliases["MlpPolicy"]
        policy = policy_cls(observation, action, lambda _: 0.0, **_policy_kwargs(p))
        tensors = load_tensors(directory / POLICY)
        try:
            policy.load_state_dict(tensors)
        except RuntimeError as exc:
            raise UserError(f"{directory / POLICY} does not fit a {name} policy ({first_line(exc)}); "
                            "the run was altered, train it again") from None  # fmt: skip
        policy.set_training_mode(False)
        return cls(name, p.model_dump(mode="json"), policy, int(meta.get("seed", 0)))


register_loader("rl", Agent.load)
