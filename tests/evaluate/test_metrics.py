"""Metrics: names, values against hand-computed numbers, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainwell.evaluate.metrics import compute_metrics


def test_binary_classification_metrics() -> None:
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    m = compute_metrics("classification", y, p, proba, n_classes=2)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    # AUC by hand: positive scores .8 .7 .4 vs negative .1 .6 → 5 of 6 pairs ordered correctly
    assert m["roc_auc"] == pytest.approx(5 / 6)
    expected_ll = -np.mean(np.log([0.9, 0.4, 0.8, 0.7, 0.4]))
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_multiclass_has_macro_and_weighted_but_no_binary_scores() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    proba = np.eye(3)[[0, 1, 2, 1, 1, 0]] * 0.8 + 0.2 / 3
    m = compute_metrics("classification", y, proba.argmax(1), proba, n_classes=3)
    assert {"f1_macro", "f1_weighted", "balanced_accuracy", "roc_auc"} <= set(m)
    assert "f1" not in m and "precision" not in m
    assert m["accuracy"] == pytest.approx(5 / 6)


def test_class_absent_from_split_does_not_crash() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    m = compute_metrics("classification", y, proba.argmax(1), proba, n_classes=3)
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0
    assert len(m["confusion_matrix"]) == 3


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 4.0])
    m = compute_metrics("regression", y, p)
    assert m["mse"] == pytest.approx(0.125) and m["rmse"] == pytest.approx(math.sqrt(0.125))
    assert m["mae"] == pytest.approx(0.25) and m["r2"] == pytest.approx(1 - 0.5 / 5)


def test_empty_split_gives_no_metrics() -> None:
    assert compute_metrics("regression", np.array([]), np.array([])) == {}
