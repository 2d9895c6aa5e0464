"""Each fit verdict from situations built on purpose: synthetic curves and real tiny trainings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_circles, make_classification, make_moons, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from trainwell.evaluate.diagnosis import VERDICTS, diagnose, learning_curve
from trainwell.evaluate.metrics import compute_metrics

# ---------------------------------------------------------------- helpers


def _rows(train: list[float], val: list[float] | None = None, lr: float = 1e-3) -> list[dict[str, float]]:
    """A neural history in the training loop's format."""
    out = []
    for i, tl in enumerate(train):
        row = {"epoch": i + 1, "train_loss": tl, "lr": lr, "seconds": 0.1}
        if val is not None:
            row["val_loss"] = val[i]
        out.append(row)
    return out


def _clf_metrics(acc: float, k: int = 2) -> dict:
    """Classification metrics with a confusion matrix of k classes (which tells the chance level)."""
    return {"accuracy": acc, "balanced_accuracy": acc, "confusion_matrix": [[0] * k for _ in range(k)]}


def _check_shape(result: dict) -> None:
    """Every diagnosis: a known verdict, one sentence, numeric evidence, concrete advice, valid JSON."""
    assert result["verdict"] in VERDICTS
    assert result["summary"].endswith(".") and len(result["summary"]) > 20
    assert result["advice"] and all(isinstance(a, str) and len(a) > 15 for a in result["advice"])
    assert all(v is None or isinstance(v, (int, float)) for v in result["evidence"].values())
    json.dumps(result, allow_nan=False)


def _sk_diagnose(est, X, y, Xv, yv, task: str, **kw) -> dict:  # type: ignore[no-untyped-def]
    """Fit a scikit-learn estimator and diagnose it from its real train/validation metrics."""
    est.fit(X, y)
    proba = (lambda A: est.predict_proba(A)) if task == "classification" else (lambda A: None)
    k = len(np.unique(y)) if task == "classification" else 0
    tm = compute_metrics(task, y, est.predict(X), proba(X), k)
    vm = compute_metrics(task, yv, est.predict(Xv), proba(Xv), k)
    result = diagnose(None, tm, vm, task=task, **kw)
    _check_shape(result)
    return result


def _torch_fit(X, y, Xv, yv, *, hidden, task, **train):  # type: ignore[no-untyped-def]
    """Train a plain MLP with the real training loop; returns (history, train metrics, validation metrics)."""
    import torch

    from trainwell.config import TrainConfig
    from trainwell.training.loop import fit

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cls = task == "classification"
    k = int(y.max()) + 1 if cls else 0
    layers, d = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.ReLU()]
        d = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(d, k or 1))
    train.setdefault("batch_size", len(X))  # full batch unless a test asks for mini-batches
    cfg = TrainConfig(**({"device": "cpu", "early_stopping": False, "momentum": 0.0} | train))
    X, Xv = X.astype(np.float32), Xv.astype(np.float32)
    history = fit(net, X, y, val=(Xv, yv), task=task, cfg=cfg, seed=0)
    with torch.no_grad():
        out = [net(torch.from_numpy(A)) for A in (X, Xv)]
    pred = [o.argmax(1).numpy() if cls else o.squeeze(1).numpy() for o in out]
    return history, compute_metrics(task, y, pred[0], None, k), compute_metrics(task, yv, pred[1], None, k)


def _nn_diagnose(X, y, split: int, task: str = "classification", **kw) -> dict:  # type: ignore[no-untyped-def]
    history, tm, vm = _torch_fit(X[:split], y[:split], X[split:], y[split:], task=task, **kw)
    result = diagnose(history, tm, vm, task=task, epochs_budget=kw["epochs"])
    _check_shape(result)
    return result


# ---------------------------------------------------------------- real tiny neural trainings


def test_tiny_model_underfits():
    """A linear model cannot separate concentric circles: training accuracy stays near chance."""
    X, y = make_circles(600, noise=0.1, factor=0.5, random_state=0)
    result = _nn_diagnose(X, y, 400, hidden=[], lr=0.05, epochs=60)
    assert result["verdict"] == "underfitting"
    assert result["evidence"]["train_skill"] < 0.5
    assert any("capacity" in a for a in result["advice"])


def test_huge_model_on_tiny_noisy_data_overfits_and_names_the_turn():
    """2x256 units, 40 noisy rows, no regularization: validation loss turns while training loss goes to 0."""
    X, y = make_classification(240, n_features=20, n_informative=5, flip_y=0.2, random_state=0)
    history, tm, vm = _torch_fit(X[:40], y[:40], X[40:], y[40:], hidden=[256, 256], task="classification",
                                 lr=1e-3, epochs=150)  # fmt: skip
    result = diagnose(history, tm, vm, task="classification", epochs_budget=150)
    assert result["verdict"] == "overfitting"
    turn = result["turn_epoch"]
    val = [r["val_loss"] for r in history]
    assert turn == int(np.argmin(val)) + 1 and 1 < turn < 150
    assert result["evidence"]["val_rise"] > 0.5 and history[-1]["train_loss"] < 0.01
    assert f"epoch {turn}" in result["summary"] and any("weight_decay" in a for a in result["advice"])


def test_learning_rate_10_diverges():
    """SGD at lr=10 blows the loss up to inf/NaN within a few epochs; the advice lowers the rate 10x."""
    X, y = make_regression(300, n_features=5, noise=5, random_state=0)
    y = y / y.std()
    result = _nn_diagnose(X, y, 200, task="regression", hidden=[32], lr=10.0, epochs=30, optimizer="sgd")
    assert result["verdict"] == "diverged"
    assert result["evidence"]["non_finite_epoch"] <= 5
    assert any("train.lr=1 " in a for a in result["advice"])


def test_a_divergence_recovered_by_a_retry_is_judged_on_the_kept_curve():
    """train.divergence_retries: lr=10 blows up, the retry at lr=1 trains well; the verdict is not `diverged`."""
    X, y = make_regression(300, n_features=5, noise=5, random_state=0)
    y = y / y.std()
    result = _nn_diagnose(X, y, 200, task="regression", hidden=[32], lr=10.0, epochs=30, optimizer="sgd",
                          divergence_retries=3)
    assert result["verdict"] != "diverged" and result["evidence"]["divergence_retries"] >= 1
    stopped = _nn_diagnose(X, y, 200, task="regression", hidden=[32], lr=10.0, epochs=30, optimizer="sgd")
    assert stopped["verdict"] == "diverged"


def test_too_high_learning_rate_is_unstable():
    """SGD at lr=5 on mini-batches: the loss bounces without blowing up."""
    X, y = make_moons(600, noise=0.2, random_state=0)
    result = _nn_diagnose(X, y, 400, hidden=[32, 32], lr=5.0, epochs=40, optimizer="sgd",
                          batch_size=32)
    assert result["verdict"] == "unstable"
    assert result["evidence"]["train_jumps"] >= 3
    assert any("train.lr=1.7" in a for a in result["advice"])


def test_too_few_epochs_is_still_improving():
    """Adam at 1e-3 for 15 full-batch epochs: the validation loss is still falling steadily."""
    X, y = make_moons(600, noise=0.2, random_state=0)
    result = _nn_diagnose(X, y, 400, hidden=[32, 32], lr=1e-3, epochs=15)
    assert result["verdict"] == "still_improving"
    assert result["evidence"]["final_trend_per_epoch"] < -0.002
    assert any("train.epochs=30" in a for a in result["advice"])


def test_sensible_training_with_minibatch_noise_is_a_good_fit():
    """Adam at 1e-2 on mini-batches with early stopping: noisy but healthy, neither unstable nor overfitting."""
    X, y = make_moons(1000, noise=0.25, random_state=1)
    result = _nn_diagnose(X, y, 700, hidden=[64, 64], lr=1e-2, epochs=100, batch_size=32,
                          early_stopping=True, patience=8)
    assert result["verdict"] == "good_fit"
    assert result["evidence"]["epochs_run"] < 100 and result["evidence"]["val_accuracy"] > 0.9


# ---------------------------------------------------------------- real classical trainings


def test_depth_one_tree_on_a_hard_problem_underfits():
    X, y = make_classification(900, n_features=12, n_informative=8, n_classes=4, random_state=0)
    result = _sk_diagnose(DecisionTreeClassifier(max_depth=1, random_state=0), X[:600], y[:600], X[600:], y[600:],
                          "classification", model="decision_tree")  # fmt: skip
    assert result["verdict"] == "underfitting"
    assert result["turn_epoch"] is None and result["advice"][0].startswith("More capacity for decision_tree: raise")


def test_one_nearest_neighbour_on_tiny_noisy_data_overfits():
    X, y = make_classification(300, n_features=10, n_informative=3, flip_y=0.3, random_state=0)
    result = _sk_diagnose(KNeighborsClassifier(1), X[:60], y[:60], X[60:], y[60:], "classification", model="knn")
    assert result["verdict"] == "overfitting" and "raise model.n_neighbors" in " ".join(result["advice"])
    assert result["evidence"]["train_accuracy"] == 1.0 and result["evidence"]["gap_accuracy"] > 0.2


def test_unpruned_tree_on_tiny_noisy_regression_overfits():
    X, y = make_regression(200, n_features=5, noise=40, random_state=0)
    result = _sk_diagnose(DecisionTreeRegressor(random_state=0), X[:50], y[:50], X[50:], y[50:], "regression")
    assert result["verdict"] == "overfitting"
    assert result["evidence"]["train_r2"] == 1.0 and result["evidence"]["gap_r2"] > 0.15


def test_regularized_linear_models_fit_well():
    X, y = load_breast_cancer(return_X_y=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1))
    assert _sk_diagnose(clf, X[:400], y[:400], X[400:], y[400:], "classification")["verdict"] == "good_fit"
    X, y = make_regression(400, n_features=8, noise=10, random_state=0)
    assert _sk_diagnose(Ridge(), X[:300], y[:300], X[300:], y[300:], "regression")["verdict"] == "good_fit"


def test_learning_curve_shows_that_more_data_would_help_an_overfit_model():
    X, y = make_classification(300, n_features=10, n_informative=3, flip_y=0.1, random_state=0)
    lc = learning_curve(KNeighborsClassifier(1), X, y, task="classification", cv=3, sizes=4, seed=0)
    json.dumps(lc, allow_nan=False)
    assert lc["metric"] == "accuracy" and len(lc["sizes"]) == 4 and lc["sizes"] == sorted(lc["sizes"])
    assert lc["train_scores"] == [1.0] * 4 and max(lc["val_scores"]) < 0.9
    result = diagnose(None, {}, {}, task="classification", learning_curve=lc)
    _check_shape(result)
    assert result["verdict"] == "overfitting" and result["evidence"]["lc_gap"] > 0.1
    if result["evidence"]["lc_val_gain_last_step"] >= 0.01:
        assert result["advice"][0].startswith("More training data")


def test_learning_curve_regression_uses_r2():
    X, y = make_regression(200, n_features=4, noise=1, random_state=0)
    lc = learning_curve(Ridge(), X, y, task="regression", cv=3, sizes=3, seed=1)
    assert lc["metric"] == "r2" and min(lc["val_scores"]) > 0.95


# ---------------------------------------------------------------- synthetic curves, one per verdict

_DECAY = [0.7 * math.exp(-i / 4) + 0.1 for i in range(40)]  # converges to 0.1 by epoch ~25


def test_synthetic_overfitting_turn_is_the_validation_minimum():
    train = [0.7 * math.exp(-i / 5) for i in range(30)]
    val = [0.6 - 0.04 * i for i in range(9)] + [0.28 + 0.03 * i for i in range(1, 22)]  # lowest at epoch 9
    result = diagnose(_rows(train, val), _clf_metrics(1.0), _clf_metrics(0.8), task="classification")
    assert result["verdict"] == "overfitting" and result["turn_epoch"] == 9


def test_synthetic_nan_and_exploding_losses_diverge():
    rows = _rows([0.7, 0.6, float("nan")], [0.7, 0.6, float("nan")], lr=0.5)
    rows[-1]["diverged"] = 1.0
    result = diagnose(rows, {}, {}, task="regression", epochs_budget=30)
    _check_shape(result)
    assert result["verdict"] == "diverged" and result["evidence"]["non_finite_epoch"] == 3
    assert result["evidence"]["train_loss_final"] == 0.6  # the last finite loss
    exploding = [0.5, 0.4, 0.3, 2.0, 9.0, 60.0]
    result = diagnose(_rows(exploding, exploding), {}, {}, task="regression")
    assert result["verdict"] == "diverged" and result["evidence"]["train_loss_growth"] == pytest.approx(200)


def test_synthetic_zigzag_training_loss_is_unstable():
    train = [1.0, 0.7, 0.5] + [0.45 if i % 2 else 0.7 for i in range(17)]
    result = diagnose(_rows(train, [t + 0.05 for t in train], lr=0.3), {}, {}, task="classification")
    assert result["verdict"] == "unstable" and result["evidence"]["train_jumps"] >= 8
    assert any("train.lr=0.1 " in a for a in result["advice"])


def test_synthetic_still_improving_mentions_patience_when_stopped_early():
    train = [1.0 - 0.03 * i for i in range(20)]
    result = diagnose(_rows(train, [t + 0.1 for t in train]), {}, {}, task="regression",
                      epochs_budget=50, stopped_early=True)  # fmt: skip
    assert result["verdict"] == "still_improving"
    assert any("patience" in a for a in result["advice"])


def test_synthetic_plateau_at_chance_underfits_and_good_curves_fit():
    flat = [0.70, 0.69, 0.69] + [0.69] * 17
    result = diagnose(_rows(flat, flat), _clf_metrics(0.52), _clf_metrics(0.5), task="classification")
    assert result["verdict"] == "underfitting"
    val = [v + 0.02 for v in _DECAY]
    result = diagnose(_rows(_DECAY, val), _clf_metrics(0.95, 3), _clf_metrics(0.93, 3), task="classification")
    assert result["verdict"] == "good_fit" and result["evidence"]["train_skill"] == pytest.approx(0.925)


def test_without_validation_the_training_curve_is_read():
    result = diagnose(_rows([1.0 - 0.03 * i for i in range(20)]), {}, {}, task="regression", epochs_budget=20)
    assert result["verdict"] == "still_improving" and "training loss" in result["summary"]
    result = diagnose(_rows(_DECAY), {"r2": 0.9}, {}, task="regression", epochs_budget=40)
    assert result["verdict"] == "good_fit" and "best_epoch" not in result["evidence"]


def test_classical_blow_up_is_diverged():
    result = diagnose(None, {"mse": float("inf"), "r2": float("-inf")}, {"mse": float("inf")}, task="regression")
    _check_shape(result)
    assert result["verdict"] == "diverged" and any("scaling" in a for a in result["advice"])
