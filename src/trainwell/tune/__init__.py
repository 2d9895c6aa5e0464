"""Hyperparameter search (Optuna), cross-validation and ensembles.

    from trainwell.tune import tune
    run = tune("config.yaml", **{"tune.n_trials": 30})  # the config declares tune.space
    run.metrics["tuning"]["best_params"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainwell.run import Run


def tune(config: Any = None, **kwargs: Any) -> Run:
    """Search `tune.space`, retrain the best configuration, test it once, save; see `trainwell.tune.search.tune`."""
    from trainwell.tune.search import tune as _tune  # Optuna loads only when tuning

    return _tune(config, **kwargs)


__all__ = ["tune"]
