"""Explanations: which features a model relies on overall, and why it decided one row as it did.

Which method each model family gets (all over the prepared float32 features the model sees):

| family                              | global importance                      | one row's contributions         |
|-------------------------------------|----------------------------------------|---------------------------------|
| every model                         | permutation importance (validation)    |                                 |
| linear (has `coef_`)                | coefficients                           | coefficient x (value - mean)    |
| trees (LightGBM, forests, boosting) | mean abs SHAP (TreeExplainer)          | TreeSHAP values                 |
| torch modules                       | mean abs integrated gradients (Captum) | integrated gradients            |
| anything else                       | permutation importance only            | Kernel SHAP over background rows |

Partial dependence uses scikit-learn's `partial_dependence` for every model (non-scikit-learn models go
through a small adapter), read back in the user's units: numbers in the column's own scale, categories by
name. Classification rows are explained for the predicted class; the `output` field says in which units
(log-odds, probability, logit or value). `model` may be a scikit-learn estimator, a torch module, or a
trainwell Model (its trained `.estimator_` or `.module` is used, else its predict functions).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.inspection import partial_dependence
from sklearn.metrics import accuracy_score, r2_score

from trainwell.config import Task
from trainwell.data.prepare import PreparedFeature
from trainwell.errors import UserError

Method = Literal["linear", "tree_shap", "integrated_gradients", "kernel_shap"]
_TREE_LIBRARIES = ("lightgbm.", "xgboost.", "catboost.")
_TREE_NAMES = ("Tree", "Forest", "GradientBoosting")


class _Local(NamedTuple):
    """Per-row contributions (N, F), base values (N,), predictions (N,) and the output's units."""

    contrib: np.ndarray
    base: np.ndarray
    pred: np.ndarray
    output: list[str]


def explanation_method(model: Any) -> Method:
    """The method `explain_rows` and `model_importance` use for this model (see the module table)."""
    model = _unwrap(model)
    if _is_torch(model):
        return "integrated_gradients"
    if hasattr(model, "coef_"):
        return "linear"
    kind = type(model)
    if kind.__module__.startswith(_TREE_LIBRARIES) or (
        kind.__module__.startswith("sklearn.") and any(name in kind.__name__ for name in _TREE_NAMES)
    ):
        return "tree_shap"
    return "kernel_shap"


# ---------------------------------------------------------------- global importance


def permutation_importance_table(
    model: Any, X: np.ndarray, y: np.ndarray, feature_names: Sequence[str], *,
    task: Task, n_repeats: int = 5, seed: int = 0, max_rows: int = 2000,
) -> list[dict[str, Any]]:  # fmt: skip
    """Drop in accuracy (classification) or R² (regression) when a feature's column is shuffled.

    Model-agnostic, so every model gets it; run it on the validation split, never the training one.
    The same statistic as scikit-learn's `permutation_importance`, but every shuffled copy goes through
    the model in one large `predict` call instead of one call per feature and repeat: per-call overhead
    (a forest's trees, a torch forward) dominates on validation-sized data.
    """
    X, y = _rows(X, max_rows, seed), _rows(np.asarray(y), max_rows, seed)
    predict = _as_estimator(model, X).predict
    score = accuracy_score if task == "classification" else r2_score
    rng = np.random.default_rng(seed)
    n, n_features = X.shape
    chunk = max(1, 2_000_000 // max(1, n * n_features))  # features per predict call, bounding memory
    drops = np.empty((n_features, n_repeats))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*feature names.*")
        baseline = score(y, predict(X))
        for start in range(0, n_features, chunk):
            block = range(start, min(start + chunk, n_features))
            copies = np.repeat(X[None], len(block) * n_repeats, axis=0)  # (features x repeats, n, F)
            for i, j in enumerate(block):
                for r in range(n_repeats):
                    copies[i * n_repeats + r, :, j] = X[rng.permutation(n), j]
            pred = np.asarray(predict(copies.reshape(-1, n_features))).reshape(len(copies), n)
            for i, j in enumerate(block):
                drops[j] = [baseline - score(y, pred[i * n_repeats + r]) for r in range(n_repeats)]
    stats = zip(feature_names, drops.mean(axis=1), drops.std(axis=1), strict=True)
    rows = [{"feature": str(name), "importance": float(m), "std": float(s)} for name, m, s in stats]
    return _ranked(rows)


def linear_coefficients(
    estimator: Any, feature_names: Sequence[str], class_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Coefficients per feature, largest |coefficient| first; comparable because features are scaled.

    Binary and regression models have one coefficient per feature; multiclass ones one per class, ranked by
    the largest magnitude across classes.
    """
    coef = np.atleast_2d(np.asarray(_unwrap(estimator).coef_, dtype=np.float64))  # (K or 1, F)
    rows = []
    for j, name in enumerate(feature_names):
        row: dict[str, Any] = {"feature": str(name), "importance": float(np.abs(coef[:, j]).max())}
        if coef.shape[0] == 1:
            row["coefficient"] = float(coef[0, j])
        else:
            names = class_names or [str(k) for k in range(coef.shape[0])]
            row["coefficients"] = {str(c): float(v) for c, v in zip(names, coef[:, j], strict=True)}
        rows.append(row)
    return _ranked(rows)


def shap_importance(estimator: Any, X: np.ndarray, feature_names: Sequence[str], *,
                    max_rows: int = 500, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """Mean |SHAP value| per feature from TreeExplainer (averaged over classes for multiclass)."""
    values, _ = _tree_shap(_unwrap(estimator), _rows(X, max_rows, seed))  # (N, F, K)
    mean_abs = np.abs(values).mean(axis=(0, 2))
    return _ranked([{"feature": str(n), "importance": float(v)} for n, v in zip(feature_names, mean_abs, strict=True)])


def integrated_gradients(
    module: Any, X: np.ndarray, feature_names: Sequence[str], *,
    baseline: np.ndarray | None = None, max_rows: int = 200, seed: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Mean |integrated gradient| per feature (Captum), toward each row's predicted class.

    The baseline is the mean row of `X` unless given (prepared features are standardised, so about zero).
    """
    X = _rows(X, max_rows, seed)
    attributions = _ig(_unwrap(module), X, X.mean(axis=0) if baseline is None else baseline).contrib
    rows = [{"feature": str(n), "importance": float(np.abs(a).mean()), "mean_attribution": float(a.mean())}
            for n, a in zip(feature_names, attributions.T, strict=True)]  # fmt: skip
    return _ranked(rows)


def model_importance(model: Any, X: np.ndarray, feature_names: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """The family-specific global importance, named as `explanation_method` names it; none for other models."""
    method = explanation_method(model)
    if method == "linear":
        return {"method": method, "features": linear_coefficients(model, feature_names)}
    if method == "tree_shap":
        return {"method": method, "features": shap_importance(model, X, feature_names, seed=seed)}
    if method == "integrated_gradients":
        return {"method": method, "features": integrated_gradients(model, X, feature_names, seed=seed)}
    return {"method": "none", "features": []}


# ---------------------------------------------------------------- local explanations


def explain_rows(
    model: Any, X_rows: np.ndarray, feature_names: Sequence[str], *, background: np.ndarray, top_k: int = 5
) -> list[dict[str, Any]]:
    """Each row's prediction (a class index, or a value) and its `top_k` largest contributions, signed.

    `background` is reference data (e.g. up to a few hundred training rows): the linear and IG baselines
    are its mean, and Kernel SHAP masks features with its rows.
    """
    X_rows = np.atleast_2d(np.asarray(X_rows, dtype=np.float32))
    method = explanation_method(model)
    inner = _unwrap(model)
    if method == "linear":
        local = _linear_rows(inner, X_rows, background)
    elif method == "tree_shap":
        local = _tree_rows(inner, X_rows)
    elif method == "integrated_gradients":
        local = _in_target_units(model, _ig(inner, X_rows, np.asarray(background, np.float32).mean(axis=0), 200))
    else:
        local = _kernel_rows(model, X_rows, background)
    out = []
    for i in range(len(X_rows)):
        order = np.argsort(-np.abs(local.contrib[i]))[:top_k]
        out.append({
            "row": i, "method": method, "output": local.output[i], "prediction": _plain(local.pred[i]),
            "base_value": float(local.base[i]),
            "contributions": [{"feature": str(feature_names[j]), "value": float(X_rows[i, j]),
                               "contribution": float(local.contrib[i, j])} for j in order],
        })  # fmt: skip
    return out


def _linear_rows(est: Any, X: np.ndarray, background: np.ndarray) -> _Local:
    """coef x (x - mean): exact for a linear model's score (log-odds for logistic regression)."""
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))  # (K or 1, F)
    intercept = np.atleast_1d(np.asarray(getattr(est, "intercept_", 0.0), dtype=np.float64))
    mean = np.asarray(background, np.float64).mean(axis=0)
    classify = is_classifier(est)
    pred = est.predict(X)
    k = np.searchsorted(est.classes_, pred) if classify else np.zeros(len(X), dtype=int)
    if classify and coef.shape[0] == 1:  # binary: one score, the log-odds of the second class
        sign = np.where(k == 1, 1.0, -1.0)[:, None]
        contrib, base = sign * coef[0] * (X - mean), sign[:, 0] * (intercept[0] + coef[0] @ mean)
    else:
        contrib = coef[k] * (X - mean)
        base = intercept[k] + coef[k] @ mean
    output = [f"log-odds of class {c}" if classify else "value" for c in k]
    return _Local(contrib, base, k if classify else pred, output)


def _tree_rows(est: Any, X: np.ndarray) -> _Local:
    """TreeSHAP values for the predicted class, in the model's raw output units."""
    values, expected = _tree_shap(est, X)  # (N, F, K), (K,)
    classify = is_classifier(est)
    pred = est.predict(X)
    k = np.searchsorted(est.classes_, pred) if classify else np.zeros(len(X), dtype=int)
    idx = np.minimum(k, values.shape[2] - 1)
    contrib, base = values[np.arange(len(X)), :, idx], expected[idx]
    if classify and values.shape[2] == 1:  # binary margin: the score of class 1; negate for class 0
        sign = np.where(k == 1, 1.0, -1.0)
        contrib, base = contrib * sign[:, None], base * sign
    units = "probability" if values.shape[2] > 1 and "Forest" in type(est).__name__ else "raw score"
    output = [f"{units} of class {c}" if classify else "value" for c in k]
    return _Local(contrib, base, k if classify else pred, output)


def _tree_shap(est: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values as (N, F, K) and expected values as (K,), whatever shape shap returns."""
    explainer = _shap().TreeExplainer(est)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*shap values output has changed.*")
        values = np.asarray(explainer.shap_values(np.asarray(X, dtype=np.float64)), dtype=np.float64)
    values = values if values.ndim == 3 else values[:, :, None]
    return values, np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))


def _ig(module: Any, X: np.ndarray, baseline: np.ndarray, n_steps: int = 50) -> _Local:
    """Captum IntegratedGradients toward the predicted class (logit) or the regression value.

    Attributions sum to f(x) - f(baseline) up to the integration error: about 0.02 at 50 steps for a small
    ReLU MLP, so rows (where the sum is read) get 200 and global rankings 50.
    """
    import torch
    from captum.attr import IntegratedGradients

    was_training = module.training
    module.eval()
    try:
        device = next(module.parameters()).device
        inputs = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
        base = torch.as_tensor(np.asarray(baseline, dtype=np.float32), device=device).expand_as(inputs).contiguous()
        with torch.no_grad():
            out, base_out = module(inputs).cpu(), module(base).cpu()
        classify = out.ndim == 2 and out.shape[1] > 1
        target = out.argmax(dim=1) if classify else (0 if out.ndim == 2 else None)
        attributions = IntegratedGradients(module).attribute(
            inputs, baselines=base, target=target.to(device) if classify else target,  # type: ignore[union-attr]
            n_steps=n_steps, internal_batch_size=4096,
        )  # fmt: skip
    finally:
        module.train(was_training)
    contrib = attributions.detach().cpu().numpy().astype(np.float64)
    if classify:
        pred = target.numpy()  # type: ignore[union-attr]
        return _Local(contrib, base_out[torch.arange(len(pred)), target].numpy(), pred,
                      [f"logit of class {k}" for k in pred])  # fmt: skip
    return _Local(contrib, base_out.reshape(len(X)).numpy(), out.reshape(len(X)).numpy(), ["value"] * len(X))


def _in_target_units(model: Any, local: _Local) -> _Local:
    """A trainwell neural regressor trains on a standardised target: map IG values back to its units."""
    std, mean = getattr(model, "target_std_", None), getattr(model, "target_mean_", None)
    if std is None or mean is None or local.output[:1] != ["value"]:
        return local
    return local._replace(contrib=local.contrib * std, base=local.base * std + mean, pred=local.pred * std + mean)


def _kernel_rows(model: Any, X: np.ndarray, background: np.ndarray) -> _Local:
    """Model-agnostic Kernel SHAP over up to 50 background rows (exact for up to ~11 features)."""
    shap = _shap()
    predict, predict_proba = _functions(model, X)
    background = np.asarray(background, dtype=np.float32)
    background = background[np.random.default_rng(0).choice(len(background), min(50, len(background)), replace=False)]
    explainer = shap.KernelExplainer(predict_proba or predict, background)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = np.asarray(explainer.shap_values(X, silent=True), dtype=np.float64)  # (N, F) or (N, F, K)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    pred = np.asarray(predict(X))
    if predict_proba is None:
        return _Local(values.reshape(len(X), -1), np.full(len(X), base[0]), pred, ["value"] * len(X))
    classes = getattr(_unwrap(model), "classes_", None)
    k = np.searchsorted(classes, pred) if classes is not None else pred.astype(int)
    return _Local(values[np.arange(len(X)), :, k], base[k], k, [f"probability of class {c}" for c in k])


# ---------------------------------------------------------------- partial dependence


def partial_dependence_curves(
    model: Any, X: np.ndarray, features: Sequence[int | str], feature_names: Sequence[str], *,
    described: Sequence[PreparedFeature] | None = None, grid_resolution: int = 20, max_rows: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """The average prediction as one feature sweeps its range (scikit-learn's `partial_dependence`).

    Each curve has `grid` (the feature's values) and `average` with one row per output: the positive class
    probability for binary models, each class's probability for multiclass, the value for regression.
    `described` (the preparer's `describe_features`) puts curves in the user's units: a numeric or datetime
    feature's `grid` in its original units (`grid_prepared` in the model's), a one-hot feature as its whole
    column over its categories, a flag, missing indicator or ordinal code over what its values stand for.
    Without it, `grid` is in the model's (prepared) units, as `units` says.
    """
    names = [str(n) for n in feature_names]
    X = _rows(np.asarray(X, dtype=np.float32), max_rows, seed)
    estimator = _as_estimator(model, X)
    classes = list(getattr(estimator, "classes_", []))
    outputs = ([f"probability of class {_plain(classes[-1])}"] if len(classes) == 2 else
               [f"probability of class {_plain(c)}" for c in classes] if classes else ["value"])  # fmt: skip
    curves: list[dict[str, Any]] = []
    for feature in features:
        j = int(feature) if isinstance(feature, (int, np.integer)) else names.index(feature) if feature in names else -1
        if not 0 <= j < len(names):
            raise UserError(f"partial dependence: feature {feature!r} is not one of the {len(names)} features")
        info = described[j] if described is not None else None
        if info is None or info.kind in ("numeric", "datetime", "text"):
            curve = _numeric_curve(estimator, X, j, grid_resolution, info) | {"feature": names[j]}
        else:
            curve = _categorical_curve(estimator, X, j, described or [])
        if all(c["feature"] != curve["feature"] for c in curves):  # two categories of one column: one curve
            curves.append(curve | {"outputs": outputs})
    return curves


MAX_LEVELS = 30  # categories drawn in one partial dependence curve: the most frequent ones


def _numeric_curve(estimator: Any, X: np.ndarray, j: int, grid_resolution: int,
                   info: PreparedFeature | None) -> dict[str, Any]:  # fmt: skip
    """scikit-learn's curve over the feature's 5th-95th percentiles, the grid mapped back to its own units."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = partial_dependence(estimator, X, [j], grid_resolution=grid_resolution, kind="average")
        except ValueError as exc:  # "percentiles are too close": a column that is mostly one value (96% zeros)
            if "percentiles" not in str(exc):
                raise
            result = partial_dependence(estimator, X, [j], grid_resolution=grid_resolution, kind="average",
                                        percentiles=(0.0, 1.0))  # fmt: skip
    grid = np.asarray(result["grid_values"][0], dtype=np.float64)
    curve: dict[str, Any] = {"kind": "numeric", "average": np.asarray(result["average"], np.float64).tolist()}
    if info is None:
        return curve | {"units": "prepared", "grid": grid.tolist()}
    original = [float(f"{v:.7g}") for v in info.original(grid)]  # float32 features: 7 digits are all there is
    return curve | {"column": info.column, "units": "original", "grid": original, "grid_prepared": grid.tolist()}


def _categorical_curve(estimator: Any, X: np.ndarray, j: int, described: Sequence[PreparedFeature]) -> dict[str, Any]:
    """The average prediction with every row set to each category in turn (brute force, as scikit-learn's).

    A one-hot feature is swept as its whole column: its block of 0/1 columns set to one category at a time.
    """
    info = described[j]
    if info.kind == "onehot":
        columns = [i for i, f in enumerate(described) if f.kind == "onehot" and f.column == info.column]
        settings, levels = np.eye(len(columns)), [str(described[i].category) for i in columns]
        frequency = X[:, columns].sum(axis=0)
        feature = info.column
    else:  # codes 0, 1, 2... (an ordinal -1, a category unseen in training, is not drawn)
        columns, levels, feature = [j], list(info.levels), info.name
        settings = np.arange(len(levels), dtype=np.float64)[:, None]
        frequency = np.array([(X[:, j] == k).sum() for k in range(len(levels))])
    keep = np.sort(np.argsort(-frequency, kind="stable")[:MAX_LEVELS])
    average = _average_prediction(estimator, X, columns, settings[keep])
    return {"feature": feature, "column": info.column, "kind": "categorical", "units": "categories",
            "grid": [levels[k] for k in keep], "average": average.tolist()}  # fmt: skip


def _average_prediction(estimator: Any, X: np.ndarray, columns: list[int], settings: np.ndarray) -> np.ndarray:
    """(outputs, settings): the mean prediction over X's rows with `columns` set to each row of `settings`.

    Outputs as scikit-learn's `partial_dependence`: the positive class's probability for a binary
    classifier, every class's for a multiclass one, the value for a regressor. One predict call in all.
    """
    n, n_features = X.shape
    copies = np.repeat(X[None], len(settings), axis=0)  # (S, N, F)
    copies[:, :, columns] = settings[:, None, :].astype(np.float32)
    flat = copies.reshape(-1, n_features)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*feature names.*")
        if is_classifier(estimator):
            proba = np.asarray(estimator.predict_proba(flat), np.float64).reshape(len(settings), n, -1).mean(axis=1)
            return (proba[:, 1:] if proba.shape[1] == 2 else proba).T
        return np.asarray(estimator.predict(flat), np.float64).reshape(len(settings), n).mean(axis=1)[None]


class _Predictor(BaseEstimator):
    """The smallest scikit-learn estimator around prediction functions, for permutation_importance and
    partial_dependence; it never fits anything."""

    def __init__(self, predict: Callable[..., Any], predict_proba: Callable[..., Any] | None = None,
                 n_classes: int = 0) -> None:  # fmt: skip
        self.predict_fn, self.predict_proba_fn, self.n_classes = predict, predict_proba, n_classes

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _Predictor:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self.n_classes else "regressor"
        return tags

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_fn(np.asarray(X, dtype=np.float32)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.predict_proba_fn is None:
            raise AttributeError("this model gives no probabilities")
        return np.asarray(self.predict_proba_fn(np.asarray(X, dtype=np.float32)))


# ---------------------------------------------------------------- helpers


def _shap() -> Any:
    """shap, imported on first use (2 s) without its matplotlib deprecation chatter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap
    return shap


def _unwrap(model: Any) -> Any:
    """The estimator or torch module inside a trainwell Model; anything else unchanged."""
    for name in ("estimator_", "estimator", "module_", "module"):  # the trained one first
        inner = getattr(model, name, None)
        if inner is not None and (hasattr(inner, "predict") or _is_torch(inner)):
            return inner
    return model


def _is_torch(obj: Any) -> bool:
    """A torch.nn.Module, checked without importing torch."""
    return any(c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in type(obj).__mro__)


def _functions(model: Any, probe: np.ndarray) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """predict and predict_proba (None for regression); `probe` is a few rows to ask the model with.

    A trainwell Model keeps its own predict (it un-scales regression outputs); a bare torch module is
    run directly: K > 1 outputs are class logits, one output a value.
    """
    if _is_torch(model):
        forward = partial(_forward, model)
        if forward(probe[:1]).shape[-1] > 1:
            return (lambda X: forward(X).argmax(axis=1)), (lambda X: _softmax(forward(X)))
        return (lambda X: forward(X).reshape(len(X))), None
    inner = _unwrap(model)
    proba = getattr(model, "predict_proba", None)
    if isinstance(inner, BaseEstimator) and inner is model:
        classify = is_classifier(inner)
    else:  # the Model protocol: predict_proba returns None for regression
        classify = proba is not None and proba(probe[:1]) is not None
    return model.predict, proba if classify else None


def _forward(module: Any, X: np.ndarray) -> np.ndarray:
    """Eval-mode outputs of a torch module as numpy, leaving its train/eval mode as it was."""
    import torch

    was_training = module.training
    module.eval()
    try:
        device = next(module.parameters()).device
        with torch.no_grad():
            return module(torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)).cpu().numpy()
    finally:
        module.train(was_training)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _as_estimator(model: Any, X: np.ndarray) -> Any:
    """A scikit-learn estimator as is (also inside a trainwell Model); anything else behind `_Predictor`."""
    inner = _unwrap(model)
    if isinstance(inner, BaseEstimator):
        return inner
    predict, predict_proba = _functions(model, X)
    n_classes = int(np.asarray(predict_proba(X[:1])).shape[1]) if predict_proba is not None else 0
    return _Predictor(predict, predict_proba, n_classes)


def _rows(X: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """At most `max_rows` rows, the same ones for the same seed and length."""
    X = np.asarray(X)
    if len(X) <= max_rows:
        return X
    return X[np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))]


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most important first, with a 1-based rank."""
    rows = sorted(rows, key=lambda r: -r["importance"])
    return [{**r, "rank": i + 1} for i, r in enumerate(rows)]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
