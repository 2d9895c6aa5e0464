"""The data audit finds each planted problem with the right severity, and stays quiet on clean data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from trainwell.config import AuditConfig
from trainwell.data.audit import Finding, audit_summary, check_fail, run_audit
from trainwell.data.schema import infer_schema
from trainwell.data.sources import load_dataset
from trainwell.errors import UserError


def clean_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Two informative numbers, a category and a noisy yes/no label: nothing wrong with it."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    city = rng.choice(["paris", "lyon", "nice"], n)
    label = np.where(x1 + 0.5 * x2 + (city == "paris") + rng.normal(0, 0.7, n) > 0.3, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "city": city, "label": label})


def random_splits(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return {"train": order[: int(0.7 * n)], "validation": order[int(0.7 * n) : int(0.85 * n)],
            "test": order[int(0.85 * n) :]}  # fmt: skip


def by_check(findings: list[Finding], check: str, column: str | None = "any") -> list[Finding]:
    return [f for f in findings if f.check == check and (column == "any" or f.column == column)]


def test_clean_data_has_no_error_or_warning() -> None:
    frame = clean_frame()
    findings = run_audit(frame, target="label", splits=random_splits(len(frame)))
    assert [f for f in findings if f.severity != "info"] == []


def test_leaked_copy_of_the_target_is_an_error() -> None:
    frame = clean_frame()
    frame["approved"] = frame["label"].map({"yes": "Y", "no": "N"})  # a relabelled copy
    rng = np.random.default_rng(1)
    frame["score"] = (frame["label"] == "yes") * 3.0 + rng.normal(0, 0.3, len(frame))  # not a copy, but perfect
    findings = run_audit(frame, target="label")
    copy = by_check(findings, "leakage", "approved")
    assert len(copy) == 1 and copy[0].severity == "error" and copy[0].evidence["mapping"] == {"N": "no", "Y": "yes"}
    model = by_check(findings, "leakage", "score")
    assert len(model) == 1 and model[0].severity == "error" and model[0].evidence["score"] >= 0.98
    assert {f.column for f in by_check(findings, "leakage")} == {"approved", "score"}  # x1, x2, city are fine


def test_wide_data_still_finds_a_leak_and_label_noise() -> None:
    """Past audit.max_model_features, leakage is modelled on the F-test's top features only and label noise
    on principal components; a planted near-perfect feature and flipped labels must still be found."""
    rng = np.random.default_rng(0)
    n, width = 600, 150
    X = rng.normal(size=(n, width))
    y = (X[:, :5].sum(axis=1) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(width)])
    config = AuditConfig(max_model_features=20)
    leaky = frame.assign(leak=y * 3.0 + rng.normal(0, 0.3, n), label=np.where(y == 1, "yes", "no"))
    assert [f.column for f in by_check(run_audit(leaky, target="label", config=config), "leakage")] == ["leak"]
    flipped = rng.choice(n, 30, replace=False)
    y[flipped] = 1 - y[flipped]
    noise = by_check(run_audit(frame.assign(label=y), target="label", config=config), "label_noise")
    assert len(noise) == 1 and len(set(noise[0].evidence["rows"]) & set(flipped.tolist())) >= 5


def test_monotone_transform_of_a_regression_target_is_an_error() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = 2 * x + rng.normal(0, 1, 300)
    frame = pd.DataFrame({"x": x, "log_price": np.exp(y / 4), "price": y})
    findings = run_audit(frame, target="price", task="regression")
    leak = by_check(findings, "leakage")
    assert [f.column for f in leak] == ["log_price"] and leak[0].severity == "error"
    assert leak[0].evidence["spearman"] == pytest.approx(1.0)


def test_trusted_columns_are_not_checked_for_leakage() -> None:
    frame = clean_frame()
    frame["approved"] = frame["label"]
    findings = run_audit(frame, target="label", config=AuditConfig(trusted_columns=["approved"]))
    assert by_check(findings, "leakage") == []


def test_id_columns_are_flagged() -> None:
    frame = clean_frame()
    rng = np.random.default_rng(0)
    frame["customer_id"] = rng.permutation(len(frame)) + 1000  # typed id by the schema: info
    frame["ref"] = rng.permutation(len(frame))  # an unnamed row number used as a feature: warning
    frame["token"] = [f"t{v:05d}x" for v in rng.permutation(len(frame))]  # inferred as id: info
    frame["code"] = frame["token"].str.upper()  # the same, forced to categorical: warning
    schema = infer_schema(frame, "label", overrides={"code": "categorical"})
    assert schema["customer_id"] == "id"  # inferred from the name and unique integers
    findings = run_audit(frame, target="label", schema=schema)
    severities = {f.column: f.severity for f in by_check(findings, "id_like")}
    assert severities == {"customer_id": "info", "ref": "warning", "token": "info", "code": "warning"}


def test_duplicates_across_splits_are_an_error() -> None:
    frame = clean_frame()
    splits = random_splits(len(frame))
    copies = frame.iloc[splits["train"][:7]]
    frame = pd.concat([frame, copies], ignore_index=True)
    splits["test"] = np.r_[splits["test"], np.arange(len(frame) - 7, len(frame))]
    findings = run_audit(frame, target="label", splits=splits)
    overlap = by_check(findings, "split_overlap")
    assert len(overlap) == 1 and overlap[0].severity == "error"
    assert overlap[0].evidence["shared"] == {"train/test": 7}
    assert findings[0].check == "split_overlap"  # errors sort first
    dup = by_check(findings, "duplicates")
    assert dup[0].evidence["duplicates"] == 7


def test_constant_and_near_constant_columns() -> None:
    frame = clean_frame()
    frame["country"] = "fr"
    frame["rare"] = np.where(np.arange(len(frame)) < 2, 1.0, 0.0)
    findings = run_audit(frame, target="label")
    severities = {f.column: f.severity for f in by_check(findings, "constant")}
    assert severities == {"country": "warning", "rare": "info"}


def test_class_imbalance_is_a_warning() -> None:
    frame = clean_frame(500)
    frame["label"] = np.where(np.arange(500) < 20, "fraud", "ok")
    findings = run_audit(frame, target="label", config=AuditConfig(skip=["label_noise", "leakage"]))
    imbalance = by_check(findings, "imbalance")
    assert len(imbalance) == 1 and imbalance[0].severity == "warning"
    assert imbalance[0].evidence == {"counts": {"ok": 480, "fraud": 20}, "ratio": 24.0}


def test_timestamp_after_the_label_time_is_an_error() -> None:
    frame = clean_frame()
    rng = np.random.default_rng(0)
    decided = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, len(frame)), unit="D")
    frame["decided_at"] = decided
    frame["opened_at"] = (decided - pd.to_timedelta(rng.integers(1, 90, len(frame)), unit="D")).strftime("%Y-%m-%d")
    frame["closed_at"] = decided + pd.to_timedelta(rng.integers(1, 30, len(frame)), unit="D")
    frame.loc[:9, "opened_at"] = None
    schema = infer_schema(frame, "label", drop=["decided_at"])
    assert schema["opened_at"] == schema["closed_at"] == "datetime"
    findings = run_audit(frame, target="label", schema=schema, config=AuditConfig(label_time_column="decided_at"))
    future = by_check(findings, "future_timestamp")
    assert [f.column for f in future] == ["closed_at"] and future[0].severity == "error"
    assert future[0].evidence["later"] == len(frame)
    # the split's time column is the label time when the config names none
    fallback = run_audit(frame, target="label", time_column="decided_at")
    assert [f.column for f in by_check(fallback, "future_timestamp")] == ["closed_at"]


def test_unknown_columns_are_user_errors() -> None:
    with pytest.raises(UserError, match='audit.label_time_column "when"'):
        run_audit(clean_frame(), target="label", config=AuditConfig(label_time_column="when"))
    with pytest.raises(UserError, match='feature column "x3"'):
        run_audit(clean_frame(), target="label", schema={"x1": "numeric", "x3": "numeric"})
    with pytest.raises(UserError, match='target "labl"'):
        run_audit(clean_frame(), target="labl")


def test_flipped_labels_are_suspected() -> None:
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 3))
    y = np.where(x[:, 0] + x[:, 1] > 0, "a", "b")
    flipped = rng.choice(n, 48, replace=False)  # 8%
    y[flipped] = np.where(y[flipped] == "a", "b", "a")
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "y": y})
    noise = by_check(run_audit(frame, target="y"), "label_noise")
    assert len(noise) == 1 and noise[0].severity == "warning"
    found = set(noise[0].evidence["rows"])
    assert len(found & set(flipped)) >= 0.8 * len(found)  # the rows shown are mostly the flipped ones
    assert noise[0].evidence["suspects"] >= 24  # and at least half of the flips are found


def test_shifted_test_feature() -> None:
    frame = clean_frame(600)
    splits = random_splits(600)
    frame.loc[splits["test"], "x1"] += 1.5
    shift = by_check(run_audit(frame, target="label", splits=splits), "shift")
    assert [f.column for f in shift if f.severity == "warning"] == ["x1"]
    assert shift[0].evidence["psi"] > 0.25 and shift[0].evidence["p_value"] < 1e-6


def test_missing_values_and_outliers() -> None:
    frame = clean_frame()
    frame.loc[:159, "x2"] = np.nan  # 40%
    frame.loc[:9, "city"] = None  # 2.5%
    frame.loc[[3, 7], "x1"] = [80.0, -95.0]
    findings = run_audit(frame, target="label")
    assert {f.column: f.severity for f in by_check(findings, "missing")} == {"x2": "warning", "city": "info"}
    outliers = by_check(findings, "outliers", "x1")
    assert outliers[0].severity == "info" and outliers[0].evidence["rows"] == [3, 7]


def test_check_fail_stops_on_errors_only_when_asked() -> None:
    frame = clean_frame()
    frame["leak"] = (frame["label"] == "yes").astype(int)
    frame["country"] = "fr"
    findings = run_audit(frame, target="label")
    with pytest.raises(UserError, match=r'leakage on "leak".*audit.fail_on=never') as err:
        check_fail(findings, "error")
    assert "\n" not in str(err.value)
    check_fail(findings, "never")
    warnings_only = [f for f in findings if f.severity != "error"]
    check_fail(warnings_only, "error")
    with pytest.raises(UserError, match='constant on "country"'):
        check_fail(warnings_only, "warning")


def test_summary_is_plain_json() -> None:
    frame = clean_frame()
    frame["leak"] = frame["label"]
    frame.loc[:5, "x2"] = np.nan
    summary = audit_summary(run_audit(frame, target="label", splits=random_splits(len(frame))))
    json.dumps(summary, allow_nan=False)
    assert summary["counts"]["error"] == 1


def test_config_rejects_unknown_checks() -> None:
    with pytest.raises(ValidationError):
        AuditConfig(skip=["leakag"])  # type: ignore[list-item]


def test_german_credit_has_no_false_errors() -> None:
    frame = load_dataset("builtin:german_credit").frame
    findings = run_audit(frame, target="risk", task="classification", splits=random_splits(len(frame)))
    assert [f for f in findings if f.severity == "error"] == []
    assert by_check(findings, "leakage") == []
