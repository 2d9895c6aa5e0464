"""Unsupervised models: every entry is a scikit-learn estimator that learns, saves and reloads exactly; clusterers
recover known blobs, clusterers without `predict` label new rows by the documented rule, bad input is one
UserError naming the field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.base import clone
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from trainwell.errors import UserError
from trainwell.models.autoencoder import AutoencoderDetector, AutoencoderTransformer
from trainwell.models.unsupervised import (
    UNSUPERVISED,
    InductiveClusterer,
    anomaly_outputs,
    create_unsupervised,
    fit_unsupervised,
    list_unsupervised,
    load_unsupervised,
    save_unsupervised,
)

# small budgets: the conformance suite checks behaviour, not quality
FAST: dict[str, dict[str, Any]] = {
    "kmeans": {"n_clusters": 3}, "minibatch_kmeans": {"n_clusters": 3}, "agglomerative": {"n_clusters": 3},
    "gaussian_mixture": {"n_components": 3}, "dbscan": {"eps": 1.0}, "isolation_forest": {"n_estimators": 20},
    "autoencoder": {"epochs": 5, "hidden_sizes": [8]}, "autoencoder_detector": {"epochs": 5, "hidden_sizes": [8]},
}  # fmt: skip
CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 6.0, 6.0], [6.0, 0.0, 6.0]])


pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four well-separated Gaussian blobs in 3-D and their true labels."""
    X, y = make_blobs(n, centers=CENTRES, cluster_std=1.0, random_state=seed)
    return X, y


def _outputs(spec_task: str, model: Any, X: np.ndarray) -> list[np.ndarray]:
    """What a fitted model of the task gives new rows."""
    if spec_task == "clustering":
        return [model.predict(X)]
    if spec_task == "dimensionality_reduction":
        return [model.transform(X)]
    return [model.predict(X), model.score_samples(X)]


# ---------------------------------------------------------------- conformance over the registry


@pytest.mark.parametrize("name", sorted(UNSUPERVISED))
def test_check_model(name: str, tmp_path: Path) -> None:
    spec = UNSUPERVISED[name]
    X, _ = _blobs(150)
    model = fit_unsupervised(name, FAST.get(name, {}), X, seed=0)
    new = X[:40] + 0.3
    before = _outputs(spec.task, model, new)
    assert before[0].shape[0] == 40 and np.isfinite(before[-1]).all()

    save_unsupervised(model, name, FAST.get(name, {}), tmp_path / "model")
    loaded = load_unsupervised(tmp_path / "model")
    assert (loaded.name, loaded.task, type(loaded.model)) == (name, spec.task, type(model))
    assert loaded.params == spec.params.model_validate(FAST.get(name, {})).model_dump(mode="json")
    for a, b in zip(before, _outputs(spec.task, loaded.model, new), strict=True):
        # labels and flags exactly; floats to 1e-12 (skops stores arrays C-ordered, IncrementalPCA's components_
        # are Fortran-ordered, so BLAS sums in another order: differences of 1e-15)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        else:
            np.testing.assert_array_equal(a, b)

    again = fit_unsupervised(name, FAST.get(name, {}), X, seed=0)  # same seed, same result
    for a, b in zip(before, _outputs(spec.task, again, new), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(UNSUPERVISED))
def test_every_model_is_a_scikit_learn_estimator(name: str) -> None:
    model = create_unsupervised(name, FAST.get(name, {}), seed=3)
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model

    def plain(params: dict[str, Any]) -> dict[str, Any]:  # nested estimators compare by their own params
        return {k: v for k, v in params.items() if not hasattr(v, "get_params")}

    assert plain(copy.get_params()) == plain(model.get_params())
    rebuilt = type(model)(**model.get_params(deep=False))
    assert plain(rebuilt.get_params()) == plain(model.get_params())
    assert plain(clone(model).set_params(**model.get_params()).get_params()) == plain(model.get_params())


def test_registry_covers_the_three_tasks_and_describes_every_field() -> None:
    by_task = {task: {s.name for s in list_unsupervised(task)} for task in ("clustering", "dimensionality_reduction",
                                                                            "anomaly_detection")}  # fmt: skip
    assert by_task == {
        "clustering": {"kmeans", "minibatch_kmeans", "agglomerative", "dbscan", "hdbscan", "gaussian_mixture"},
        "dimensionality_reduction": {"pca", "incremental_pca", "truncated_svd", "autoencoder"},
        "anomaly_detection": {"isolation_forest", "local_outlier_factor", "one_class_svm", "autoencoder_detector"},
    }
    for spec in UNSUPERVISED.values():
        assert spec.description.endswith(".")
        for field_name, field in spec.params.model_fields.items():
            assert field.description, f"{spec.name}.{field_name} has no description"


# scikit-learn's own estimator checks on the classes trainwell defines
@parametrize_with_checks([
    InductiveClusterer(AgglomerativeClustering(3)), InductiveClusterer(DBSCAN(), core_only=True, radius=0.5),
    AutoencoderTransformer(epochs=2, hidden_sizes=(4,)), AutoencoderDetector(epochs=2, hidden_sizes=(4,)),
])  # fmt: skip
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


# ---------------------------------------------------------------- clusterers recover known blobs


@pytest.mark.parametrize(("name", "params"), [
    ("kmeans", {"n_clusters": 4}), ("minibatch_kmeans", {"n_clusters": 4}), ("gaussian_mixture", {"n_components": 4}),
    ("agglomerative", {"n_clusters": 4, "linkage": "ward"}), ("dbscan", {"eps": 1.5, "min_samples": 10}),
    ("hdbscan", {"min_cluster_size": 30}),
])  # fmt: skip
def test_clusterers_recover_four_blobs(name: str, params: dict[str, Any]) -> None:
    X, y = _blobs()
    model = fit_unsupervised(name, params, X, seed=0)
    assert adjusted_rand_score(y, model.predict(X)) >= 0.9
    X_new, y_new = _blobs(200, seed=1)  # new rows from the same blobs land in the same clusters
    assert adjusted_rand_score(y_new, model.predict(X_new)) >= 0.9


def test_new_rows_take_the_label_of_the_nearest_training_row() -> None:
    X, _ = _blobs(300)
    for name, params in (("agglomerative", {"n_clusters": 4, "linkage": "single"}), ("hdbscan", {})):
        model = fit_unsupervised(name, params, X, seed=0)
        np.testing.assert_array_equal(model.predict(X), model.labels_)  # training rows get their own label back
        nearest = np.linalg.norm(X[None, :, :] - X[:25, None, :] - 0.01, axis=2).argmin(axis=1)
        np.testing.assert_array_equal(model.predict(X[:25] + 0.01), model.labels_[nearest])


def test_dbscan_labels_new_rows_by_core_samples_within_eps() -> None:
    X, _ = _blobs(300)
    model = fit_unsupervised("dbscan", {"eps": 1.0, "min_samples": 10}, X, seed=0)
    dbscan = model.estimator_
    core = dbscan.core_sample_indices_
    assert model.predict(CENTRES[[1]]).tolist() == [dbscan.labels_[core[np.linalg.norm(X[core] - CENTRES[1],
                                                                                       axis=1).argmin()]]]  # fmt: skip
    assert model.predict(np.array([[30.0, 30.0, 30.0]])).tolist() == [-1]  # farther than eps from every core: noise
    # training rows: core samples keep their label, noise stays noise, border rows join a cluster they touch
    pred = model.predict(X)
    np.testing.assert_array_equal(pred[core], dbscan.labels_[core])
    np.testing.assert_array_equal(pred[dbscan.labels_ == -1], -1)
    assert (pred == dbscan.labels_).mean() >= 0.99


def test_dbscan_reaches_new_rows_from_core_samples_only() -> None:
    # a dense run of core samples 0.0..1.0 and one border row at 1.25 (2 neighbours within eps, fewer than 3)
    X = np.c_[np.r_[np.linspace(0, 1, 11), 1.25], np.zeros(12)]
    model = fit_unsupervised("dbscan", {"eps": 0.3, "min_samples": 3}, X, seed=0)
    assert model.labels_.tolist() == [0] * 12 and 11 not in model.estimator_.core_sample_indices_
    # 1.5 is within eps of the border row but not of a core sample: DBSCAN would not reach it either
    assert model.predict(np.array([[1.2, 0.0], [1.5, 0.0]])).tolist() == [0, -1]


def test_dbscan_with_no_core_sample_calls_every_new_row_noise() -> None:
    X, _ = _blobs(60)
    model = fit_unsupervised("dbscan", {"eps": 0.01, "min_samples": 5}, X, seed=0)
    assert (model.labels_ == -1).all()
    assert model.predict(X[:5]).tolist() == [-1] * 5


# ---------------------------------------------------------------- the autoencoders


def test_autoencoder_codes_and_reconstruction() -> None:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(400, 2))
    X = latent @ rng.normal(size=(2, 8)) + 5.0  # 8 features on a 2-D plane, away from the origin
    model = fit_unsupervised("autoencoder", {"n_components": 2, "hidden_sizes": [16], "epochs": 60, "lr": 0.01},
                             X, seed=0)  # fmt: skip
    codes = model.transform(X)
    assert codes.shape == (400, 2) and codes.dtype == np.float64
    rebuilt = model.inverse_transform(codes)
    assert 1 - np.square(X - rebuilt).sum() / np.square(X - X.mean(0)).sum() >= 0.9  # in original units
    assert model.history_[0]["val_loss"] > model.history_[-1]["val_loss"]
    assert -model.score_samples(X).mean() < 0.1  # standardised reconstruction error, per value


def test_autoencoder_detector_flags_the_contamination_share_and_is_seeded() -> None:
    X, _ = _blobs(300)
    params = {"epochs": 10, "hidden_sizes": [8], "contamination": 0.1}
    model = fit_unsupervised("autoencoder_detector", params, X, seed=0)
    scores, flags = anomaly_outputs(model, X)
    assert abs(flags.mean() - 0.1) <= 0.01
    assert scores[flags].min() >= scores[~flags].max()  # the cut is a threshold on the score
    other = fit_unsupervised("autoencoder_detector", params, X, seed=1)
    assert not np.array_equal(other.score_samples(X), model.score_samples(X))


# ---------------------------------------------------------------- bad input


def test_unknown_model_name_suggests_the_closest() -> None:
    with pytest.raises(UserError, match=r'unknown unsupervised model "kmean" \(did you mean "kmeans"\?\); choose one'):
        create_unsupervised("kmean", {}, seed=0)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("kmeans", {"n_clusters": 0}, r'model kmeans: field "model\.n_clusters": Input should be greater than or equal'),
    ("kmeans", {"n_cluster": 3}, r'model kmeans: unknown field "model\.n_cluster" \(did you mean "n_clusters"\?\)'),
    ("agglomerative", {"linkage": "ward", "metric": "cosine"}, r'field "model\.metric": .*ward linkage needs metric'),
    ("incremental_pca", {"n_components": 10, "batch_size": 5}, r'field "model\.batch_size": .*raise batch_size'),
    ("isolation_forest", {"contamination": 0.9}, r'field "model\.contamination": Input should be less than'),
])  # fmt: skip
def test_bad_params_name_the_field(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        create_unsupervised(name, params, seed=0)


@pytest.mark.parametrize(("name", "params", "limit"), [
    ("kmeans", {"n_clusters": 50}, 30), ("gaussian_mixture", {"n_components": 31}, 30),
    ("pca", {"n_components": 4}, 3), ("truncated_svd", {"n_components": 4}, 3),
])  # fmt: skip
def test_size_larger_than_the_data_is_a_user_error(name: str, params: dict[str, Any], limit: int) -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    field, value = next(iter(params.items()))
    with pytest.raises(UserError, match=rf"^model\.{field} is {value} but {name} on 30 rows x 3 features allows at "
                                        rf"most {limit}; lower it"):  # fmt: skip
        fit_unsupervised(name, params, X, seed=0)


def test_empty_or_flat_input_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"needs a \(rows, features\) table with rows, got shape \(0, 3\)"):
        fit_unsupervised("kmeans", {}, np.zeros((0, 3)), seed=0)


def test_damaged_saved_models_are_user_errors(tmp_path: Path) -> None:
    X, _ = _blobs(100)
    with pytest.raises(UserError, match=r"model\.json not found"):
        load_unsupervised(tmp_path / "nothing")
    save_unsupervised(fit_unsupervised("autoencoder", FAST["autoencoder"], X, seed=0), "autoencoder",
                      FAST["autoencoder"], tmp_path / "ae")  # fmt: skip
    save_file({"mean": torch.zeros(3, dtype=torch.float64)}, str(tmp_path / "ae" / "weights.safetensors"))
    with pytest.raises(UserError, match=r"weights\.safetensors does not fit the autoencoder"):
        load_unsupervised(tmp_path / "ae")
    meta = json.loads((tmp_path / "ae" / "model.json").read_text())
    (tmp_path / "ae" / "model.json").write_text(json.dumps(meta | {"name": "autoencoderz"}))
    with pytest.raises(UserError, match=re.escape('unknown unsupervised model "autoencoderz"')):
        load_unsupervised(tmp_path / "ae")
    (tmp_path / "ae" / "model.json").write_text("{not json")
    with pytest.raises(UserError, match=r"model\.json is damaged \(JSONDecodeError"):
        load_unsupervised(tmp_path / "ae")
