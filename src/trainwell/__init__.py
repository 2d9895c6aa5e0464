"""trainwell: train AI models end to end, well.

    import trainwell
    run = trainwell.train("examples/iris_mlp.yaml")        # or train(data=df, **{"data.target": "y"})
    run.metrics["test"]["accuracy"]
    trainwell.load(run.dir).predict(new_rows)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from trainwell.run import Run


def train(config: Any = None, **kwargs: Any) -> Run:
    """Train, validate, test once and save; see `trainwell.experiment.train`."""
    from trainwell.experiment import train as _train

    return _train(config, **kwargs)


def load(run_dir: str | Path) -> Run:
    """Load a saved run for predict/evaluate."""
    from trainwell.run import Run

    return Run.load(run_dir)


__all__ = ["train", "load", "__version__"]
