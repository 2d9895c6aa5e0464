"""Unsupervised tasks through the whole product: `data.task` changes, and train, the run folder, predict,
evaluate, tune, compare and the report serve clustering, dimensionality reduction and anomaly detection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from trainwell.data.sources import load_dataset
from trainwell.errors import UserError
from trainwell.experiment import train
from trainwell.models.unsupervised import list_unsupervised
from trainwell.run import Run
from trainwell.tune import tune
from trainwell.tune.compare import compare

# small budgets: these tests check the wiring and the numbers the product promises, on the smallest data
FAST = {"autoencoder": {"epochs": 10, "hidden_sizes": [8]}, "autoencoder_detector": {"epochs": 10, "hidden_sizes": [8]},
        "isolation_forest": {"n_estimators": 50}, "dbscan": {"eps": 1.5}}  # fmt: skip


@pytest.fixture(scope="module")
def blobs() -> pd.DataFrame:
    """Four well-separated blobs in five columns, with the true group as a label column."""
    X, y = make_blobs(400, n_features=5, centers=4, cluster_std=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame["group"] = y
    return frame


@pytest.fixture(scope="module")
def outliers() -> pd.DataFrame:
    """A normal cloud with 5% planted far-away rows, labelled 1 in `is_outlier`."""
    rng = np.random.default_rng(0)
    normal, far = rng.normal(size=(380, 4)), rng.uniform(6, 9, size=(20, 4)) * rng.choice([-1, 1], size=(20, 4))
    frame = pd.DataFrame(np.vstack([normal, far]), columns=list("abcd"))
    frame["is_outlier"] = [0] * 380 + [1] * 20
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _train(tmp_path: Path, name: str, **overrides: object) -> Run:
    return train(run_dir=tmp_path / name, quiet=True, **overrides)  # type: ignore[arg-type]


def test_blobs_are_recovered_with_the_right_k_chosen_by_the_sweep(tmp_path: Path, blobs: pd.DataFrame) -> None:
    run = _train(tmp_path, "blobs", data=blobs, **{"data.task": "clustering", "data.target": "group",
                                                   "model.name": "kmeans", "model.n_clusters": "auto"})  # fmt: skip
    sweep = run.metrics["sweep"]
    assert sweep["param"] == "n_clusters" and sweep["criterion"] == "silhouette" and sweep["chosen"] == 4
    assert [p["value"] for p in sweep["curve"]] == list(range(2, 13))
    assert run.config.model.params["n_clusters"] == 4  # the saved config holds the value chosen
    assert run.metrics["test"]["adjusted_rand"] >= 0.9 and run.metrics["test"]["n_clusters"] == 4
    assert run.metrics["diagnosis"]["verdict"] == "good_separation"
    assert "group" not in run.info["input_columns"]  # the label scores the result, never a feature
    assert run.info["guarantees"]["all_ok"] and run.info["test_evaluations"] == 1

    saved = pd.read_csv(run.dir / "predictions.csv")  # every split's outputs, the training rows' included
    assert set(saved["split"]) == {"train", "validation", "test"} and len(saved) == len(blobs)
    assert list(saved.columns) == ["split", "row", "prediction", "y_true"]
    clusters = run.metrics["clusters"]
    assert sum(clusters["sizes"].values()) == run.info["splits"]["train"]["rows"]
    centres = {round(row["f0"]) for row in clusters["profiles"]["rows"]}  # profiles in the user's units
    assert len(centres) >= 3 and max(abs(c) for c in centres) > 3

    again = Run.load(run.dir)
    np.testing.assert_array_equal(again.predict(blobs), run.predict(blobs))
    assert (again.predictions(blobs.drop(columns="group"))["prediction"].to_numpy() ==
            saved.sort_values("row")["prediction"].to_numpy()).all()  # fmt: skip
    scores = again.evaluate(blobs)
    assert scores["adjusted_rand"] >= 0.9 and scores["silhouette"] > 0.5


def test_pca_on_digits_reports_explained_variance_and_its_plot(tmp_path: Path) -> None:
    run = _train(tmp_path, "pca", **{"data.source": "builtin:digits", "data.task": "dimensionality_reduction",
                                     "model.name": "pca", "model.n_components": "auto"})  # fmt: skip
    chosen = run.metrics["sweep"]["chosen"]
    cumulative = run.metrics["train"]["cumulative_explained_variance"]
    assert len(cumulative) == chosen and cumulative[-1] >= 0.95 and cumulative[-2] < 0.95  # the fewest for 95%
    assert 20 <= chosen <= 45
    assert run.metrics["test"]["variance_kept"] > 0.75
    digits = load_dataset("builtin:digits").frame.head(5)
    components = run.predictions(digits)
    assert list(components.columns) == [f"component_{i}" for i in range(1, chosen + 1)] and len(components) == 5
    assert run.metrics["projection"]["method"] == "components"
    report = (run.dir / "report.html").read_text()
    assert 'id="explained-variance"' in report and "<svg" in report
    assert 'class="badge bad"' not in report  # a sealed run's report carries no warning badge


def test_planted_outliers_are_found(tmp_path: Path, outliers: pd.DataFrame) -> None:
    run = _train(tmp_path, "iforest", data=outliers, **{"data.task": "anomaly_detection", "data.target": "is_outlier",
                                                        "model.name": "isolation_forest"})  # fmt: skip
    assert run.metrics["test"]["roc_auc"] >= 0.9 and run.metrics["validation"]["roc_auc"] >= 0.9
    assert 0.02 <= run.metrics["train"]["flagged_share"] <= 0.08
    out = run.predictions(outliers.drop(columns="is_outlier"))
    assert list(out.columns) == ["prediction", "anomaly_score"] and set(out["prediction"]) <= {0, 1}
    top = out["anomaly_score"].to_numpy().argsort()[-20:]
    assert outliers["is_outlier"].to_numpy()[top].mean() >= 0.8  # the highest scores are the planted rows


@pytest.mark.parametrize("spec", list_unsupervised(), ids=lambda s: s.name)
def test_every_unsupervised_model_trains_saves_and_reloads_identically(tmp_path: Path, blobs, outliers, spec) -> None:
    frame = outliers if spec.task == "anomaly_detection" else blobs
    label = "is_outlier" if spec.task == "anomaly_detection" else "group"
    params = {f"model.{k}": v for k, v in FAST.get(spec.name, {}).items()}
    run = _train(tmp_path, spec.name, data=frame, **{"data.task": spec.task, "data.target": label,
                                                     "model.name": spec.name, **params})  # fmt: skip
    new = frame.drop(columns=label).head(60)
    before = run.predictions(new)
    after = Run.load(run.dir).predictions(new)
    pd.testing.assert_frame_equal(before, after)
    assert run.metrics["diagnosis"]["verdict"] and run.metrics["projection"]["rows"]
    json.loads((run.dir / "metrics.json").read_text(), parse_constant=_refuse)  # strict JSON: no NaN


def _refuse(name: str) -> None:
    raise AssertionError(f"metrics.json holds {name}; undefined metrics must be null")


def test_a_run_without_labels_scores_internally_and_reports_no_external_metric(tmp_path: Path, blobs) -> None:
    run = _train(tmp_path, "nolabels", data=blobs.drop(columns="group"),
                 **{"data.task": "clustering", "model.n_clusters": 4})  # fmt: skip
    assert run.info["model"] == "kmeans" and run.info["target"] is None  # auto: k-means for clustering
    assert "adjusted_rand" not in run.metrics["test"] and run.metrics["test"]["silhouette"] > 0.5
    assert "y_true" not in pd.read_csv(run.dir / "predictions.csv").columns


def test_agglomerative_run_keeps_its_merge_tree(tmp_path: Path, blobs) -> None:
    run = _train(tmp_path, "agglo", data=blobs, **{"data.task": "clustering", "data.target": "group",
                                                   "model.name": "agglomerative", "model.n_clusters": 4,
                                                   "model.linkage": "average"})  # fmt: skip
    tree = run.metrics["dendrogram"]
    assert tree["method"] == "average" and len(tree["linkage"]) == tree["rows"] - 1
    assert run.metrics["test"]["adjusted_rand"] >= 0.9


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data.task": "clustering", "model.name": "pca"}, 'model "pca" does dimensionality_reduction, not clustering'),
        ({"data.task": "clustering", "model.name": "dbscan", "model.eps": "auto"}, "auto is not available for dbscan"),
        ({"data.task": "clustering", "model.name": "kmeans", "model.n_clusters": 500}, "allows at most"),
        ({"data.task": "clustering", "model.name": "kmens"}, "kmeans"),
        ({"data.task": "clustering", "fairness.sensitive": ["f0"]}, "fairness.sensitive needs a supervised task"),
        ({"data.task": "anomaly_detection", "data.target": "f0"}, 'label column "f0" must be 0/1'),
        ({"data.task": "clustering", "data.target": "nope"}, 'target "nope" is not a column of dataframe'),
    ],
)
def test_bad_unsupervised_settings_get_one_clear_error(tmp_path: Path, blobs, overrides, message) -> None:
    with pytest.raises(UserError, match=None) as caught:
        _train(tmp_path, "bad", data=blobs, **overrides)
    assert message in str(caught.value)
    assert not (tmp_path / "bad").exists()


def test_tune_and_compare_serve_clustering(tmp_path: Path, blobs) -> None:
    space = {"model.n_clusters": {"type": "int", "low": 2, "high": 6}}
    config = {"name": "t", "data": {"task": "clustering", "target": "group"}, "model": {"name": "kmeans"},
              "tune": {"n_trials": 5, "space": space}}  # fmt: skip
    run = tune(config, data=blobs, run_dir=tmp_path / "tuned", quiet=True)
    assert run.metrics["tuning"]["metric"] == "silhouette" and run.metrics["tuning"]["direction"] == "maximize"
    assert run.metrics["tuning"]["best_params"]["model.n_clusters"] == 4
    assert run.info["test_evaluations"] == 1

    board = compare(data=blobs, run_dir=tmp_path / "compared", quiet=True, models=["kmeans", "gaussian_mixture"],
                    **{"data.task": "clustering", "data.target": "group"}).metrics["leaderboard"]  # fmt: skip
    assert [row["model"] for row in board] and all(row["params"].get("n_clusters", row["params"].get("n_components"))
                                                   == 4 for row in board)  # fmt: skip


def test_ranking_anomaly_detectors_needs_labels(tmp_path: Path, outliers) -> None:
    with pytest.raises(UserError, match="scores against known labels"):
        compare(data=outliers.drop(columns="is_outlier"), run_dir=tmp_path / "c", quiet=True,
                **{"data.task": "anomaly_detection"})  # fmt: skip


def test_cli_clusters_and_predicts(cli, tmp_path: Path, blobs) -> None:
    data = tmp_path / "blobs.csv"
    blobs.to_csv(data, index=False)
    code, out, err = cli("train", "--data", data, "--task", "clustering", "--set", "model.n_clusters=4",
                         "--set", "data.drop=[group]", "--run-dir", tmp_path / "r", "-q")  # fmt: skip
    assert code == 0, err
    assert "kmeans" in out and "no labels" in out and "silhouette" in out
    code, _, err = cli("predict", tmp_path / "r", data, "--output", tmp_path / "p.csv")
    assert code == 0, err
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["prediction"]
    code, _, err = cli("explain", tmp_path / "r", data)
    assert code == 2 and "clustering run" in err
