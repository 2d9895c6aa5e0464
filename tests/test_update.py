"""The deployment loop: feedback → update → a new version → promote / rollback, with a server that follows.

The recipe is tested on a concept that changes: the label rule flips, the frozen model loses its accuracy on the
new rows, and the updated version gets it back and is promoted; rollback returns to v1; a damaged version is
refused; a running server answers with whichever version is active.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from trainwell.errors import UserError
from trainwell.experiment import train
from trainwell.run import Run
from trainwell.serve.app import create_app
from trainwell.track.versions import list_versions, rollback_target, set_active
from trainwell.update import _at_least_as_good, update


def concept(n: int, seed: int, flipped: bool) -> pd.DataFrame:
    """y is "yes" when x1 > 0 (or, once the concept changed, when x1 < 0); x2 is noise."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    yes = (x1 < 0) if flipped else (x1 > 0)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": np.where(yes, "yes", "no")})


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    source = tmp_path / "old.csv"
    concept(400, seed=0, flipped=False).to_csv(source, index=False)
    config = {"name": "c", "data": {"source": str(source), "target": "y"}, "model": {"name": "logistic_regression"},
              "audit": {"trusted_columns": ["x1"]}}  # x1 decides the label by construction: not a leak
    run = train(config, run_dir=tmp_path / "run", quiet=True)
    assert run.metrics["test"]["accuracy"] > 0.95
    return run.dir


def test_a_changed_concept_is_recovered_by_an_update_and_rolled_back(run_dir: Path, cli) -> None:
    new = concept(300, seed=1, flipped=True)
    later = concept(300, seed=2, flipped=True)
    frozen = Run.load(run_dir).evaluate(later)["accuracy"]
    assert frozen < 0.1  # the rule flipped: the frozen model is now almost always wrong

    info = update(run_dir, new, window="new")
    assert info["version"] == "v2" and info["promoted"] and info["parent"] == "v1"
    assert info["evaluation"]["new_rows"]["v2"]["accuracy"] > 0.9 > info["evaluation"]["new_rows"]["v1"]["accuracy"]
    assert info["evaluation"]["original_test"]["v1"]["accuracy"] > 0.95  # the old concept, for the record
    current = Run.load(run_dir)
    assert current.version == "v2" and current.evaluate(later)["accuracy"] > 0.9

    code, out, err = cli("versions", run_dir)
    assert code == 0 and "v2" in out and "yes" in out, err
    code, out, err = cli("rollback", run_dir)
    assert code == 0 and "rolled back to v1" in out, err
    assert Run.load(run_dir).version == "v1" and Run.load(run_dir).evaluate(later)["accuracy"] < 0.1
    code, out, err = cli("promote", run_dir, "v2")
    assert code == 0 and Run.load(run_dir).version == "v2"
    assert rollback_target(run_dir) == "v1"


def test_never_promote_keeps_the_version_and_a_damaged_version_is_refused(run_dir: Path) -> None:
    info = update(run_dir, concept(200, seed=3, flipped=True), promote="never")
    assert not info["promoted"] and Run.load(run_dir).version == "v1"
    assert [v["version"] for v in list_versions(run_dir)] == ["v1", "v2"]
    weights = next((run_dir / "versions" / "v2" / "model").glob("*.skops"))
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(UserError, match="truncated"):
        set_active(run_dir, "v2", "by hand")  # never point at a damaged version
    assert Run.load(run_dir).version == "v1"
    assert _at_least_as_good(0.9, 0.8, "accuracy") and not _at_least_as_good(0.7, 0.8, "accuracy")
    assert _at_least_as_good(1.0, 2.0, "rmse") and not _at_least_as_good(None, 0.5, "accuracy")


def test_feedback_through_the_server_feeds_an_update_and_the_server_follows_the_promotion(run_dir: Path) -> None:
    client = TestClient(create_app(run_dir))
    assert client.get("/health").json()["version"] == "v1"
    rows = concept(150, seed=4, flipped=True)
    sent = client.post("/feedback", json={"records": rows.to_dict("records")})
    assert sent.status_code == 200 and sent.json()["received"] == 150
    unlabelled = client.post("/feedback", json={"records": rows.drop(columns="y").head(2).to_dict("records")})
    assert unlabelled.status_code == 422 and "needs the target" in unlabelled.text
    lines = (run_dir / "feedback.jsonl").read_text().splitlines()
    assert len(lines) == 150 and json.loads(lines[0])["y"] in ("yes", "no")

    info = update(run_dir, run_dir / "feedback.jsonl")
    assert info["promoted"]
    probe = concept(50, seed=5, flipped=True)
    answer = client.post("/predict", json={"records": probe.drop(columns="y").to_dict("records")}).json()
    assert answer["version"] == "v2"  # picked up without a restart
    assert np.mean(np.array(answer["predictions"]) == probe["y"].to_numpy()) > 0.9


def test_update_needs_labels_and_enough_rows(run_dir: Path) -> None:
    with pytest.raises(UserError, match='no target column "y"'):
        update(run_dir, concept(50, seed=6, flipped=True).drop(columns="y"))
    with pytest.raises(UserError, match="at least 10"):
        update(run_dir, concept(5, seed=7, flipped=True))


def test_a_network_learns_on_from_its_weights_through_its_own_preparation(tmp_path: Path) -> None:
    """Incremental models (the `incremental` tag) continue training instead of starting over."""
    source = tmp_path / "old.csv"
    concept(400, seed=0, flipped=False).to_csv(source, index=False)
    config = {"name": "n", "data": {"source": str(source), "target": "y"}, "audit": {"trusted_columns": ["x1"]},
              "model": {"name": "mlp", "hidden_sizes": [16]}, "train": {"epochs": 30, "lr": 0.01}}  # fmt: skip
    run = train(config, run_dir=tmp_path / "run", quiet=True)
    info = update(run.dir, concept(400, seed=1, flipped=True))
    assert info["method"] == "partial_fit" and info["promoted"]
    assert info["evaluation"]["new_rows"]["v2"]["accuracy"] > 0.85 > info["evaluation"]["new_rows"]["v1"]["accuracy"]
    again = Run.load(run.dir)
    assert again.version == "v2" and again.evaluate(concept(200, seed=2, flipped=True))["accuracy"] > 0.85
    from trainwell.data.prepare import load_preparer

    rows = concept(30, seed=3, flipped=True)[["x1", "x2"]]
    kept = load_preparer(run.dir / "versions" / "v2" / "model" / "preparer.skops").transform(rows)
    np.testing.assert_array_equal(kept, run.preparer.transform(rows))  # the same fitted preparation, not refitted


@pytest.mark.parametrize("model", ["sgd", "naive_bayes"])
def test_incremental_classical_models_learn_on_with_partial_fit(tmp_path: Path, model: str) -> None:
    source = tmp_path / "old.csv"
    concept(400, seed=0, flipped=False).to_csv(source, index=False)
    config = {"name": model, "data": {"source": str(source), "target": "y"}, "model": {"name": model},
              "audit": {"trusted_columns": ["x1"]}}  # fmt: skip
    run = train(config, run_dir=tmp_path / "run", quiet=True)
    before = run.model.estimator_  # type: ignore[attr-defined]
    info = update(run.dir, concept(400, seed=1, flipped=True))
    assert info["method"] == "partial_fit" and info["promoted"], info["evaluation"]
    assert info["evaluation"]["new_rows"]["v2"]["accuracy"] > info["evaluation"]["new_rows"]["v1"]["accuracy"] + 0.3
    assert run.model.estimator_ is before  # the deployed v1 object was not touched  # type: ignore[attr-defined]


def test_mini_batch_kmeans_learns_on_when_the_clusters_move(tmp_path: Path) -> None:
    """An unsupervised run updates too: mini-batch k-means follows its clusters with partial_fit, judged by
    silhouette on held-out new rows (no labels needed)."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(600, n_features=2, centers=[[0, 0], [6, 0], [0, 6]], cluster_std=0.7, random_state=0)
    old = pd.DataFrame(X, columns=["a", "b"])
    source = tmp_path / "old.csv"
    old.to_csv(source, index=False)
    config = {"name": "k", "data": {"source": str(source), "task": "clustering"},
              "model": {"name": "minibatch_kmeans", "n_clusters": 3}}  # fmt: skip
    run = train(config, run_dir=tmp_path / "run", quiet=True)
    centres = np.array([[2.0, 0], [8, 0], [2, 6]])  # every cluster drifted 2 to the right
    moved, _ = make_blobs(400, n_features=2, centers=centres, cluster_std=0.7, random_state=1)
    info = update(run.dir, pd.DataFrame(moved, columns=["a", "b"]))
    scores = info["evaluation"]["new_rows"]
    assert info["method"] == "partial_fit" and info["metric"] == "silhouette"
    assert info["promoted"] and scores["v2"]["silhouette"] >= scores["v1"]["silhouette"] > 0.5, scores
    again = Run.load(run.dir)
    learned = again.preparer  # centres live in the prepared (standardised) space: compare there
    new_centres = again.model.estimator_.cluster_centers_  # type: ignore[attr-defined]
    old_centres = run.model.estimator_.cluster_centers_  # type: ignore[attr-defined]
    target = learned.transform(pd.DataFrame(centres, columns=["a", "b"]))
    def gap(found: np.ndarray) -> float:
        return float(np.mean([np.min(np.linalg.norm(found - t, axis=1)) for t in target]))
    assert gap(new_centres) < gap(old_centres) / 2  # the centres followed the clusters
