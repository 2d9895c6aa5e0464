"""The HTML report: every expected section for classifier and regressor runs, self-contained and small."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainwell.errors import UserError
from trainwell.report import html as report_html
from trainwell.report import list_sections, load_run_data, render_report, section, write_report

MAX_BYTES = 2_000_000
ERROR = 'class="section-error"'
CLASSIFIER_SECTIONS = {"metrics": 0, "diagnosis": 0, "learning-curves": 2, "confusion-matrix": 2, "roc": 2,
                       "feature-importance": 1, "tuning": 2, "leaderboard": 0, "data": 0, "splits": 0, "config": 0}
REGRESSOR_SECTIONS = {"metrics": 0, "diagnosis": 0, "learning-curves": 1, "residuals": 3, "feature-importance": 1,
                      "data": 0, "splits": 0, "config": 0}  # fmt: skip


def _external_references(page: str) -> list[str]:
    """Anything a browser would fetch from elsewhere: src/href to a URL, CSS url()/@import, scripts, links."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", page, flags=re.I)
    found += re.findall(r"""url\(\s*["']?(?!#)|@import|<script|<link|<iframe""", page, flags=re.I)  # url(#id): internal
    return found


def test_classifier_report_has_every_section_with_its_plots(classifier_run: Path, parse_sections) -> None:
    path = write_report(classifier_run)
    page = path.read_text()
    found = parse_sections(page)
    assert set(found) == set(CLASSIFIER_SECTIONS)  # no residuals for a classifier
    for sid, svgs in CLASSIFIER_SECTIONS.items():
        assert found[sid]["svg"] >= svgs, sid
    metrics = json.loads((classifier_run / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.4g}" in found["metrics"]["text"]
    diagnosis = metrics["diagnosis"]
    assert diagnosis["verdict"].replace("_", " ") in found["diagnosis"]["text"]
    assert diagnosis["advice"][0] in found["diagnosis"]["text"].replace("&#x27;", "'")
    for cls in ("setosa", "versicolor", "virginica"):
        assert cls in found["confusion-matrix"]["text"] or cls in page  # tick labels live inside the SVG
    assert "16 trials (13 complete, 3 pruned)" in found["tuning"]["text"]
    assert "logistic_regression" in found["leaderboard"]["text"] and "species" in found["data"]["text"]
    assert ERROR not in page and len(page.encode()) < MAX_BYTES
    assert _external_references(page) == []


def test_regressor_report_shows_residuals_and_the_size_learning_curve(regressor_run: Path, parse_sections) -> None:
    page = write_report(regressor_run).read_text()
    found = parse_sections(page)
    assert set(found) == set(REGRESSOR_SECTIONS)  # no confusion matrix or ROC for a regressor
    for sid, svgs in REGRESSOR_SECTIONS.items():
        assert found[sid]["svg"] >= svgs, sid
    assert "Learning curve over training size" in page and "Predicted vs actual" in page
    assert ERROR not in page and len(page.encode()) < MAX_BYTES
    assert _external_references(page) == []


def test_a_run_without_optional_parts_still_reports(binary_run: Path, parse_sections) -> None:
    """No history, diagnosis, importance, tuning or leaderboard: those sections are left out, not broken."""
    page = write_report(binary_run).read_text()
    found = parse_sections(page)
    assert set(found) == {"metrics", "learning-curves", "confusion-matrix", "roc", "data", "splits", "config"}
    assert found["learning-curves"]["svg"] == 1  # train/validation/test scores side by side
    assert "positive: benign" in page  # the binary ROC curve is drawn for the positive class
    assert ERROR not in page and _external_references(page) == []


def test_reports_stay_small_with_many_predictions(regressor_run: Path, tmp_path: Path) -> None:
    """50,000 predictions: scatters are subsampled and rasterized, so the page stays far below 2 MB."""
    run = Path(shutil.copytree(regressor_run, tmp_path / "big"))
    rng = np.random.default_rng(0)
    y = rng.normal(150, 50, 50_000)
    pd.DataFrame({"split": "test", "row": np.arange(len(y)), "y_true": y, "y_pred": y + rng.normal(0, 30, len(y))}
                 ).to_csv(run / "predictions.csv", index=False)  # fmt: skip
    size = write_report(run).stat().st_size
    assert size < MAX_BYTES / 2


def test_rebuild_replaces_the_report_atomically(binary_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(binary_run, tmp_path / "run"))
    (run / "report.html").write_text("old")
    path = write_report(run)
    assert path == run / "report.html" and path.read_text().startswith("<!doctype html>")
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_not_a_run_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no run.json"):
        write_report(tmp_path)
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        write_report(tmp_path)


def test_a_new_section_is_one_function(binary_run: Path, monkeypatch: pytest.MonkeyPatch, parse_sections) -> None:
    """Register a section: it appears at its order with its anchor; a failing one is shown, not fatal."""
    monkeypatch.setattr(report_html, "_SECTIONS", dict(report_html._SECTIONS))
    list_sections()

    @section("example", "Example", order=16)
    def example(data):  # type: ignore[no-untyped-def]
        return f"<p>groups for {data.run['target']}</p>"

    @section("broken", "Broken", order=17)
    def broken(data):  # type: ignore[no-untyped-def]
        raise RuntimeError("no such column")

    with pytest.warns(UserWarning, match="broken"):
        page = render_report(load_run_data(binary_run))
    ids = list(parse_sections(page))
    assert ids[:4] == ["metrics", "example", "broken", "learning-curves"]
    assert '<a href="#example">Example</a>' in page and "groups for diagnosis" in page
    assert ERROR in page and "no such column" in page
    with pytest.raises(ValueError, match="registered twice"):
        section("example", "Again", order=1)(lambda data: None)


def test_report_of_a_run_trained_by_the_pipeline(tmp_path: Path, parse_sections) -> None:
    """The run directory that `trainwell train` writes today gives a complete report."""
    from trainwell.experiment import train

    examples = Path(__file__).resolve().parents[2] / "examples"
    run = train(examples / "iris_logistic.yaml", run_dir=tmp_path / "run", quiet=True)
    page = write_report(run.dir).read_text()
    found = parse_sections(page)
    assert {"metrics", "confusion-matrix", "roc", "data", "splits", "config"} <= set(found)
    assert found["roc"]["svg"] == 2 and ERROR not in page


def test_feature_importance_from_the_explain_module_shape(binary_run: Path, tmp_path: Path, parse_sections) -> None:
    """`{"method", "features"}` as evaluate/explain returns it draws the same bars, naming the method."""
    run = Path(shutil.copytree(binary_run, tmp_path / "run"))
    metrics = json.loads((run / "metrics.json").read_text())
    features = [{"feature": f"f{i}", "importance": 1.0 / (i + 1)} for i in range(30)]
    metrics["feature_importance"] = {"method": "tree_shap", "features": features}
    (run / "metrics.json").write_text(json.dumps(metrics))
    found = parse_sections(write_report(run).read_text())
    assert found["feature-importance"]["svg"] == 1
    assert "Top 20 of 30 features, by mean |SHAP| value (TreeSHAP)." in found["feature-importance"]["text"]


def test_partial_dependence_draws_numbers_in_their_units_and_categories_by_name(
    binary_run: Path, tmp_path: Path, parse_sections
) -> None:
    """A curve saved in the model's units (older runs say no units) is labelled so; categories are ticks."""
    run = Path(shutil.copytree(binary_run, tmp_path / "run"))
    metrics = json.loads((run / "metrics.json").read_text())
    outputs = ["probability of class benign"]
    metrics["partial_dependence"] = [
        {"feature": "num__radius", "grid": [-1.0, 0.0, 1.0], "outputs": outputs, "average": [[0.2, 0.5, 0.7]]},
        {"feature": "texture", "kind": "numeric", "units": "original", "grid": [10.0, 20.0, 30.0],
         "grid_prepared": [-1.0, 0.0, 1.0], "outputs": outputs, "average": [[0.3, 0.4, 0.6]]},
        {"feature": "shape", "kind": "categorical", "units": "categories", "grid": ["round", "oval", "jagged"],
         "outputs": outputs, "average": [[0.9, 0.6, 0.1]]},
    ]  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(metrics))
    page = write_report(run).read_text()
    assert parse_sections(page)["partial-dependence"]["svg"] == 3
    assert "num__radius (prepared units)" in page and "texture (prepared units)" not in page
    assert all(f">{level}<" in page for level in ("round", "oval", "jagged"))  # tick labels inside the SVG
