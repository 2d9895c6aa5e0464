"""HPO efficiency: Optuna TPE with pruning against 64 random-search trials, same search space and data.

For each seed, random search runs 64 trials without pruning; its epoch budget is the epochs those trials
trained and its score the best validation accuracy among them. Then `trainwell tune`'s search (TPE and a
pruner) runs on the same space, data and split until its best validation accuracy reaches random
search's; the ratio of epochs it trained by then to random search's budget is reported, median over
the seeds (target: at most 1/4). A seed where tuning does not reach the bar within 64 trials counts with
all it spent and is flagged. Both arms are measured in the same run, on the same machine.
`--pruner none` measures TPE alone, i.e. what pruning adds.

    .venv/bin/python benchmarks/hpo_efficiency.py                  # 5 seeds, Hyperband (~3-4 min on 2 cores)
    .venv/bin/python benchmarks/hpo_efficiency.py --pruner median --seeds 10
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from trainwell.config import load_config
from trainwell.tune.search import FINISHED, Search, make_pruner, make_sampler, prepare_search, run_trials

COMPLETE = TrialState.COMPLETE
EPOCHS = 20
TRIALS = 64
SPACE: dict[str, Any] = {
    "train.lr": {"type": "log_float", "low": 1e-5, "high": 1.0},
    "train.batch_size": {"type": "categorical", "choices": [32, 64, 128, 256]},
    "model.hidden_sizes": {"type": "categorical", "choices": [[16], [64], [128, 64], [256, 128]]},
    "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


@dataclass
class Arm:
    """One search's outcome: its best validation score and the epochs it trained to get there."""

    best: float
    epochs: int
    trials: int
    seconds: float
    reached: bool


def config(seed: int, sampler: str, pruner: str) -> dict[str, Any]:
    """An MLP on the 8x8 digits (1,257 train / 270 validation rows), a fixed 20-epoch budget per trial."""
    return {
        "name": "hpo_efficiency",
        "seed": seed,
        "data": {"source": "builtin:digits"},
        "model": {"name": "mlp"},
        "train": {"epochs": EPOCHS, "early_stopping": False, "device": "cpu"},
        "tune": {"space": SPACE, "n_trials": TRIALS, "sampler": sampler, "pruner": pruner, "metric": "accuracy"},
    }


def search_arm(seed: int, sampler: str, pruner: str, target: float | None = None) -> Arm:
    """Run one in-memory study; with a `target`, stop at the first trial whose score reaches it.

    Data, split and initial weights follow `seed` in both arms; the samplers draw from different seeds
    (TPE's random start-up trials would otherwise repeat random search's first trials).
    """
    search: Search = prepare_search(load_config(config(seed, sampler, pruner)))
    sampler_seed = seed if sampler == "random" else 10_000 + seed
    # a fixed study name: Hyperband assigns trials to brackets by hashing it with the trial number
    study = optuna.create_study(
        study_name=f"hpo-{sampler}-{seed}", direction="maximize",
        sampler=make_sampler(sampler, sampler_seed), pruner=make_pruner(pruner, EPOCHS),
    )  # fmt: skip

    def stop_at_target(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if target is not None and trial.state == COMPLETE and trial.value >= target:  # type: ignore[operator]
            st.stop()

    started = time.perf_counter()
    run_trials(study, search, callbacks=[stop_at_target])
    seconds = time.perf_counter() - started
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    epochs = sum(t.user_attrs.get("epochs") or 0 for t in study.trials)
    return Arm(study.best_value, epochs, len(trials), seconds, target is None or study.best_value >= target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pruner", default="hyperband", choices=["median", "successive_halving", "hyperband", "none"])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(1)  # one core per trial: the machine is shared and the nets are tiny
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"optuna {optuna.__version__}")  # fmt: skip
    print(f"search: {len(SPACE)} dimensions, {EPOCHS} epochs per trial, validation accuracy; "
          f"random {TRIALS} trials vs tpe + {args.pruner}")
    print("seed  random best  random epochs  tpe trials  tpe epochs  fraction  random s  tpe s")
    fractions = []
    for seed in range(args.seeds):
        base = search_arm(seed, "random", "none")
        tuned = search_arm(seed, "tpe", args.pruner, target=base.best)
        fraction = tuned.epochs / base.epochs
        fractions.append(fraction)
        reached = "" if tuned.reached else f"  (not reached: {tuned.best:.4f})"
        print(f"{seed:>4}  {base.best:11.4f}  {base.epochs:13d}  {tuned.trials:10d}  {tuned.epochs:10d}  "
              f"{fraction:8.3f}  {base.seconds:8.1f}  {tuned.seconds:5.1f}{reached}", flush=True)  # fmt: skip
    print(f"median fraction of the epoch budget: {statistics.median(fractions):.3f} (target <= 0.25)")


if __name__ == "__main__":
    main()
