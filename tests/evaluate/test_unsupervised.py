"""Unsupervised metrics, the sweep choosing k, and the diagnosis: numbers on real data (known blobs, digits, planted
outliers), checked against scikit-learn and numpy, and degenerate results reported instead of raised."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from trainwell.errors import UserError
from trainwell.evaluate.unsupervised import (
    anomaly_metrics,
    clustering_metrics,
    diagnose_unsupervised,
    reduction_metrics,
    sweep,
)
from trainwell.models.unsupervised import anomaly_outputs, fit_unsupervised

CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 6.0, 6.0], [6.0, 0.0, 6.0]])
K_VALUES = list(range(2, 9))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(600, centers=CENTRES, cluster_std=1.0, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    """500 Gaussian rows in 4-D near a plane and 25 rows planted 6 to 8 units from the centre; 1 marks the planted.

    Normal rows with structure (a 2-D plane plus noise): on isotropic noise a reconstruction has nothing to learn,
    and the autoencoder's ROC-AUC swings from 0.88 to 0.96 with the seed.
    """
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(500, 2)) @ rng.normal(size=(2, 4)) + rng.normal(scale=0.3, size=(500, 4))
    direction = rng.normal(size=(25, 4))
    far = direction / np.linalg.norm(direction, axis=1, keepdims=True) * rng.uniform(6, 8, size=(25, 1))
    return np.vstack([normal, far]), np.r_[np.zeros(500, int), np.ones(25, int)]


# ---------------------------------------------------------------- clustering metrics


def test_clustering_metrics_on_known_blobs(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = blobs
    labels = fit_unsupervised("kmeans", {"n_clusters": 4}, X, seed=0).predict(X)
    found = clustering_metrics(X, labels, y)
    assert found["n_clusters"] == 4 and found["noise_share"] == 0.0 and found["skipped"] == {}
    assert found["silhouette"] == pytest.approx(silhouette_score(X, labels), abs=1e-12)
    assert found["silhouette"] > 0.6 and found["davies_bouldin"] < 0.6 and found["calinski_harabasz"] > 1000
    for name in ("adjusted_rand", "normalized_mutual_info", "homogeneity", "completeness"):
        assert found[name] >= 0.95, name
    shuffled = clustering_metrics(X, np.random.default_rng(0).permutation(labels), y)
    assert shuffled["adjusted_rand"] < 0.05 and shuffled["silhouette"] < 0.05  # the metrics can tell


def test_silhouette_is_sampled_and_seeded_on_many_rows() -> None:
    X, y = make_blobs(7000, centers=CENTRES, cluster_std=1.5, random_state=0)
    full = silhouette_score(X, y)
    first, again = clustering_metrics(X, y, max_rows=2000), clustering_metrics(X, y, max_rows=2000)
    assert first["silhouette"] == again["silhouette"] != clustering_metrics(X, y, seed=1, max_rows=2000)["silhouette"]
    assert first["silhouette"] == pytest.approx(full, abs=0.02)


def test_noise_is_left_out_and_degenerate_clusterings_are_reported() -> None:
    X = np.random.default_rng(0).normal(size=(100, 2))
    labels = np.r_[np.full(10, -1), np.zeros(45, int), np.ones(45, int)]
    found = clustering_metrics(X, labels)
    assert found["n_clusters"] == 2 and found["noise_share"] == pytest.approx(0.1)
    assert found["silhouette"] == pytest.approx(silhouette_score(X[10:], labels[10:]), abs=1e-12)

    one = clustering_metrics(X, np.zeros(100, int), y_true=np.r_[np.zeros(50), np.ones(50)])
    assert math.isnan(one["silhouette"]) and math.isnan(one["davies_bouldin"])
    assert one["skipped"]["silhouette"] == "a single cluster: there is nothing to separate"
    assert one["adjusted_rand"] == 0.0  # external scores are still defined
    noise = clustering_metrics(X, np.full(100, -1))
    assert noise["noise_share"] == 1.0 and noise["n_clusters"] == 0
    assert noise["skipped"]["calinski_harabasz"] == "every row is noise (-1): no cluster to score"
    assert diagnose_unsupervised("clustering", noise)["verdict"] == "degenerate"
    with pytest.raises(UserError, match="the label column has 3 values for 100 rows"):
        clustering_metrics(X, np.zeros(100, int), y_true=np.zeros(3))


# ---------------------------------------------------------------- the sweep picks k


@pytest.mark.parametrize(("name", "criterion"), [
    ("kmeans", "silhouette"), ("minibatch_kmeans", "silhouette"), ("agglomerative", "silhouette"),
    ("gaussian_mixture", "bic"), ("kmeans", "davies_bouldin"), ("kmeans", "calinski_harabasz"),
])  # fmt: skip
def test_sweep_picks_four_blobs(name: str, criterion: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    auto = "auto" if criterion in ("silhouette", "bic") else criterion  # auto: bic for the mixture, else silhouette
    result = sweep(name, {}, X, K_VALUES, seed=0, criterion=auto)
    assert (result.criterion, result.chosen, result.note) == (criterion, 4, "")
    assert [p["value"] for p in result.curve] == K_VALUES
    best = (min if criterion in ("bic", "davies_bouldin") else max)(p["score"] for p in result.curve)
    assert result.curve[2]["score"] == best  # k=4 is the best point of the curve, not merely chosen
    assert result.to_dict()["param"] == ("n_components" if name == "gaussian_mixture" else "n_clusters")


def test_pca_sweep_picks_the_fewest_components_keeping_95_percent(digits: np.ndarray) -> None:
    cumulative = np.cumsum(PCA().fit(digits).explained_variance_ratio_)
    expected = int(np.argmax(cumulative >= 0.95)) + 1
    result = sweep("pca", {}, digits, list(range(1, 65)), seed=0)
    assert (result.criterion, result.chosen) == ("explained_variance", expected) and expected == 29
    np.testing.assert_allclose([p["score"] for p in result.curve], cumulative, rtol=0, atol=1e-9)
    at_80 = sweep("pca", {}, digits, list(range(1, 65)), seed=0, threshold=0.8)
    assert at_80.chosen == np.argmax(cumulative >= 0.8) + 1
    capped = sweep("pca", {}, digits, [1, 2, 3], seed=0)
    assert capped.chosen == 3 and capped.note.startswith("no candidate keeps 95% of the variance")


def test_sweep_refuses_what_it_cannot_do(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    small = sweep("kmeans", {}, X[:5], [2, 3, 6, 9], seed=0)
    assert small.skipped == [6, 9] and [p["value"] for p in small.curve] == [2, 3]
    with pytest.raises(UserError, match=r"none of the sweep values \[6, 9\] fits kmeans on 5 rows x 3 features"):
        sweep("kmeans", {}, X[:5], [6, 9], seed=0)
    with pytest.raises(UserError, match="model dbscan has no number of clusters or components to sweep"):
        sweep("dbscan", {}, X, K_VALUES, seed=0)
    with pytest.raises(UserError, match='sweep criterion "bic" needs a model with a likelihood'):
        sweep("kmeans", {}, X, [2, 3], seed=0, criterion="bic")
    with pytest.raises(UserError, match='sweep criterion "explained_variance" does not fit clustering'):
        sweep("kmeans", {}, X, [2, 3], seed=0, criterion="explained_variance")
    with pytest.raises(UserError, match=r'unknown sweep criterion "silhouete" \(did you mean "silhouette"\?\)'):
        sweep("kmeans", {}, X, [2, 3], seed=0, criterion="silhouete")


# ---------------------------------------------------------------- dimensionality reduction


def test_reduction_metrics_match_scikit_learn_pca(digits: np.ndarray) -> None:
    model = fit_unsupervised("pca", {"n_components": 10}, digits, seed=0)
    found = reduction_metrics(model, digits)
    reference = PCA(10).fit(digits).explained_variance_ratio_
    assert found["n_components"] == 10 and len(found["explained_variance_ratio"]) == 10
    assert abs(found["explained_variance_ratio"][0] - reference[0]) <= 1e-12
    np.testing.assert_allclose(found["cumulative_explained_variance"], np.cumsum(reference), rtol=0, atol=1e-12)
    # two computations agree: the ratios and the reconstruction error of X
    assert found["variance_kept"] == pytest.approx(found["cumulative_explained_variance"][-1], abs=1e-9)
    assert found["reconstruction_error"] > 0
    assert diagnose_unsupervised("dimensionality_reduction", found)["summary"] == (
        f"10 components keep {found['variance_kept']:.0%} of the variance"
    )


def test_autoencoder_keeps_the_variance_of_a_plane_and_sweeps_by_reconstruction() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 6)) + rng.normal(scale=0.05, size=(400, 6))
    params = {"hidden_sizes": [16], "epochs": 60, "lr": 0.01}
    found = reduction_metrics(fit_unsupervised("autoencoder", params | {"n_components": 2}, X, seed=0), X)
    assert "explained_variance_ratio" not in found and found["variance_kept"] >= 0.9
    result = sweep("autoencoder", params, X, [1, 2], seed=0, threshold=0.9)
    assert result.chosen == 2 and result.curve[0]["score"] < 0.9 <= result.curve[1]["score"]


# ---------------------------------------------------------------- anomaly detection


@pytest.mark.parametrize(("name", "params"), [
    ("isolation_forest", {"n_estimators": 50}), ("local_outlier_factor", {}), ("one_class_svm", {}),
    ("autoencoder_detector", {"epochs": 40}),
])  # fmt: skip
def test_detectors_find_planted_outliers(name: str, params: dict[str, Any], planted: tuple[np.ndarray, ...]) -> None:
    X, truth = planted
    scores, flags = anomaly_outputs(fit_unsupervised(name, params, X, seed=0), X)
    found = anomaly_metrics(scores, flags, truth, contamination=0.05)
    assert found["roc_auc"] >= 0.9 and found["average_precision"] >= 0.5, found  # chance: AP 0.05
    assert abs(found["flagged_share"] - 0.05) <= 0.02
    assert diagnose_unsupervised("anomaly_detection", found)["verdict"] == "as_expected"


def test_anomaly_metrics_by_hand_and_degenerate_labels() -> None:
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 0.0, 0.05, 0.15, 0.25])
    truth = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    found = anomaly_metrics(scores, scores > 0.5, truth, contamination=0.2)
    # the top 2 scores are rows 0 and 1: one of them is an anomaly; flagged rows 0, 1, 3 hold both anomalies
    assert found["precision_at_contamination"] == 0.5 and found["flagged_share"] == pytest.approx(0.3)
    assert found["flag_precision"] == pytest.approx(2 / 3) and found["flag_recall"] == 1.0
    assert found["roc_auc"] == pytest.approx(15 / 16)  # 16 anomaly/normal pairs, one ranked wrong (0.8 above 0.7)
    one_class = anomaly_metrics(scores, scores > 0.5, np.zeros(10, int))
    assert math.isnan(one_class["roc_auc"])
    assert one_class["skipped"]["roc_auc"] == "the label column holds one class only"
    with pytest.raises(UserError, match=r"must be 0/1 or true/false \(1 = anomaly\); found values such as \[-1, 1\]"):
        anomaly_metrics(scores, scores > 0.5, np.where(truth == 1, -1, 1))


# ---------------------------------------------------------------- diagnosis


def test_diagnosis_tells_structure_from_noise(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    good = diagnose_unsupervised("clustering", clustering_metrics(X, fit_unsupervised("kmeans", {"n_clusters": 4}, X,
                                                                                      seed=0).predict(X)))  # fmt: skip
    assert good["verdict"] == "good_separation" and good["summary"].startswith("good separation: 4 clusters")

    noise = np.random.default_rng(0).uniform(size=(600, 10))
    k = sweep("kmeans", {}, noise, K_VALUES, seed=0).chosen
    found = clustering_metrics(noise, fit_unsupervised("kmeans", {"n_clusters": k}, noise, seed=0).predict(noise))
    verdict = diagnose_unsupervised("clustering", found)
    assert verdict["verdict"] == "no_structure" and found["silhouette"] < 0.15
    assert verdict["summary"] == f"no cluster structure: silhouette {found['silhouette']:.2f} (below 0.25)"
    assert verdict["advice"] and verdict["evidence"]["silhouette"] == found["silhouette"]


@pytest.mark.parametrize(("share", "auc", "verdict"), [
    (0.05, 0.95, "as_expected"), (0.20, 0.95, "over_flagging"), (0.01, 0.95, "under_flagging"),
    (0.05, 0.55, "poor_detection"),
])  # fmt: skip
def test_anomaly_diagnosis_compares_flags_with_contamination(share: float, auc: float, verdict: str) -> None:
    found = diagnose_unsupervised("anomaly_detection", {"flagged_share": share, "contamination": 0.05, "roc_auc": auc})
    assert found["verdict"] == verdict
    with pytest.raises(UserError, match=r'unknown unsupervised task "clusterin" \(did you mean "clustering"\?\)'):
        diagnose_unsupervised("clusterin", {})
