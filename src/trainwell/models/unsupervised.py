"""Unsupervised models by name: clustering, dimensionality reduction and anomaly detection, no target needed.

A registry of its own (the supervised one is built around a target): each entry is a params class (every
field described, unknown keys rejected), a builder `(params, seed) -> estimator` returning a real scikit-learn
estimator, and the parameter a sweep varies. Clusterers without `predict` are wrapped in `InductiveClusterer`;
the autoencoders are scikit-learn estimators over a small torch network. Saved as skops (scikit-learn) or
safetensors + JSON (torch), never pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from safetensors.torch import save_file
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.utils import Tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from trainwell.artifacts import load_skops, load_tensors, save_skops
from trainwell.config import UNSUPERVISED_TASKS, UnsupervisedTask
from trainwell.errors import UserError, first_line, unknown
from trainwell.files import atomic_path, write_json
from trainwell.models.autoencoder import WEIGHTS, AutoencoderDetector, AutoencoderTransformer
from trainwell.models.registry import ModelTags, TrainwellTags, register_loader, validate_params

TASKS = UNSUPERVISED_TASKS
ESTIMATOR = "estimator.skops"


@dataclass(frozen=True)
class UnsupervisedSpec:
    """A registry entry: `build(params, seed)` returns an unfitted scikit-learn estimator."""

    name: str
    task: UnsupervisedTask
    params: type[BaseModel]
    build: Callable[[Any, int], Any]
    description: str
    size_param: str | None = None  # what a sweep varies: n_clusters / n_components; None: nothing to sweep
    max_size: Callable[[int, int], int] | None = None  # (n_rows, n_features) → the largest valid size
    saved_as: Literal["skops", "safetensors"] = "skops"
    sweep_criterion: str = "silhouette"  # what `sweep(criterion="auto")` scores sizes by


UNSUPERVISED: dict[str, UnsupervisedSpec] = {}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- clustering


class InductiveClusterer(ClusterMixin, BaseEstimator):
    """Gives a clusterer without `predict` (DBSCAN, HDBSCAN, agglomerative) one, by the nearest training row.

    A new row takes the label of its nearest reference row under `metric`: every training row (HDBSCAN,
    agglomerative: the inductive-clustering recipe of scikit-learn's docs, a 1-nearest-neighbour classifier on
    the cluster labels; training rows get their own label back), or only the core samples with `core_only`
    (DBSCAN). With `radius`, a row farther than that from every reference row is noise (-1): for DBSCAN with
    radius=eps this is how DBSCAN itself labels border points (within eps of a core sample) and noise.
    """

    def __init__(self, estimator: Any = None, metric: str = "euclidean", core_only: bool = False,
                 radius: float | None = None) -> None:  # fmt: skip
        self.estimator, self.metric, self.core_only, self.radius = estimator, metric, core_only, radius

    def fit(self, X: Any, y: Any = None) -> InductiveClusterer:
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.estimator_ = clone(self.estimator).fit(X)
        self.labels_ = np.asarray(self.estimator_.labels_)
        keep = self.estimator_.core_sample_indices_ if self.core_only else np.arange(len(X))
        self.reference_, self.reference_labels_ = X[keep], self.labels_[keep]
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        if not len(self.reference_):  # DBSCAN found no core sample: everything is noise
            return np.full(len(X), -1, dtype=np.int64)
        nearest, distance = pairwise_distances_argmin_min(X, self.reference_.astype(X.dtype), metric=self.metric)
        labels = self.reference_labels_[nearest].astype(np.int64)
        if self.radius is not None:
            labels[distance > self.radius] = -1
        return labels


Metric = Literal["euclidean", "manhattan", "cosine"]


class KMeansParams(Params):
    n_clusters: int = Field(8, ge=1, description="Number of clusters k; a sweep can choose it.")
    init: Literal["k-means++", "random"] = Field("k-means++", description="How the first centres are picked.")
    n_init: int = Field(4, ge=1, description="Restarts from different centres; the lowest inertia is kept.")
    max_iter: int = Field(300, ge=1, description="Iterations per restart.")


class MiniBatchKMeansParams(KMeansParams):
    batch_size: int = Field(1024, ge=1, description="Rows per mini-batch; larger is slower and more exact.")
    max_iter: int = Field(100, ge=1, description="Passes over the data.")


class AgglomerativeParams(Params):
    n_clusters: int = Field(8, ge=1, description="Number of clusters the merge tree is cut into.")
    linkage: Literal["ward", "complete", "average", "single"] = Field(
        "ward", description="Merge rule: ward minimises within-cluster variance; single follows chains."
    )
    metric: Metric = Field("euclidean", description="Distance between rows; ward needs euclidean.")

    @field_validator("metric")
    @classmethod
    def _ward_is_euclidean(cls, metric: str, info: ValidationInfo) -> str:
        if info.data.get("linkage") == "ward" and metric != "euclidean":
            raise ValueError("ward linkage needs metric euclidean; use linkage average or complete")
        return metric


class DBSCANParams(Params):
    eps: float = Field(0.5, gt=0, description="Neighbourhood radius; on standardised features try 0.3 to 1.")
    min_samples: int = Field(5, ge=1, description="Neighbours (itself included) that make a row a core sample.")
    metric: Metric = Field("euclidean", description="Distance between rows.")


class HDBSCANParams(Params):
    min_cluster_size: int = Field(5, ge=2, description="Smallest group of rows that counts as a cluster.")
    min_samples: int | None = Field(None, ge=1, description="Density smoothing; None uses min_cluster_size.")
    cluster_selection_epsilon: float = Field(0.0, ge=0, description="Clusters closer than this are merged.")
    metric: Metric = Field("euclidean", description="Distance between rows.")


class GaussianMixtureParams(Params):
    n_components: int = Field(8, ge=1, description="Number of Gaussian clusters; a sweep can choose it by BIC.")
    covariance_type: Literal["full", "tied", "diag", "spherical"] = Field(
        "full", description="Shape of each cluster: full is most flexible, spherical like k-means."
    )
    n_init: int = Field(1, ge=1, description="Restarts; the best likelihood is kept.")
    max_iter: int = Field(100, ge=1, description="EM iterations per restart.")


def _kmeans(p: KMeansParams, seed: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(p.n_clusters, init=p.init, n_init=p.n_init, max_iter=p.max_iter, random_state=seed)


def _minibatch_kmeans(p: MiniBatchKMeansParams, seed: int) -> Any:
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(p.n_clusters, init=p.init, n_init=p.n_init, max_iter=p.max_iter,
                           batch_size=p.batch_size, random_state=seed)  # fmt: skip


def _agglomerative(p: AgglomerativeParams, seed: int) -> InductiveClusterer:
    from sklearn.cluster import AgglomerativeClustering

    return InductiveClusterer(AgglomerativeClustering(p.n_clusters, linkage=p.linkage, metric=p.metric), p.metric)


def _dbscan(p: DBSCANParams, seed: int) -> InductiveClusterer:
    from sklearn.cluster import DBSCAN

    # brute force: nothing fitted holds a search tree (a crafted tree in a skops file can crash Python)
    dbscan = DBSCAN(eps=p.eps, min_samples=p.min_samples, metric=p.metric, algorithm="brute")
    return InductiveClusterer(dbscan, p.metric, core_only=True, radius=p.eps)


def _hdbscan(p: HDBSCANParams, seed: int) -> InductiveClusterer:
    from sklearn.cluster import HDBSCAN

    hdbscan = HDBSCAN(min_cluster_size=p.min_cluster_size, min_samples=p.min_samples, metric=p.metric,
                      cluster_selection_epsilon=p.cluster_selection_epsilon, algorithm="brute", copy=True)  # fmt: skip
    return InductiveClusterer(hdbscan, p.metric)


def _gaussian_mixture(p: GaussianMixtureParams, seed: int) -> Any:
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(p.n_components, covariance_type=p.covariance_type, n_init=p.n_init, max_iter=p.max_iter,
                           random_state=seed)  # fmt: skip


def _rows(n_rows: int, n_features: int) -> int:
    return n_rows


UNSUPERVISED.update((s.name, s) for s in [
    UnsupervisedSpec("kmeans", "clustering", KMeansParams, _kmeans, "k-means: k round clusters around centres.",
                     "n_clusters", _rows),
    UnsupervisedSpec("minibatch_kmeans", "clustering", MiniBatchKMeansParams, _minibatch_kmeans,
                     "Mini-batch k-means: k-means on batches, for many rows.", "n_clusters", _rows),
    UnsupervisedSpec("agglomerative", "clustering", AgglomerativeParams, _agglomerative,
                     "Agglomerative clustering: a merge tree cut into k clusters (new rows: nearest training row).",
                     "n_clusters", _rows),
    UnsupervisedSpec("dbscan", "clustering", DBSCANParams, _dbscan,
                     "DBSCAN: dense regions of any shape, sparse rows are noise (-1); k is found, not set."),
    UnsupervisedSpec("hdbscan", "clustering", HDBSCANParams, _hdbscan,
                     "HDBSCAN: DBSCAN over every density, no eps to tune; sparse rows are noise (-1)."),
    UnsupervisedSpec("gaussian_mixture", "clustering", GaussianMixtureParams, _gaussian_mixture,
                     "Gaussian mixture: soft elliptical clusters fitted by EM; k chosen by BIC.", "n_components", _rows,
                     sweep_criterion="bic"),
])  # fmt: skip


# ---------------------------------------------------------------- dimensionality reduction


class PCAParams(Params):
    n_components: int = Field(2, ge=1, description="Components kept; a sweep picks the fewest keeping 95%.")
    whiten: bool = Field(False, description="Scale the components to unit variance (for models that assume it).")


class IncrementalPCAParams(Params):
    n_components: int = Field(2, ge=1, description="Components kept.")
    batch_size: int | None = Field(None, ge=1, description="Rows per batch; None uses 5 x the number of features.")

    @field_validator("batch_size")
    @classmethod
    def _batch_holds_components(cls, batch_size: int | None, info: ValidationInfo) -> int | None:
        n_components = info.data.get("n_components")
        if batch_size is not None and n_components is not None and batch_size < n_components:
            raise ValueError(f"a batch must hold at least n_components ({n_components}) rows; raise batch_size")
        return batch_size


class TruncatedSVDParams(Params):
    n_components: int = Field(2, ge=1, description="Components kept; unlike PCA the data is not centred (sparse).")
    n_iter: int = Field(5, ge=1, description="Power iterations of the randomised solver; more is more exact.")


class AutoencoderParams(Params):
    n_components: int = Field(2, ge=1, description="Width of the bottleneck: the codes `transform` returns.")
    hidden_sizes: list[Annotated[int, Field(ge=1)]] = Field(
        [64], description="Units per encoder layer (the decoder mirrors them); [] gives a linear autoencoder."
    )
    activation: Literal["relu", "tanh", "gelu"] = Field("relu", description="Nonlinearity after hidden layers.")
    epochs: int = Field(100, ge=1, description="Most passes over the training rows.")
    batch_size: int = Field(64, ge=1, description="Rows per optimisation step.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    patience: int = Field(10, ge=1, description="Epochs without a better held-out loss before stopping.")


def _pca(p: PCAParams, seed: int) -> Any:
    from sklearn.decomposition import PCA

    return PCA(p.n_components, whiten=p.whiten, random_state=seed)


def _incremental_pca(p: IncrementalPCAParams, seed: int) -> Any:
    from sklearn.decomposition import IncrementalPCA

    return IncrementalPCA(p.n_components, batch_size=p.batch_size)


def _truncated_svd(p: TruncatedSVDParams, seed: int) -> Any:
    from sklearn.decomposition import TruncatedSVD

    return TruncatedSVD(p.n_components, n_iter=p.n_iter, random_state=seed)


def _autoencoder(p: AutoencoderParams, seed: int) -> AutoencoderTransformer:
    return AutoencoderTransformer(**p.model_dump(exclude={"hidden_sizes"}), hidden_sizes=tuple(p.hidden_sizes),
                                  random_state=seed)  # fmt: skip


def _reducer(name: str, params: type[BaseModel], build: Callable[[Any, int], Any], description: str,
             max_size: Callable[[int, int], int], **kwargs: Any) -> UnsupervisedSpec:  # fmt: skip
    return UnsupervisedSpec(name, "dimensionality_reduction", params, build, description, "n_components", max_size,
                            sweep_criterion="explained_variance", **kwargs)  # fmt: skip


UNSUPERVISED.update((s.name, s) for s in [
    _reducer("pca", PCAParams, _pca, "PCA: the directions of largest variance.", lambda n, f: min(n, f)),
    _reducer("incremental_pca", IncrementalPCAParams, _incremental_pca,
             "Incremental PCA: PCA batch by batch, in bounded memory.", lambda n, f: min(n, f)),
    _reducer("truncated_svd", TruncatedSVDParams, _truncated_svd,
             "Truncated SVD: PCA without centring, for sparse features.", lambda n, f: f),
    _reducer("autoencoder", AutoencoderParams, _autoencoder,
             "Autoencoder: a nonlinear bottleneck learned by a small torch network.", lambda n, f: f,
             saved_as="safetensors"),
])  # fmt: skip


# ---------------------------------------------------------------- anomaly detection


class DetectorParams(Params):
    contamination: float = Field(0.05, gt=0, le=0.5, description="Expected share of anomalies: sets the cut.")


class IsolationForestParams(DetectorParams):
    n_estimators: int = Field(200, ge=1, description="Number of isolation trees.")
    max_features: float = Field(1.0, gt=0, le=1, description="Share of features each tree sees.")


class LOFParams(DetectorParams):
    n_neighbors: int = Field(20, ge=1, description="Neighbours whose density a row is compared with.")
    metric: Metric = Field("euclidean", description="Distance between rows.")


class OneClassSVMParams(DetectorParams):
    contamination: float = Field(0.05, gt=0, le=0.5, description="Expected share of anomalies, passed as nu (an "
                                 "upper bound on the training rows flagged).")  # fmt: skip
    kernel: Literal["rbf", "linear", "poly", "sigmoid"] = Field("rbf", description="Kernel of the boundary.")
    gamma: Literal["scale", "auto"] | float = Field("scale", description="RBF width; scale uses 1/(F * var(X)).")


class AutoencoderDetectorParams(AutoencoderParams, DetectorParams):
    pass


def _isolation_forest(p: IsolationForestParams, seed: int) -> Any:
    from sklearn.ensemble import IsolationForest

    return IsolationForest(n_estimators=p.n_estimators, max_features=p.max_features, contamination=p.contamination,
                           random_state=seed)  # fmt: skip


def _lof(p: LOFParams, seed: int) -> Any:
    from sklearn.neighbors import LocalOutlierFactor

    # novelty: score new rows (predict/score_samples); brute: no search tree in the saved file
    return LocalOutlierFactor(n_neighbors=p.n_neighbors, metric=p.metric, contamination=p.contamination,
                              novelty=True, algorithm="brute")  # fmt: skip


def _one_class_svm(p: OneClassSVMParams, seed: int) -> Any:
    from sklearn.svm import OneClassSVM

    return OneClassSVM(nu=p.contamination, kernel=p.kernel, gamma=p.gamma)


def _autoencoder_detector(p: AutoencoderDetectorParams, seed: int) -> AutoencoderDetector:
    return AutoencoderDetector(**p.model_dump(exclude={"hidden_sizes"}), hidden_sizes=tuple(p.hidden_sizes),
                               random_state=seed)  # fmt: skip


UNSUPERVISED.update((s.name, s) for s in [
    UnsupervisedSpec("isolation_forest", "anomaly_detection", IsolationForestParams, _isolation_forest,
                     "Isolation forest: anomalies are isolated by few random splits."),
    UnsupervisedSpec("local_outlier_factor", "anomaly_detection", LOFParams, _lof,
                     "Local outlier factor: anomalies sit in sparser places than their neighbours."),
    UnsupervisedSpec("one_class_svm", "anomaly_detection", OneClassSVMParams, _one_class_svm,
                     "One-class SVM: a kernel boundary around the normal rows."),
    UnsupervisedSpec("autoencoder_detector", "anomaly_detection", AutoencoderDetectorParams, _autoencoder_detector,
                     "Autoencoder reconstruction error: anomalies are rebuilt badly.", saved_as="safetensors"),
])  # fmt: skip


# ---------------------------------------------------------------- registry functions


def list_unsupervised(task: str | None = None) -> list[UnsupervisedSpec]:
    """Every unsupervised model (of `task` when given), sorted by task then name."""
    return sorted((s for s in UNSUPERVISED.values() if task in (None, s.task)), key=lambda s: (s.task, s.name))


def get_unsupervised(name: str) -> UnsupervisedSpec:
    """The registry entry for `name`, or a UserError suggesting the closest name."""
    if name not in UNSUPERVISED:
        raise unknown("unsupervised model", name, UNSUPERVISED)
    return UNSUPERVISED[name]


def parse_unsupervised_params(name: str, params: dict[str, Any]) -> BaseModel:
    """Validate a model's parameters against its params class; errors name the `model.` field."""
    return validate_params(name, get_unsupervised(name).params, params)


def create_unsupervised(name: str, params: dict[str, Any], seed: int) -> Any:
    """An unfitted scikit-learn estimator from a model name, raw parameters and a seed."""
    spec = get_unsupervised(name)
    return spec.build(parse_unsupervised_params(name, params), seed)


def check_size(name: str, params: dict[str, Any], n_rows: int, n_features: int) -> None:
    """Refuse a number of clusters/components the data cannot hold, before a long fit fails on it.

    Raises:
        UserError: naming the field, its value and the largest that fits.
    """
    spec = get_unsupervised(name)
    if spec.size_param is None or spec.max_size is None:
        return
    value = getattr(parse_unsupervised_params(name, params), spec.size_param)
    limit = spec.max_size(n_rows, n_features)
    if value > limit:
        raise UserError(f"model.{spec.size_param} is {value} but {name} on {n_rows} rows x {n_features} features "
                        f"allows at most {limit}; lower it or use more rows")  # fmt: skip


def fit_unsupervised(name: str, params: dict[str, Any], X: np.ndarray, *, seed: int) -> Any:
    """Validate, check the size fits the data, build and fit: the fitted estimator."""
    X = np.asarray(X)
    if X.ndim != 2 or not len(X):
        raise UserError(f"unsupervised model {name} needs a (rows, features) table with rows, got shape {X.shape}")
    check_size(name, params, *X.shape)
    return create_unsupervised(name, params, seed).fit(X)


def anomaly_outputs(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, flags) of a fitted detector: scores higher for more anomalous rows, flags True for anomalies."""
    return -np.asarray(model.score_samples(X), dtype=np.float64), np.asarray(model.predict(X)) == -1


# ---------------------------------------------------------------- save and load


DEFAULT_MODEL = {"clustering": "kmeans", "dimensionality_reduction": "pca", "anomaly_detection": "isolation_forest"}


class UnsupervisedModel(BaseEstimator):
    """The run's `Model` contract over an unsupervised registry entry, so a run trains, saves and loads it
    like any other model; `outputs` gives what the task produces.

    outputs(X) → (prediction, extra): clustering (cluster ids, -1 noise; None), anomaly detection (1/0 flags;
    anomaly scores, higher is more anomalous), dimensionality reduction ((N, k) components; None).
    """

    def __init__(self, name: str = "kmeans", params: dict[str, Any] | None = None, random_state: int = 0) -> None:
        self.name, self.params, self.random_state = name, params, random_state

    @property
    def task(self) -> str:
        return get_unsupervised(self.name).task

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch losses of the autoencoders; empty for the others."""
        estimator = getattr(self, "estimator_", None)
        inner = getattr(estimator, "autoencoder_", estimator)
        return list(getattr(inner, "history_", []) or [])

    def fit(self, X: np.ndarray, y: Any = None, X_val: Any = None, y_val: Any = None, sample_weight: Any = None,
            *, callbacks: Any = ()) -> UnsupervisedModel:  # fmt: skip
        """Fit on the training rows only; targets, validation rows and weights are not used."""
        self.estimator_ = fit_unsupervised(self.name, self.params or {}, X, seed=self.random_state)
        return self

    def _learns_on(self) -> bool:
        return hasattr(create_unsupervised(self.name, self.params or {}, self.random_state), "partial_fit")

    def __sklearn_tags__(self) -> ModelTags:
        tags = super().__sklearn_tags__()
        values = {name: getattr(tags, name) for name in Tags.__dataclass_fields__}
        return ModelTags(**values, trainwell=TrainwellTags(incremental=self._learns_on()))

    @available_if(_learns_on)  # mini-batch k-means, incremental PCA
    def partial_fit(self, X: np.ndarray, y: Any = None, X_val: Any = None, y_val: Any = None,
                    sample_weight: Any = None, *, epochs: int | None = None,
                    **_: Any) -> UnsupervisedModel:  # fmt: skip
        """Learn on from new rows (`epochs` passes) with the estimator's own partial_fit; fits on the first call."""
        if not hasattr(self, "estimator_"):
            return self.fit(X)
        for _ in range(epochs or 1):
            self.estimator_.partial_fit(np.asarray(X))
        return self

    def outputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        check_is_fitted(self)
        if self.task == "anomaly_detection":
            scores, flags = anomaly_outputs(self.estimator_, X)
            return flags.astype(np.int64), scores
        if self.task == "dimensionality_reduction":
            return np.asarray(self.estimator_.transform(X), dtype=np.float64), None
        return np.asarray(self.estimator_.predict(X), dtype=np.int64), None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.outputs(X)[0]

    def predict_proba(self, X: np.ndarray) -> None:
        return None

    def save(self, directory: Path) -> None:
        check_is_fitted(self)
        save_unsupervised(self.estimator_, self.name, self.params or {}, directory)


def _load_model(directory: Path) -> UnsupervisedModel:
    loaded = load_unsupervised(directory)
    seed = json.loads((Path(directory) / "model.json").read_text())["seed"]
    model = UnsupervisedModel(loaded.name, loaded.params, int(seed))
    model.estimator_ = loaded.model
    return model


register_loader("unsupervised", _load_model)


class LoadedUnsupervised(NamedTuple):
    """What `load_unsupervised` returns: the fitted estimator and how it was configured."""

    model: Any
    name: str
    task: str
    params: dict[str, Any]


def save_unsupervised(model: Any, name: str, params: dict[str, Any], directory: str | Path) -> None:
    """model.json (name, task, params, seed) and the fitted state: estimator.skops or weights.safetensors."""
    spec = get_unsupervised(name)
    params = parse_unsupervised_params(name, params).model_dump(mode="json")
    directory = Path(directory)
    if spec.saved_as == "safetensors":
        with atomic_path(directory / WEIGHTS) as tmp:
            save_file(model.weights(), str(tmp))
    else:
        save_skops(model, directory / ESTIMATOR)
    seed = model.get_params().get("random_state")
    write_json(directory / "model.json", {"family": "unsupervised", "name": name, "task": spec.task,
                                          "params": params, "seed": seed if isinstance(seed, int) else 0})  # fmt: skip


def load_unsupervised(directory: str | Path) -> LoadedUnsupervised:
    """Read a model saved by `save_unsupervised`; every damaged or altered file is a UserError naming it."""
    directory = Path(directory)
    path = directory / "model.json"
    try:
        meta = json.loads(path.read_text())
        name, params, seed = meta["name"], meta["params"], int(meta["seed"])
    except FileNotFoundError:
        raise UserError(f"{path} not found; the run folder is incomplete, train it again") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__}: {first_line(exc)}); train again") from None
    spec = get_unsupervised(name)
    if spec.saved_as == "safetensors":
        model = create_unsupervised(name, params, seed).set_weights(load_tensors(directory / WEIGHTS))
    else:
        model = load_skops(directory / ESTIMATOR)
    return LoadedUnsupervised(model, name, spec.task, parse_unsupervised_params(name, params).model_dump(mode="json"))
