"""Shared fixtures: in-process CLI calls and small test-made datasets."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainwell.cli


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny fits: OpenMP/BLAS and torch threads only stall when other processes share the cores."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run `trainwell ARGS` in-process; returns (exit code, stdout, stderr)."""

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["trainwell", *map(str, args)])
        code = 0
        try:
            trainwell.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Mixed types with missing values and a categorical column; the label depends on all of them."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n).round()
    income = rng.lognormal(10, 0.5, n)
    city = rng.choice(["paris", "lyon", "nice", "lille"], n, p=[0.4, 0.3, 0.2, 0.1])
    member = rng.choice([True, False], n)
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    score = (age - 40) / 12 + np.log(income) - 10 + (city == "paris") * 1.5 + member * 0.8
    label = np.where(score + rng.normal(0, 0.4, n) > 0.9, "yes", "no")
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "member": member,
                          "signup": signup.strftime("%Y-%m-%d"), "label": label})  # fmt: skip
    frame.loc[rng.choice(n, n // 10, replace=False), "age"] = np.nan
    frame.loc[rng.choice(n, n // 10, replace=False), "city"] = None
    return frame


@pytest.fixture(name="mixed_frame", scope="session")
def mixed_frame_fixture() -> Callable[..., pd.DataFrame]:
    """The `mixed_frame` maker, for tests that need frames of other sizes or seeds."""
    return mixed_frame


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    mixed_frame().to_csv(path, index=False)
    return path
