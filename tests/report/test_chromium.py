"""The report opened in a real browser (headless Chromium, offline): sections and plots are there and painted.

CI installs the browser with `apt-get update && apt-get install -y chromium`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from trainwell.report import write_report
from trainwell.report.plots import TRAIN, VAL

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH; install it: apt-get update && apt-get install -y chromium"
)
# section id -> plots it must hold once the browser has parsed the page
EXPECTED = {
    "iris": {"metrics": 0, "diagnosis": 0, "learning-curves": 2, "confusion-matrix": 2, "roc": 2,
             "feature-importance": 1, "tuning": 2, "leaderboard": 0, "data": 0, "splits": 0, "config": 0},
    "diabetes": {"metrics": 0, "diagnosis": 0, "learning-curves": 1, "residuals": 3, "feature-importance": 1,
                 "data": 0, "splits": 0, "config": 0},
}  # fmt: skip


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with its own profile folder (parallel runs do not share one), no network needed."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def test_chromium_renders_every_section_with_its_plots(classifier_run: Path, regressor_run: Path, tmp_path: Path,
                                                       parse_sections) -> None:  # fmt: skip
    for run in (classifier_run, regressor_run):
        page = write_report(run)
        dom = _chromium(tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
        found = parse_sections(dom)
        assert set(found) == set(EXPECTED[run.name]), run.name
        for sid, plots in EXPECTED[run.name].items():
            assert found[sid]["svg"] >= plots, (run.name, sid)
        assert "section-error" not in "".join(f["text"] for f in found.values())


def test_chromium_paints_the_plots_on_a_laptop_sized_page(classifier_run: Path, tmp_path: Path) -> None:
    """A 1366-pixel-wide screenshot: the page is not blank and the train/validation curve colours are painted."""
    from matplotlib.image import imread

    shot = tmp_path / "report.png"
    _chromium(tmp_path / "profile", "--window-size=1366,4200", f"--screenshot={shot}",
              write_report(classifier_run).as_uri())  # fmt: skip
    pixels = (imread(shot)[..., :3] * 255).astype(int)  # (H, W, 3)
    assert pixels.shape[1] == 1366
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert len(np.unique(packed)) > 200  # text, plots and colours, not an empty page
    for colour in (TRAIN, VAL):
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        near = (np.abs(pixels - rgb).sum(axis=2) < 40).sum()
        assert near > 300, colour  # curves and bars in that colour were drawn
