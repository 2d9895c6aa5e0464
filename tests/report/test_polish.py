"""Reports speak the user's language: column names as written, partial dependence in the column's own units,
and a boosting model's per-round curve in "Learning curves"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, early_stopping
from sklearn.linear_model import LogisticRegression

from trainwell.evaluate.analysis import boosting_curve
from trainwell.models.classical import SklearnModel
from trainwell.report import write_report


def _strict_json(path: Path) -> Any:
    """metrics.json as a strict parser reads it: NaN or Infinity is an error, not a number."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{path.name} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def people(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Age and city decide the label; the signup date carries nothing."""
    rng = np.random.default_rng(seed)
    age, city = rng.uniform(20, 70, n), rng.choice(["lyon", "nice", "paris"], n)
    score = (age - 45) / 10 + np.where(city == "paris", 1.5, 0.0) + rng.normal(0, 0.7, n)
    signup = pd.date_range("2021-01-01", periods=n, freq="23h").strftime("%Y-%m-%d")
    return pd.DataFrame({"age": age, "city": city, "signup_date": signup, "bought": (score > 0).astype(int)})


@pytest.fixture(scope="module")
def lightgbm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    from trainwell.experiment import train

    frame = people()
    run = train(data=frame, run_dir=tmp_path_factory.mktemp("polish") / "run", quiet=True,
                **{"data.target": "bought", "model.name": "lightgbm", "model.n_estimators": 80,
                   "model.early_stopping_rounds": 10})  # fmt: skip
    return run.dir, frame


def test_importance_and_partial_dependence_use_the_columns_names_and_units(lightgbm_run: tuple,
                                                                          parse_sections: Any) -> None:  # fmt: skip
    run_dir, frame = lightgbm_run
    metrics = _strict_json(run_dir / "metrics.json")
    ranked = [r["feature"] for r in metrics["feature_importance"]["features"]]
    assert {"age", "city=paris", "signup_date.month"} <= set(ranked) and not any("__" in n for n in ranked)
    curves = {c["feature"]: c for c in metrics["partial_dependence"]}
    age = curves["age"]
    assert age["units"] == "original" and age["column"] == "age"
    assert frame["age"].min() <= min(age["grid"]) and max(age["grid"]) <= frame["age"].max()
    assert max(age["grid"]) - min(age["grid"]) > 20  # years, not standard deviations (about 3.5 wide)
    assert age["average"][0][-1] > age["average"][0][0]  # older buys more, as planted
    city = curves["city"]
    assert city["kind"] == "categorical" and city["grid"] == ["lyon", "nice", "paris"]
    assert city["average"][0][2] == max(city["average"][0])  # paris buys most, as planted
    page = (run_dir / "report.html").read_text()
    assert "Partial dependence: age" in page and "Partial dependence: city" in page
    found = parse_sections(page)
    assert "city=paris" in found["feature-importance"]["text"]
    assert not any("__" in found[s]["text"] for s in ("feature-importance", "partial-dependence"))


def test_a_boosting_run_draws_its_rounds_not_the_split_bars(lightgbm_run: tuple, parse_sections: Any) -> None:
    run_dir, _ = lightgbm_run
    curve = _strict_json(run_dir / "metrics.json")["boosting_curve"]
    assert curve["metric"] == "binary_logloss" and curve["stopped_early"]
    assert curve["rounds"] == list(range(1, len(curve["validation"]) + 1))
    assert curve["best_round"] == int(np.argmin(curve["validation"])) + 1  # early stopping kept the lowest loss
    found = parse_sections((run_dir / "report.html").read_text())["learning-curves"]
    assert found["svg"] == 1 and f"early stopping kept the first {curve['best_round']} rounds" in found["text"]
    page = (run_dir / "report.html").read_text()
    assert "binary_logloss per boosting round" in page and "by split" not in page


def test_the_training_rounds_are_recorded_when_the_model_watched_them() -> None:
    """LightGBM given its training rows as "training" (which early stopping ignores) records both curves."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(0, 1.0, 300) > 0).astype(int)
    estimator = LGBMClassifier(n_estimators=60, verbose=-1, n_jobs=1)
    estimator.fit(X[:200], y[:200], eval_X=(X[:200], X[200:]), eval_y=(y[:200], y[200:]),
                  eval_names=["training", "validation"], callbacks=[early_stopping(10, verbose=False)])  # fmt: skip
    curve = boosting_curve(SklearnModel("lightgbm", {}, estimator, "classification"))
    assert curve is not None and len(curve["train"]) == len(curve["validation"]) == len(curve["rounds"])
    assert curve["train"][-1] < curve["validation"][-1] and curve["best_round"] == estimator.best_iteration_
    logistic = SklearnModel("logistic_regression", {}, LogisticRegression().fit(X, y), "classification")
    assert boosting_curve(logistic) is None  # no boosting rounds declared: nothing to draw


def test_report_draws_train_and_validation_rounds_and_gaps(binary_run: Path, tmp_path: Path,
                                                           parse_sections: Any) -> None:  # fmt: skip
    """A round whose loss was not finite is saved as null and drawn as a gap, with the kept round marked."""
    run = Path(shutil.copytree(binary_run, tmp_path / "run"))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["boosting_curve"] = {"metric": "l2", "rounds": [1, 2, 3, 4], "train": [4.0, 2.0, 1.0, 0.5],
                                 "validation": [4.5, 3.0, None, 3.2], "best_round": 4,
                                 "stopped_early": False}  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(metrics))
    page = write_report(run).read_text()
    found = parse_sections(page)["learning-curves"]
    assert found["svg"] == 1 and "training and validation rows; the model keeps all 4 rounds" in found["text"]
    assert "l2 became NaN/inf" in page and "last round (4)" in page and "by split" not in page
