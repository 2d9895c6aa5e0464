"""The report of unsupervised runs: clusters, projection, the k sweep, explained variance, dendrogram, anomalies.

Run folders are written here in the layout the training code writes, from scikit-learn models fitted on small
real data: blobs with k-means (labels given, k swept by silhouette), digits with PCA (components swept by
explained variance), a blob with planted outliers and an isolation forest, agglomerative clustering with its ward
linkage, DBSCAN leaving noise with no label column. Built with scikit-learn directly, not trainwell's unsupervised
modules: those import torch, a few seconds more for a file that needs none of it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import linkage
from sklearn import metrics as skm
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from trainwell.report import load_run_data, render_report
from trainwell.report import unsupervised as report  # importing it registers its sections

SPLITS = ("train", "validation", "test")
SECTIONS = (report.clusters_section, report.variance_section, report.anomaly_section, report.projection_section,
            report.dendrogram_section, report.sweep_section)  # fmt: skip
ERROR = 'class="section-error"'
CENTRES = np.array([[25.0, 30_000.0], [45.0, 60_000.0], [65.0, 45_000.0]])  # age, income of each blob
SPREAD = np.array([4.0, 5_000.0])  # their standard deviation


# ---------------------------------------------------------------- writing run folders


def _split(n: int) -> dict[str, np.ndarray]:
    """70/15/15 of row ids 0..n-1, shuffled with a fixed seed."""
    rows = np.random.default_rng(0).permutation(n)
    a, b = int(n * 0.7), int(n * 0.85)
    return {"train": np.sort(rows[:a]), "validation": np.sort(rows[a:b]), "test": np.sort(rows[b:])}


def _json_ready(value: Any) -> Any:
    """NaN as null and numpy scalars as Python ones, as the training code stores metrics."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _write(run_dir: Path, *, task: str, model: str, schema: dict[str, str], metrics: dict[str, Any],
           predictions: pd.DataFrame, target: str | None = None, classes: list[Any] | None = None) -> Path:  # fmt: skip
    """run.json, metrics.json, predictions.csv and a minimal config.yaml, in the unsupervised run layout."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"name: {run_dir.name}\n")
    columns = [c for c in schema if c != target]
    info = {
        "status": "complete", "name": run_dir.name, "task": task, "model": model, "target": target,
        "classes": classes or [], "schema": schema, "input_columns": columns,
        "features": [c for c in columns if schema[c] == "numeric"],
        "data": {"source": f"builtin:{run_dir.name}", "rows": len(predictions), "columns": len(schema)},
        "splits": {s: {"rows": int((predictions["split"] == s).sum())} for s in SPLITS},
        "started": "2026-11-23T10:00:00", "duration_s": 1.0,
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(info, indent=2))
    (run_dir / "metrics.json").write_text(json.dumps(_json_ready(metrics), indent=2, allow_nan=False))
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    return run_dir


def _predictions(parts: dict[str, np.ndarray], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """predictions.csv rows, split by split: `columns` holds one value per row id (indexed by row id)."""
    frames = [pd.DataFrame({"split": s, "row": rows, **{k: v[rows] for k, v in columns.items()}})
              for s, rows in parts.items()]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _projection(X: np.ndarray) -> dict[str, Any]:
    """A 2-D PCA view of every row, as the training code stores it for clustering and anomaly runs."""
    xy = PCA(2, random_state=0).fit_transform(X)
    return {"method": "pca", "rows": list(range(len(X))), "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()}


def _cluster_block(raw: pd.DataFrame, labels: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """Sizes and profiles on the training rows: numeric means in original units, the mode otherwise."""
    frame = raw.iloc[rows].assign(_cluster=labels[rows])
    profiles = []
    for cluster, group in frame.groupby("_cluster"):
        row: dict[str, Any] = {"cluster": str(cluster), "size": len(group)}
        for column in raw.columns:
            numeric = pd.api.types.is_numeric_dtype(raw[column])
            row[column] = float(group[column].mean()) if numeric else str(group[column].mode().iloc[0])
        profiles.append(row)
    sizes = {str(k): int(v) for k, v in frame["_cluster"].value_counts().items()}
    return {"split": "train", "sizes": sizes, "profiles": {"columns": list(raw.columns), "rows": profiles}}


def _clustering_metrics(X: np.ndarray, labels: np.ndarray, parts: dict[str, np.ndarray],
                        y: np.ndarray | None) -> dict[str, Any]:  # fmt: skip
    """Per split: internal scores on the rows not marked noise and, with a label, the agreement with it."""
    metrics: dict[str, Any] = {"skipped": {}}
    for split, rows in parts.items():
        found, clustered = labels[rows], labels[rows] != -1
        k = len(np.unique(found[clustered]))
        m: dict[str, Any] = {"n_clusters": k, "noise_share": float(np.mean(~clustered))}
        internal = ("silhouette", "davies_bouldin", "calinski_harabasz")
        metrics["skipped"][split] = {}
        if 2 <= k < clustered.sum():
            Xc, lc = X[rows][clustered], found[clustered]
            scores = (skm.silhouette_score, skm.davies_bouldin_score, skm.calinski_harabasz_score)
            m |= {name: float(score(Xc, lc)) for name, score in zip(internal, scores, strict=True)}
        else:
            m |= dict.fromkeys(internal)
            metrics["skipped"][split] = dict.fromkeys(internal, "a single cluster: there is nothing to separate")
        if y is not None:
            m |= {"adjusted_rand": skm.adjusted_rand_score(y[rows], found),
                  "normalized_mutual_info": skm.normalized_mutual_info_score(y[rows], found),
                  "homogeneity": skm.homogeneity_score(y[rows], found),
                  "completeness": skm.completeness_score(y[rows], found)}  # fmt: skip
        metrics[split] = m
    metrics["diagnosis"] = _diagnosis("good_separation", "the clusters are compact and apart", metrics["validation"])
    return metrics


def _diagnosis(verdict: str, summary: str, evidence: dict[str, Any]) -> dict[str, Any]:
    numbers = {k: v for k, v in evidence.items() if isinstance(v, (int, float))}
    return {"verdict": verdict, "summary": summary, "evidence": numbers, "advice": ["check against the rows"]}


def _nearest(reference: np.ndarray, labels: np.ndarray, X: np.ndarray, radius: float | None = None) -> np.ndarray:
    """Labels of new rows from their nearest reference row (noise beyond `radius`), as trainwell predicts them."""
    knn = KNeighborsClassifier(1).fit(reference, labels)
    found = knn.predict(X)
    return found if radius is None else np.where(knn.kneighbors(X, 1)[0][:, 0] <= radius, found, -1)


def make_blobs_run(run_dir: Path) -> Path:
    """Three blobs of people (age, income, city); k-means with k chosen by silhouette; the blob is the label."""
    Z, blob = make_blobs(n_samples=300, centers=CENTRES / SPREAD, cluster_std=1.0, random_state=0)
    rng = np.random.default_rng(0)
    city = np.array(["Paris", "Lyon", "Nice"])[np.where(rng.random(300) < 0.9, blob, rng.integers(0, 3, 300))]
    raw = pd.DataFrame({"age": Z[:, 0] * SPREAD[0], "income": Z[:, 1] * SPREAD[1], "city": city})
    parts = _split(len(raw))
    X = StandardScaler().fit(raw.iloc[parts["train"], :2]).transform(raw.iloc[:, :2])
    train = X[parts["train"]]
    curve = [{"value": k, "score": float(skm.silhouette_score(train, KMeans(k, n_init=2, random_state=0)
                                                              .fit_predict(train)))} for k in range(2, 7)]  # fmt: skip
    chosen = int(max(curve, key=lambda p: p["score"])["value"])
    labels = KMeans(chosen, n_init=2, random_state=0).fit(train).predict(X)
    metrics = _clustering_metrics(X, labels, parts, blob)
    metrics |= {"clusters": _cluster_block(raw, labels, parts["train"]), "projection": _projection(X),
                "sweep": {"param": "n_clusters", "criterion": "silhouette", "chosen": chosen, "curve": curve,
                          "skipped": [], "note": ""}}  # fmt: skip
    predictions = _predictions(parts, {"prediction": labels, "y_true": blob})
    return _write(run_dir, task="clustering", model="kmeans", target="blob", classes=[0, 1, 2],
                  schema={"age": "numeric", "income": "numeric", "city": "categorical", "blob": "categorical"},
                  metrics=metrics, predictions=predictions)  # fmt: skip


def make_agglomerative_run(run_dir: Path) -> Path:
    """Agglomerative (ward) on 150 rows, with the scipy linkage behind its dendrogram; no label, no sweep."""
    X, _ = make_blobs(n_samples=150, centers=4, n_features=3, random_state=1)
    raw = pd.DataFrame(X, columns=["a", "b", "c"])
    parts = _split(len(X))
    X = StandardScaler().fit(X[parts["train"]]).transform(X)
    train = X[parts["train"]]
    labels = _nearest(train, AgglomerativeClustering(4, linkage="ward").fit_predict(train), X)
    metrics = _clustering_metrics(X, labels, parts, None)
    tree = {"method": "ward", "rows": len(train), "linkage": linkage(train, "ward").tolist()}  # (rows - 1, 4)
    metrics |= {"clusters": _cluster_block(raw, labels, parts["train"]), "projection": _projection(X)}
    metrics["dendrogram"] = tree
    return _write(run_dir, task="clustering", model="agglomerative", schema=dict.fromkeys(raw.columns, "numeric"),
                  metrics=metrics, predictions=_predictions(parts, {"prediction": labels}))  # fmt: skip


def make_dbscan_run(run_dir: Path) -> Path:
    """Two dense blobs and scattered points DBSCAN leaves as noise (-1); nothing optional: no label, no sweep."""
    dense, _ = make_blobs(n_samples=180, centers=[[0, 0], [6, 6]], cluster_std=0.5, random_state=2)
    X = np.vstack([dense, np.random.default_rng(2).uniform(-6, 12, size=(20, 2))])
    parts = _split(len(X))
    train = X[parts["train"]]
    dbscan = DBSCAN(eps=0.6, min_samples=5).fit(train)
    core = dbscan.core_sample_indices_
    labels = _nearest(train[core], dbscan.labels_[core], X, radius=0.6)
    metrics = _clustering_metrics(X, labels, parts, None)
    raw = pd.DataFrame(X, columns=["x1", "x2"])
    metrics |= {"clusters": _cluster_block(raw, labels, parts["train"]), "projection": _projection(X)}
    return _write(run_dir, task="clustering", model="dbscan", schema=dict.fromkeys(raw.columns, "numeric"),
                  metrics=metrics, predictions=_predictions(parts, {"prediction": labels}))  # fmt: skip


def _reduction_metrics(pca: PCA, X: np.ndarray) -> dict[str, Any]:
    """Variance per component (fitted on train) and kept when reconstructing these rows."""
    error = np.square(X - pca.inverse_transform(pca.transform(X))).sum(axis=1)  # (N,)
    return {"n_components": int(pca.n_components_), "explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
            "cumulative_explained_variance": np.cumsum(pca.explained_variance_ratio_).tolist(),
            "reconstruction_error": float(error.mean() / X.shape[1]),
            "variance_kept": float(1 - error.sum() / np.square(X - X.mean(axis=0)).sum())}  # fmt: skip


def make_digits_run(run_dir: Path) -> Path:
    """600 digits, PCA with the fewest components keeping 95% of the variance; the digit is the label."""
    data = load_digits()
    X, y = data.data[:600], data.target[:600]
    parts = _split(len(X))
    X = StandardScaler().fit(X[parts["train"]]).transform(X)
    cumulative = np.cumsum(PCA(40, random_state=0).fit(X[parts["train"]]).explained_variance_ratio_)
    curve = [{"value": k, "score": float(cumulative[k - 1])} for k in (5, 10, 20, 30, 40)]
    chosen = next((p["value"] for p in curve if p["score"] >= 0.95), 40)
    pca = PCA(chosen, random_state=0).fit(X[parts["train"]])
    metrics: dict[str, Any] = {s: _reduction_metrics(pca, X[rows]) for s, rows in parts.items()}
    metrics["diagnosis"] = _diagnosis("enough_components", "enough components", metrics["validation"])
    codes = pca.transform(X)  # (N, k)
    metrics |= {"sweep": {"param": "n_components", "criterion": "explained_variance", "chosen": chosen,
                          "curve": curve, "skipped": [50], "note": ""},
                "projection": {"method": "components", "rows": list(range(len(X))), "x": codes[:, 0].tolist(),
                               "y": codes[:, 1].tolist()}}  # fmt: skip
    columns = {f"component_{i + 1}": codes[:, i] for i in range(codes.shape[1])} | {"y_true": y}
    return _write(run_dir, task="dimensionality_reduction", model="pca", target="digit", classes=list(range(10)),
                  schema={**{f"pixel_{i}": "numeric" for i in range(64)}, "digit": "categorical"},
                  metrics=metrics, predictions=_predictions(parts, columns))  # fmt: skip


def _anomaly_metrics(scores: np.ndarray, flags: np.ndarray, truth: np.ndarray) -> tuple[dict[str, Any], dict]:
    """Share flagged and how well the scores rank the planted outliers; (metrics, skipped reasons)."""
    top = max(1, round(0.05 * len(scores)))
    m = {"flagged_share": float(flags.mean()), "contamination": 0.05,
         "precision_at_contamination": float(truth[np.argsort(-scores)[:top]].mean()),
         "flag_precision": float(truth[flags].mean()) if flags.any() else None,
         "flag_recall": float(flags[truth].mean()) if truth.any() else None}  # fmt: skip
    if truth.all() or not truth.any():
        reason = "the label column holds one class only"
        return m | {"roc_auc": None, "average_precision": None}, {"roc_auc": reason, "average_precision": reason}
    return m | {"roc_auc": skm.roc_auc_score(truth, scores),
                "average_precision": skm.average_precision_score(truth, scores)}, {}  # fmt: skip


def make_outliers_run(run_dir: Path) -> Path:
    """380 normal rows around the origin and 20 planted far away; an isolation forest expecting 5%."""
    rng = np.random.default_rng(3)
    angle = rng.uniform(0, 2 * np.pi, 20)
    far = np.c_[np.cos(angle), np.sin(angle)] * rng.uniform(5, 8, (20, 1))
    X = np.vstack([rng.normal(0, 1, (380, 2)), far])
    y = np.r_[np.zeros(380, int), np.ones(20, int)]
    parts = _split(len(X))
    forest = IsolationForest(n_estimators=50, contamination=0.05, random_state=0).fit(X[parts["train"]])
    scores, flags = -forest.score_samples(X), forest.predict(X) == -1  # higher: more anomalous
    metrics: dict[str, Any] = {"skipped": {}}
    for split, rows in parts.items():
        metrics[split], metrics["skipped"][split] = _anomaly_metrics(scores[rows], flags[rows], y[rows] == 1)
    metrics["diagnosis"] = _diagnosis("as_expected", "as many flagged as expected", metrics["validation"])
    metrics["projection"] = _projection(X)
    predictions = _predictions(parts, {"prediction": flags.astype(int), "anomaly_score": scores, "y_true": y})
    return _write(run_dir, task="anomaly_detection", model="isolation_forest", target="fraud",
                  schema={"x1": "numeric", "x2": "numeric", "fraud": "categorical"}, metrics=metrics,
                  predictions=predictions)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unsupervised")
    makers = {"blobs": make_blobs_run, "agglomerative": make_agglomerative_run, "dbscan": make_dbscan_run,
              "digits": make_digits_run, "outliers": make_outliers_run}  # fmt: skip
    with threadpool_limits(limits=1):  # tiny fits: BLAS threads only stall when other processes share the cores
        return {name: make(root / name) for name, make in makers.items()}


@pytest.fixture(scope="module")
def pages(runs: dict[str, Path]) -> dict[str, str]:
    """Each run's whole report page, rendered once for every test here."""
    return {name: render_report(load_run_data(run)) for name, run in runs.items()}


def _html(page: str, sid: str) -> str:
    """The HTML inside one <section>, '' when the page has none with that id."""
    found = re.search(f'<section id="{sid}">(.*?)</section>', page, flags=re.S)
    return found[1] if found else ""


def _edit_metrics(run: Path, copy_to: Path, change: Any) -> Path:
    """A copy of `run` whose metrics.json went through `change(metrics)`."""
    copy = Path(shutil.copytree(run, copy_to))
    metrics = json.loads((copy / "metrics.json").read_text())
    change(metrics)
    (copy / "metrics.json").write_text(json.dumps(metrics))
    return copy


# ---------------------------------------------------------------- the sections


@pytest.mark.parametrize(("name", "expected", "absent"), [
    ("blobs", {"clusters", "projection", "choosing-k"}, {"dendrogram", "explained-variance", "anomaly-scores"}),
    ("agglomerative", {"clusters", "projection", "dendrogram"}, {"choosing-k", "anomaly-scores"}),
    ("dbscan", {"clusters", "projection"}, {"choosing-k", "dendrogram", "explained-variance"}),
    ("digits", {"explained-variance", "projection", "choosing-k"}, {"clusters", "dendrogram", "anomaly-scores"}),
    ("outliers", {"anomaly-scores", "projection"}, {"choosing-k", "clusters", "explained-variance", "dendrogram"}),
])  # fmt: skip
def test_each_task_gets_its_sections_with_plots(pages: dict[str, str], parse_sections, name: str,
                                                expected: set[str], absent: set[str]) -> None:  # fmt: skip
    """The whole page renders without a broken section; the task's sections hold one plot each, others are left out."""
    found = parse_sections(pages[name])
    assert ERROR not in pages[name]
    assert {sid: found[sid]["svg"] for sid in expected if sid in found} == dict.fromkeys(expected, 1)
    assert not absent & set(found)
    assert {"metrics", "diagnosis", "data", "config"} <= set(found)


def test_sections_follow_metrics_and_diagnosis(pages: dict[str, str], parse_sections) -> None:
    ids = list(parse_sections(pages["blobs"]))
    assert ids.index("diagnosis") < ids.index("clusters") < ids.index("projection") < ids.index("choosing-k")
    assert ids.index("choosing-k") < ids.index("data")


def test_cluster_profiles_are_in_original_units(runs: dict[str, Path], pages: dict[str, str]) -> None:
    """Each k-means cluster's mean age is near the centre of the blob it found; the city is its blob's."""
    profiles = load_run_data(runs["blobs"]).metrics["clusters"]["profiles"]["rows"]
    assert len(profiles) == 3  # the sweep found the three blobs
    assert np.allclose(sorted(row["age"] for row in profiles), CENTRES[:, 0], atol=2.0)
    assert {row["city"] for row in profiles} == {"Paris", "Lyon", "Nice"}
    body = _html(pages["blobs"], "clusters")
    assert "3 clusters over 210 train rows." in body and "On the train rows" in body
    for row in profiles:
        assert f'<td class="num">{row["age"]:.4g}</td>' in body  # shown as stored: years, not standardised units


def test_noise_is_grey_and_named(runs: dict[str, Path], pages: dict[str, str]) -> None:
    noise = int(load_run_data(runs["dbscan"]).metrics["clusters"]["sizes"]["-1"])
    assert noise > 0  # the scattered points
    body = _html(pages["dbscan"], "clusters")
    assert f"; {noise} (" in body and "are noise (-1)" in body
    assert "<td>noise</td>" in body and ">noise</text>" in body  # the profile row and the bar's tick label
    assert "Coloured by cluster; noise in grey." in _html(pages["dbscan"], "projection")


def test_sweep_caption_names_criterion_direction_and_choice(runs: dict[str, Path], pages: dict[str, str]) -> None:
    assert "silhouette (higher is better); chosen: n_clusters = 3." in _html(pages["blobs"], "choosing-k")
    chosen = load_run_data(runs["digits"]).metrics["sweep"]["chosen"]
    body = _html(pages["digits"], "choosing-k")
    assert f"the smallest n_components keeping 95% of the variance wins); chosen: n_components = {chosen}." in body
    assert "Not tried, too large for the data: 50." in body


def test_explained_variance_for_pca_and_a_model_without_ratios(runs: dict[str, Path], pages: dict[str, str],
                                                               tmp_path: Path) -> None:  # fmt: skip
    """PCA: bars, cumulative line and the components needed for 95%; an autoencoder: a sentence with reasons."""
    digits = load_run_data(runs["digits"])
    cumulative = np.cumsum(digits.metrics["train"]["explained_variance_ratio"])
    body = _html(pages["digits"], "explained-variance")
    assert f"{len(cumulative)} components keep {cumulative[-1]:.1%} of the variance" in body
    assert f"the first {int(np.argmax(cumulative >= 0.95)) + 1} keep 95%" in body and "test: variance kept" in body

    def as_autoencoder(metrics: dict[str, Any]) -> None:
        for split in SPLITS:
            del metrics[split]["explained_variance_ratio"], metrics[split]["cumulative_explained_variance"]
        metrics["test"]["variance_kept"] = None
        metrics["skipped"] = {"test": {"variance_kept": "the test rows hold constant features only"}}
        del metrics["sweep"]

    autoencoder = load_run_data(_edit_metrics(runs["digits"], tmp_path / "autoencoder", as_autoencoder))
    body = report.variance_section(autoencoder)
    assert body is not None and "<svg" not in body
    assert f"{len(cumulative)} components; this model gives no variance per component" in body
    assert f"train: variance kept {digits.metrics['train']['variance_kept']:.1%}" in body
    assert "test: variance kept undefined (the test rows hold constant features only)" in body
    assert report.sweep_section(autoencoder) is None


def test_dendrogram_is_truncated_to_the_last_merges(pages: dict[str, str]) -> None:
    body = _html(pages["agglomerative"], "dendrogram")
    assert "Ward linkage over a sample of 105 training rows" in body and "last 30 merges" in body


def test_anomaly_scores_show_the_cut_and_the_top_rows(runs: dict[str, Path], pages: dict[str, str]) -> None:
    preds = load_run_data(runs["outliers"]).predictions
    assert preds is not None
    body = _html(pages["outliers"], "anomaly-scores")
    flagged = int((preds["prediction"] == 1).sum())
    assert "On the test split (60 rows)" in body and f"{flagged} of 400 rows flagged over all splits" in body
    assert ">normal</text>" in body and ">anomaly</text>" in body and ">flag cut</text>" in body  # the legend
    top = preds.nlargest(10, "anomaly_score")
    assert (top["y_true"] == 1).mean() >= 0.8  # the planted outliers score highest
    table = body[body.index("<table") :]
    assert table.count("<tr>") == 1 + 10 and "fraud</th>" in table
    assert table.index(f'<td class="num">{top["row"].iloc[0]}</td>') < table.index(f">{top['row'].iloc[1]}<")
    assert "Coloured by anomaly score; flagged rows ringed in red." in _html(pages["outliers"], "projection")


def test_projection_axes_and_colours(pages: dict[str, str]) -> None:
    blobs = _html(pages["blobs"], "projection")
    assert ">PC 1</text>" in blobs and "300 rows on the first two principal components" in blobs
    digits = _html(pages["digits"], "projection")
    assert ">component 1</text>" in digits and "Coloured by digit." in digits


def test_supervised_runs_get_none_of_these_sections(binary_run: Path, regressor_run: Path) -> None:
    for run in (binary_run, regressor_run):
        data = load_run_data(run)
        assert [render(data) for render in SECTIONS] == [None] * len(SECTIONS)


def test_null_metrics_and_scores_do_not_break_the_page(runs: dict[str, Path], tmp_path: Path,
                                                       parse_sections) -> None:  # fmt: skip
    """A null silhouette, a null sweep score and a null projection point: shown as gaps and dashes."""

    def nulls(metrics: dict[str, Any]) -> None:
        metrics["test"]["silhouette"] = None
        metrics["skipped"]["test"]["silhouette"] = "a single cluster: there is nothing to separate"
        metrics["sweep"]["curve"][-1]["score"] = None
        metrics["sweep"]["note"] = "kept the smallest tie"
        metrics["projection"]["x"][0] = None

    page = render_report(load_run_data(_edit_metrics(runs["blobs"], tmp_path / "nulls", nulls)))
    found = parse_sections(page)
    assert ERROR not in page
    assert "Undefined for 6 (gaps in the line). kept the smallest tie." in found["choosing-k"]["text"]
    assert "299 rows on the first two" in found["projection"]["text"]
    assert found["clusters"]["svg"] == found["projection"]["svg"] == found["choosing-k"]["svg"] == 1
