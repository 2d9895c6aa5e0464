"""The run's guarantees: each promise about an honest evaluation is checked on the run itself, not assumed.

`ok` is True when the check passed, False when it failed, None when it could not be checked (e.g. the
leakage check was skipped in the config). `all_ok` is True only when every item passed.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from trainwell.config import ExperimentConfig
from trainwell.data.split import rows_fingerprint

if TYPE_CHECKING:
    from trainwell.data.prepared import Prepared
    from trainwell.data.split import Splits
    from trainwell.models.fitted import Fitted


def check_guarantees(cfg: ExperimentConfig, prep: Prepared, splits: Splits, fitted: Fitted,
                     info: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The `guarantees` block of run.json."""
    items = [
        _prepared_on_train_only(prep, splits, fitted),
        _tested_once(prep),
        _disjoint_splits(splits, prep.audit),
        _no_leakage(cfg, prep.audit),
        _recorded(info),
    ]
    return {"all_ok": all(i["ok"] is True for i in items), "items": items}


def _item(name: str, ok: bool | None, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def _prepared_on_train_only(prep: Prepared, splits: Splits, fitted: Fitted) -> dict[str, Any]:
    """The rows the saved preparation was fitted on are exactly the training split (by fingerprint), none held out."""
    seen, train = rows_fingerprint(prep.frame, fitted.fit_rows), rows_fingerprint(prep.frame, splits.train)
    leaked = np.intersect1d(fitted.fit_rows, np.concatenate([splits.validation, splits.test]))
    ok = seen == train and not len(leaked)
    which = "the" if seen == train else "not the"
    detail = (f"the preparation and model were fitted on {len(fitted.fit_rows)} rows (fingerprint {seen}), "
              f"{which} training split ({len(splits.train)} rows, {train})")  # fmt: skip
    if len(leaked):
        detail += f"; {len(leaked)} of them are validation or test rows"
    return _item("preparation_fitted_on_train_only", ok, detail)


def _tested_once(prep: Prepared) -> dict[str, Any]:
    n = prep.test_evaluations
    return _item("test_evaluated_once", n == 1, f"the test split was evaluated {n} time(s)")


def _disjoint_splits(splits: Splits, audit: dict[str, Any]) -> dict[str, Any]:
    """No row position in two splits, and no identical row content across splits (the audit's overlap check)."""
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    shared = {f"{a}/{b}": int(len(np.intersect1d(parts[a], parts[b]))) for a, b in combinations(parts, 2)}
    overlap = [f for f in audit.get("findings", []) if f["check"] == "split_overlap"]
    ok = not any(shared.values()) and not overlap
    detail = "no row is in two splits" if not any(shared.values()) else f"rows shared: {shared}"
    if overlap:
        detail += f"; but the audit found identical rows across splits: {overlap[0]['message']}"
    return _item("no_rows_shared_across_splits", ok, detail)


def _no_leakage(cfg: ExperimentConfig, audit: dict[str, Any]) -> dict[str, Any]:
    if "leakage" in cfg.audit.skip or not audit:
        return _item("no_leakage_error", None, "not checked: the audit's leakage check was skipped")
    leaks = ("leakage", "future_timestamp")
    errors = [f for f in audit["findings"] if f["check"] in leaks and f["severity"] == "error"]
    if errors:
        return _item("no_leakage_error", False, f'{len(errors)} leakage error(s), e.g. "{errors[0]["column"]}": '
                     f"{errors[0]['message']}")  # fmt: skip
    return _item("no_leakage_error", True, "the audit found no leakage of severity error")


def _recorded(info: dict[str, Any]) -> dict[str, Any]:
    """Seed, split fingerprints, data hash and library versions are in run.json."""
    missing = []
    if not isinstance(info.get("seed"), int):
        missing.append("seed")
    if not all(s.get("fingerprint") for s in info.get("splits", {}).values() if s.get("rows")):
        missing.append("split fingerprints")
    if not info.get("data", {}).get("fingerprint"):
        missing.append("data hash")
    if not {"python", "torch", "scikit-learn", "numpy"} <= set(info.get("versions", {})):
        missing.append("library versions")
    detail = "seed, split fingerprints, data hash and library versions recorded" if not missing else (
        "missing: " + ", ".join(missing))  # fmt: skip
    return _item("provenance_recorded", not missing, detail)
