"""ONNX export, for serving a model outside Python: the model on prepared features, checked against the run.

Classical models convert with skl2onnx (LightGBM through onnxmltools' converter), neural ones with
`torch.onnx.export`. The graph's input `features` is the run's prepared float32 matrix (the preparation stays in
trainwell: ids, encodings and imputations are the run's `Run.features`); its outputs are labels and
probabilities (classifiers) or values (regressors), with the target's scaling folded in. Every export is
checked on the run's saved background rows with onnxruntime before it is reported as good.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trainwell.errors import UserError
from trainwell.files import atomic_path, write_json
from trainwell.run import Run

PROBA_ATOL = 1e-5  # probabilities: float32 arithmetic in the graph against float64 in Python
VALUE_RTOL = 1e-4  # regression values, relative to the target's spread


def export_onnx(run: Run, path: Path) -> dict[str, Any]:
    """Write `path` (.onnx) and `path`.json (inputs, outputs, parity); returns the parity check."""
    from trainwell.evaluate.analysis import BACKGROUND, load_background

    if run.task not in ("classification", "regression"):
        raise UserError(f"ONNX export covers classifiers and regressors; {run.dir} is a {run.task} run")
    model = run.model
    family = getattr(model, "family", "")
    X = load_background(run.dir / "model" / BACKGROUND).astype(np.float32)
    with atomic_path(path) as tmp:
        if family == "neural":
            _export_torch(model, X.shape[1], run.task, tmp)
        elif family == "classical":
            tmp.write_bytes(_convert_sklearn(model.estimator_, X.shape[1], run.task).SerializeToString())  # type: ignore[attr-defined]
        else:
            raise UserError(f"model {run.info['model']} ({family or type(model).__name__}) has no ONNX converter; "
                            "classical scikit-learn/LightGBM and neural models export")  # fmt: skip
        parity = check_parity(tmp, model, X, run.task)
    sidecar = {"input": {"name": "features", "shape": ["rows", X.shape[1]], "dtype": "float32",
                         "columns": run.info["features"], "preparation": "the run's: Run.features(rows)"},
               "outputs": "label, probabilities" if run.task == "classification" else "value",
               "classes": run.classes, "task": run.task, "model": run.info["model"], "parity": parity}  # fmt: skip
    write_json(Path(f"{path}.json"), sidecar)
    return parity


def _convert_sklearn(estimator: Any, n_features: int, task: str) -> Any:
    from skl2onnx import convert_sklearn, update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes, convert_lightgbm,
            options={"nocl": [True, False], "zipmap": [True, False]},
        )  # fmt: skip
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                    convert_lightgbm, options={"split": None})  # fmt: skip
    except ImportError:  # no LightGBM converter: other models still export
        pass
    options = {"zipmap": False} if task == "classification" else {}
    try:
        return convert_sklearn(estimator, initial_types=[("features", FloatTensorType([None, n_features]))],
                               options={id(estimator): options} if options else None,
                               target_opset={"": 17, "ai.onnx.ml": 3})  # fmt: skip
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as exc:
        raise UserError(f"ONNX conversion of {type(estimator).__name__} failed: {str(exc).splitlines()[0]}") from None


def _export_torch(model: Any, n_features: int, task: str, path: Path) -> None:
    import torch

    module = model.module_.eval()
    classifier = task == "classification"
    mean, std = (0.0, 1.0) if classifier else (float(model.target_mean_), float(model.target_std_))

    class Head(torch.nn.Module):
        """The trained network plus what `predict` does after it: softmax, or the target's scale."""

        def __init__(self) -> None:
            super().__init__()
            self.net = module

        def forward(self, x: torch.Tensor) -> Any:
            out = self.net(x)
            if classifier:
                proba = torch.softmax(out, dim=1)
                return proba.argmax(dim=1), proba
            return out[:, 0] * std + mean

    names = ["label", "probabilities"] if classifier else ["value"]
    with torch.no_grad():
        axes = {"features": {0: "rows"}, **{n: {0: "rows"} for n in names}}
        torch.onnx.export(Head().eval(), (torch.zeros(2, n_features),), str(path), input_names=["features"],
                          output_names=names, dynamic_axes=axes, dynamo=False)  # fmt: skip


def check_parity(path: Path, model: Any, X: np.ndarray, task: str) -> dict[str, Any]:
    """Run the graph with onnxruntime on `X` and compare with the model: the largest difference and a verdict."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"features": X})
    if task == "classification":
        proba = np.asarray(outputs[1], dtype=np.float64)
        expected = model.predict_proba(X)
        diff = float(np.max(np.abs(proba - expected)))
        labels = np.asarray(outputs[0]).astype(np.int64).ravel()
        decided = np.sort(expected, axis=1)[:, -1] - np.sort(expected, axis=1)[:, -2] > 2 * PROBA_ATOL
        agree = float(np.mean(labels[decided] == model.predict(X)[decided])) if decided.any() else 1.0
        ok = diff <= PROBA_ATOL and agree == 1.0
        rule = f"probabilities within {PROBA_ATOL:g}; labels equal where the top two differ"
        result = {"rows": len(X), "max_abs_probability_difference": diff, "label_agreement": agree,
                  "tolerance": rule}  # fmt: skip
    else:
        values = np.asarray(outputs[0], dtype=np.float64).ravel()
        expected = model.predict(X)
        scale = float(np.std(expected)) or 1.0
        diff = float(np.max(np.abs(values - expected)))
        ok = diff <= VALUE_RTOL * scale
        result = {"rows": len(X), "max_abs_difference": diff,
                  "tolerance": f"within {VALUE_RTOL:g} x the predictions' spread ({scale:.4g})"}  # fmt: skip
    if not ok:
        raise UserError(f"the ONNX graph disagrees with the saved model beyond tolerance: {json.dumps(result)}")
    return result | {"ok": True}
