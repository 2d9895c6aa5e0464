"""One supervised experiment, top to bottom: load → prepare → split → fit → validate → test once → save.

Reading `train` from top to bottom is reading the process the seeds describe; each step is one call
into the module that owns it (pipeline.py holds the stages that `tune` and `compare` share).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from trainwell.config import ExperimentConfig, dump_config, load_config
from trainwell.data.prepared import Prepared
from trainwell.errors import UserError
from trainwell.files import write_json, write_text
from trainwell.pipeline import evaluate_splits, fit_candidate, load_and_split, resolve
from trainwell.run import Run, save_run, staged
from trainwell.track.rundir import Stage, claim, default_run_dir
from trainwell.training.checkpoint import Checkpointing
from trainwell.tune.cv import cv_section


def train(
    config: str | Path | dict[str, Any] | ExperimentConfig | None = None,
    *,
    data: pd.DataFrame | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    quiet: bool = False,
    resume: str | Path | None = None,
    **overrides: Any,
) -> Run:
    """Train, validate, test once and save a run; returns the loaded Run.

    `overrides` are dotted keys (`**{"train.lr": 0.1}`), whole sections (`train={"lr": 0.1}`) or
    `model="mlp"`; `data` is either a DataFrame used instead of `data.source`, or a `data` section override.
    `resume` is the run folder of an interrupted run: its config and checkpoint are picked up where it stopped
    (pass the same DataFrame again if it was trained on one).
    """
    if resume is not None:
        if config is not None or overrides or run_dir is not None:
            raise UserError("--resume continues a run with the config it started with; give no config, "
                            "--run-dir or overrides with it")  # fmt: skip
        stage = claim(resume, resume=True)
        cfg, frame = _resumed_config(stage), data if isinstance(data, pd.DataFrame) else None
        if cfg.env is not None:
            stage.abandon()
            raise UserError("--resume continues supervised runs from their checkpoint; train the agent again")
    else:
        cfg, frame = resolve(config, data, overrides)
        if cfg.env is not None:
            return _train_agent(cfg, run_dir, quiet=quiet)
        stage = claim(run_dir or default_run_dir(cfg.name))
        write_text(stage.path / "config.yaml", dump_config(cfg))  # what --resume starts from
    with staged(stage):
        started = time.time()
        ds, prep, splits = load_and_split(cfg, frame)
        _check_same_data(stage, prep)
        checkpoints = Checkpointing(stage.checkpoints, resume=stage.resumed)
        fitted = fit_candidate(cfg, ds, prep, splits.train, splits.validation, quiet=quiet, checkpoints=checkpoints)
        # The test split is evaluated here, once, after training and model selection.
        metrics, outputs = evaluate_splits(fitted, prep, splits)
        metrics |= cv_section(cfg, ds, prep, splits, quiet=quiet)
        return save_run(cfg, ds, prep, splits, fitted, metrics, outputs, stage=stage, started=started)


def _train_agent(cfg: ExperimentConfig, run_dir: str | Path | None, *, quiet: bool) -> Run:
    """Reinforcement learning (`env` instead of `data`): the agent is trained and saved as a run."""
    from trainwell.reinforcement import check_config, train_agent

    check_config(cfg)
    stage = claim(run_dir or default_run_dir(cfg.name))
    with staged(stage):
        return train_agent(cfg, stage, quiet=quiet, started=time.time())


def _resumed_config(stage: Stage) -> ExperimentConfig:
    path = stage.path / "config.yaml"
    if not path.is_file():
        stage.abandon()
        raise UserError(f"{stage.path} holds no config.yaml: the run stopped before it started; start it again")
    return load_config(path)


def _check_same_data(stage: Stage, prep: Prepared) -> None:
    """Record the data's fingerprint at the start; a resumed run must see the very same data."""
    path = stage.path / "data.json"
    fingerprint = prep.info["fingerprint"]
    if stage.resumed and path.is_file():
        before = json.loads(path.read_text()).get("fingerprint")
        if before != fingerprint:
            raise UserError(f"the data of {stage.final} changed since the run started (fingerprint "
                            f"{str(before)[:12]} → {fingerprint[:12]}); resuming needs the same data")  # fmt: skip
    else:
        write_json(path, {"fingerprint": fingerprint})


def reproduce(run_dir: str | Path, *, quiet: bool = True) -> dict[str, Any]:
    """Train the run's resolved config again (in a temporary folder) and compare every metric exactly.

    Returns {"match", "data_match", "compared", "differences": [{"metric", "original", "again"}]}.
    """
    original = Run.load(run_dir)
    if not original.config.data.source and original.config.env is None:
        raise UserError(f"{run_dir} was trained on an in-memory DataFrame (no data.source); "
                        "reproduce needs a file or builtin source")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="trainwell-reproduce-") as tmp:
        again = train(original.dir / "config.yaml", run_dir=Path(tmp) / "run", quiet=quiet)
        again_fingerprint = again.info.get("data", {}).get("fingerprint")
        again_metrics = again.metrics
    differences, compared = [], 0
    for split in ("train", "validation", "test", "evaluation"):  # evaluation: an agent's final returns
        before, after = original.metrics.get(split, {}), again_metrics.get(split, {})
        for name in sorted(set(before) | set(after)):
            compared += 1
            if before.get(name) != after.get(name):
                differences.append({"metric": f"{split}.{name}", "original": before.get(name),
                                    "again": after.get(name)})  # fmt: skip
    data_match = again_fingerprint == original.info.get("data", {}).get("fingerprint")
    return {"match": not differences and data_match, "data_match": data_match, "compared": compared,
            "differences": differences}  # fmt: skip
