"""Realistic run directories made here with scikit-learn, in the layout `trainwell train` writes.

iris: a small MLP trained epoch by epoch (history.csv), tuned and compared (tuning, leaderboard),
with permutation importances. diabetes: gradient boosting, a learning curve over training sizes.
breast cancer: a plain logistic regression with none of the optional parts.
"""

from __future__ import annotations

import json
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from trainwell.config import dump_config, load_config
from trainwell.evaluate.diagnosis import diagnose, learning_curve
from trainwell.evaluate.metrics import compute_metrics


def _split(X: np.ndarray, y: np.ndarray, stratify: bool) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """70/15/15 split keeping the original row numbers; features standardised on train only."""
    rows = np.arange(len(y))
    strat = y if stratify else None
    tr, rest = train_test_split(rows, test_size=0.3, random_state=0, stratify=strat)
    va, te = train_test_split(rest, test_size=0.5, random_state=0, stratify=strat[rest] if stratify else None)
    scaler = StandardScaler().fit(X[tr])
    return {name: (scaler.transform(X[r]), y[r], r) for name, r in (("train", tr), ("validation", va), ("test", te))}


def _write_run(run_dir: Path, *, name: str, task: str, model: str, target: str, columns: list[str],
               classes: list[Any], parts: dict, metrics: dict[str, Any], outputs: dict[str, tuple],
               history: list[dict] | None = None) -> Path:  # fmt: skip
    """Write config.yaml, run.json, metrics.json, predictions.csv and history.csv like the spine does."""
    run_dir.mkdir(parents=True)
    cfg = load_config({"name": name, "data": {"source": f"builtin:{name}"}, "model": {"name": model}})
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    n = sum(len(p[1]) for p in parts.values())
    info = {
        "status": "complete", "name": name, "task": task, "target": target, "model": model, "classes": classes,
        "schema": {c: "numeric" for c in columns}, "input_columns": columns, "features": list(columns),
        "data": {"source": f"builtin:{name}", "fingerprint": "ab" * 32, "rows": n, "columns": len(columns) + 1,
                 "duplicates_removed": 0, "missing_target_removed": 0},
        "splits": {s: {"rows": len(p[1]), "fingerprint": f"{abs(hash(s)) % 16**16:016x}"} for s, p in parts.items()},
        "seed": 0, "versions": {"python": "3.11", "scikit-learn": "1.9"}, "started": "2026-11-23T10:00:00",
        "finished": "2026-11-23T10:00:02", "duration_s": 2.0,
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    frames = []
    for split in ("validation", "test"):
        pred, proba = outputs[split]
        y, rows = parts[split][1], parts[split][2]
        if classes:
            y, pred = np.array(classes, dtype=object)[y], np.array(classes, dtype=object)[pred]
        frame = pd.DataFrame({"split": split, "row": rows, "y_true": y, "y_pred": pred})
        if proba is not None:
            frame = pd.concat([frame, pd.DataFrame(proba, columns=[f"proba_{c}" for c in classes])], axis=1)
        frames.append(frame)
    pd.concat(frames).to_csv(run_dir / "predictions.csv", index=False)
    if history:
        pd.DataFrame(history).to_csv(run_dir / "history.csv", index=False)
    return run_dir


def _importance(est: Any, X: np.ndarray, y: np.ndarray, columns: list[str]) -> list[dict[str, Any]]:
    r = permutation_importance(est, X, y, n_repeats=3, random_state=0)
    return [{"feature": c, "importance": float(m), "std": float(s)}
            for c, m, s in zip(columns, r.importances_mean, r.importances_std, strict=True)]  # fmt: skip


def _fake_tuning() -> dict[str, Any]:
    """A tuning record in the shape the tuner stores: 16 trials, some pruned, with importances."""
    rng = np.random.default_rng(0)
    trials = []
    for i in range(16):
        lr, hidden = float(10 ** rng.uniform(-3, -1)), int(rng.choice([8, 16, 32]))
        pruned = i % 5 == 3
        value = float(0.7 + 0.25 * (1 - abs(np.log10(lr) + 2) / 2) + rng.normal(0, 0.02))
        trials.append({"number": i, "value": value, "state": "PRUNED" if pruned else "COMPLETE",
                       "params": {"train.lr": lr, "model.hidden": hidden}, "duration_s": 0.4})  # fmt: skip
    best = max((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
    return {"metric": "accuracy", "direction": "maximize", "n_trials": 16, "best_value": best["value"],
            "best_params": best["params"], "best_trial": best["number"], "trials": trials,
            "param_importances": {"train.lr": 0.81, "model.hidden": 0.19}}  # fmt: skip


def make_classifier_run(run_dir: Path) -> Path:
    """iris with a small MLP trained one epoch at a time, so history.csv holds real curves."""
    data = load_iris()
    classes = [str(c) for c in data.target_names]
    parts = _split(data.data, data.target, stratify=True)
    (Xt, yt, _), (Xv, yv, _) = parts["train"], parts["validation"]
    mlp = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02, random_state=0)
    history = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(1, 41):
            mlp.partial_fit(Xt, yt, classes=[0, 1, 2])
            history.append({"epoch": epoch, "train_loss": log_loss(yt, mlp.predict_proba(Xt), labels=[0, 1, 2]),
                            "val_loss": log_loss(yv, mlp.predict_proba(Xv), labels=[0, 1, 2]),
                            "train_accuracy": mlp.score(Xt, yt), "val_accuracy": mlp.score(Xv, yv),
                            "lr": 0.02, "seconds": 0.01})  # fmt: skip
    outputs = {s: (mlp.predict(p[0]), mlp.predict_proba(p[0])) for s, p in parts.items()}
    metrics: dict[str, Any] = {s: compute_metrics("classification", parts[s][1], *outputs[s], n_classes=3)
                               for s in parts}  # fmt: skip
    metrics["diagnosis"] = diagnose(history, metrics["train"], metrics["validation"], task="classification",
                                    epochs_budget=40)  # fmt: skip
    columns = [c.replace(" (cm)", "") for c in data.feature_names]
    metrics["feature_importance"] = _importance(mlp, Xv, yv, columns)
    metrics["tuning"] = _fake_tuning()
    metrics["leaderboard"] = [
        {"model": "mlp", "accuracy": metrics["validation"]["accuracy"], "f1_macro": 0.95, "seconds": 0.4},
        {"model": "logistic_regression", "accuracy": 0.91, "f1_macro": 0.9, "seconds": 0.1},
        {"model": "random_forest", "accuracy": 0.89, "f1_macro": 0.88, "seconds": 0.9},
    ]
    return _write_run(run_dir, name="iris", task="classification", model="mlp", target="species", columns=columns,
                      classes=classes, parts=parts, metrics=metrics, outputs=outputs, history=history)  # fmt: skip


def make_regressor_run(run_dir: Path) -> Path:
    """diabetes with gradient boosting: no history, a learning curve over training sizes instead."""
    data = load_diabetes()
    parts = _split(data.data, data.target, stratify=False)
    est = GradientBoostingRegressor(n_estimators=60, max_depth=2, random_state=0).fit(*parts["train"][:2])
    outputs = {s: (est.predict(p[0]), None) for s, p in parts.items()}
    metrics: dict[str, Any] = {s: compute_metrics("regression", parts[s][1], outputs[s][0]) for s in parts}
    lc = learning_curve(GradientBoostingRegressor(n_estimators=60, max_depth=2, random_state=0),
                        parts["train"][0], parts["train"][1], task="regression", cv=3, sizes=4, seed=0)  # fmt: skip
    metrics["learning_curve"] = lc
    metrics["diagnosis"] = diagnose(None, metrics["train"], metrics["validation"], task="regression",
                                    learning_curve=lc)  # fmt: skip
    metrics["feature_importance"] = _importance(est, *parts["validation"][:2], list(data.feature_names))
    return _write_run(run_dir, name="diabetes", task="regression", model="gradient_boosting", target="progression",
                      columns=list(data.feature_names), classes=[], parts=parts, metrics=metrics, outputs=outputs)


def make_binary_run(run_dir: Path) -> Path:
    """breast cancer with logistic regression and nothing optional: no diagnosis, importance, tuning."""
    data = load_breast_cancer()
    parts = _split(data.data, data.target, stratify=True)
    est = LogisticRegression(max_iter=500).fit(*parts["train"][:2])
    outputs = {s: (est.predict(p[0]), est.predict_proba(p[0])) for s, p in parts.items()}
    metrics = {s: compute_metrics("classification", parts[s][1], *outputs[s], n_classes=2) for s in parts}
    return _write_run(run_dir, name="breast_cancer", task="classification", model="logistic_regression",
                      target="diagnosis", columns=list(data.feature_names), classes=["malignant", "benign"],
                      parts=parts, metrics=metrics, outputs=outputs)  # fmt: skip


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_classifier_run(tmp_path_factory.mktemp("runs") / "iris")


@pytest.fixture(scope="session")
def regressor_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_regressor_run(tmp_path_factory.mktemp("runs") / "diabetes")


@pytest.fixture(scope="session")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_binary_run(tmp_path_factory.mktemp("runs") / "breast_cancer")


class _Sections(HTMLParser):
    """Per <section id=...>: how many <svg>/<img> it holds and its visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict[str, Any]] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.current = dict(attrs).get("id") or "?"
            self.found[self.current] = {"svg": 0, "img": 0, "text": ""}
        elif self.current and tag in ("svg", "img"):
            self.found[self.current][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current:
            self.found[self.current]["text"] += data


def parse_sections(page: str) -> dict[str, dict[str, Any]]:
    parser = _Sections()
    parser.feed(page)
    return parser.found


@pytest.fixture(name="parse_sections")
def parse_sections_fixture() -> Any:
    """{section id: {"svg": n, "img": n, "text": str}} of a page (the source or Chromium's DOM dump)."""
    return parse_sections
