"""ONNX export: classical and neural models give the run's own answers under onnxruntime (within the stated
tolerance), a model without a converter gets one clear error, and nothing is written when parity fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, make_regression

from trainwell.errors import UserError
from trainwell.experiment import train


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    return data.frame.rename(columns={"target": "malignant"})


@pytest.mark.parametrize(("model", "params"), [("logistic_regression", {}), ("random_forest", {"n_estimators": 20}),
                                                ("lightgbm", {"n_estimators": 30}), ("mlp", {})])  # fmt: skip
def test_classifiers_export_with_parity(tmp_path: Path, cancer: pd.DataFrame, model: str, params: dict) -> None:
    run = train(data=cancer, run_dir=tmp_path / "run", quiet=True, model={"name": model, **params},
                **{"data.target": "malignant", "train.epochs": 5})  # fmt: skip
    from trainwell.serve.onnx import export_onnx

    parity = export_onnx(run, tmp_path / "m.onnx")
    assert parity["ok"] and parity["max_abs_probability_difference"] <= 1e-5 and parity["label_agreement"] == 1.0
    rows = cancer.drop(columns="malignant").sample(50, random_state=1)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"features": run.features(rows)})
    np.testing.assert_allclose(proba, run.predict_proba(rows).to_numpy(), atol=1e-5)
    assert (tmp_path / "m.onnx.json").is_file()


@pytest.mark.parametrize("model", ["linear_regression", "mlp"])
def test_regressors_export_in_the_targets_units(tmp_path: Path, model: str) -> None:
    X, y = make_regression(300, n_features=5, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=list("abcde")).assign(y=y * 100 + 1000)  # far from 0 and 1: scaling shows
    run = train(data=frame, run_dir=tmp_path / "run", quiet=True, model=model, **{"data.target": "y",
                                                                                  "train.epochs": 10})  # fmt: skip
    from trainwell.serve.onnx import export_onnx

    export_onnx(run, tmp_path / "r.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    (values,) = session.run(None, {"features": run.features(frame.head(40))})
    np.testing.assert_allclose(np.ravel(values), run.predict(frame.head(40)), rtol=1e-4, atol=1e-2)


def test_unsupported_models_and_failed_parity_write_nothing(tmp_path: Path, cli, monkeypatch) -> None:
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 3)), columns=list("abc"))
    kmeans = train(data=frame, run_dir=tmp_path / "k", quiet=True, **{"data.task": "clustering", "model.n_clusters": 2})
    code, _, err = cli("export", kmeans.dir, "-o", tmp_path / "k.onnx")
    assert code == 2 and "covers classifiers and regressors" in err and not (tmp_path / "k.onnx").exists()

    from trainwell.serve import onnx

    cancer = load_breast_cancer(as_frame=True).frame
    run = train(data=cancer, run_dir=tmp_path / "lr", quiet=True, model="logistic_regression",
                **{"data.target": "target"})  # fmt: skip
    monkeypatch.setattr(onnx, "PROBA_ATOL", -1.0)  # a tolerance nothing meets: the check must refuse
    with pytest.raises(UserError, match="disagrees with the saved model"):
        onnx.export_onnx(run, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists() and not (tmp_path / "bad.onnx.json").exists()
    code, out, err = cli("export", run.dir, "-o", tmp_path / "good.onnx")
    assert code == 2 and "disagrees" in err  # still patched here
    monkeypatch.undo()
    code, out, err = cli("export", run.dir, "-o", tmp_path / "good.onnx")
    assert code == 0 and "matches the run on 100 rows" in out, err
