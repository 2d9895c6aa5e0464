"""Schema inference gives each column of a mixed table its kind; overrides win; mistakes name the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainwell.data.schema import infer_schema, infer_task
from trainwell.errors import UserError

N = 60


def mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "plot", "acting", "great", "awful", "film", "slow", "fun", "long"]
    return pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + N),
        "age": np.where(rng.random(N) < 0.2, np.nan, rng.normal(40, 10, N)),
        "income": rng.integers(10_000, 90_000, N),
        "city": rng.choice(["paris", "lyon", "nice", None], N),
        "member": rng.choice(["yes", "no"], N),
        "churned_before": rng.integers(0, 2, N),
        "verified": rng.random(N) < 0.5,
        "signup": pd.date_range("2021-01-01", periods=N, freq="37h").strftime("%Y-%m-%d %H:%M"),
        "last_seen": pd.date_range("2022-06-01", periods=N, freq="D"),
        "review": [" ".join(rng.choice(words, 8)) for _ in range(N)],
        "token": [f"tok{v:08x}" for v in rng.permutation(10**6)[:N]],
        "score_text": [str(v) if i % 10 else "?" for i, v in enumerate(rng.integers(0, 100, N))],
        "Unnamed: 0": np.arange(N),
        "label": rng.choice(["a", "b"], N),
    })  # fmt: skip


EXPECTED = {
    "customer_id": "id", "age": "numeric", "income": "numeric", "city": "categorical", "member": "boolean",
    "churned_before": "boolean", "verified": "boolean", "signup": "datetime", "last_seen": "datetime",
    "review": "text", "token": "id", "score_text": "numeric", "Unnamed: 0": "id",
}  # fmt: skip


def test_mixed_frame_types_in_frame_order() -> None:
    schema = infer_schema(mixed_frame(), "label")
    assert schema == EXPECTED
    assert list(schema) == list(EXPECTED)  # frame order, target excluded


def test_overrides_win_and_drop_and_features_select() -> None:
    frame = mixed_frame()
    schema = infer_schema(frame, "label", overrides={"income": "categorical", "churned_before": "numeric"},
                          drop=["token", "review"])  # fmt: skip
    assert schema["income"] == "categorical" and schema["churned_before"] == "numeric"
    assert "token" not in schema and "review" not in schema and "label" not in schema
    chosen = infer_schema(frame, "label", features=["city", "age"], drop=["city"])
    assert chosen == {"age": "numeric"}


def test_non_id_names_with_unique_integers_stay_numeric() -> None:
    frame = pd.DataFrame({"width": np.arange(50), "video": np.arange(50), "y": np.zeros(50)})
    assert infer_schema(frame, "y") == {"width": "numeric", "video": "numeric"}


def test_repeated_ids_are_not_ids() -> None:
    frame = pd.DataFrame({"store_id": np.arange(50) % 5, "y": np.zeros(50)})
    assert infer_schema(frame, "y") == {"store_id": "numeric"}


def test_short_categories_in_a_small_table_are_not_ids() -> None:
    frame = pd.DataFrame({"colour": ["red", "green", "blue", "teal"], "y": [0, 1, 0, 1]})
    assert infer_schema(frame, "y") == {"colour": "categorical"}


def test_two_valued_non_flags_are_categorical_and_flags_any_case_boolean() -> None:
    frame = pd.DataFrame({"sex": ["m", "f"] * 5, "ok": ["True", "FALSE"] * 5, "y": range(10)})
    assert infer_schema(frame, "y") == {"sex": "categorical", "ok": "boolean"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overrides": {"agee": "numeric"}}, r'data\.column_types names column "agee".*\(did you mean "age"\?\)'),
        ({"features": ["citty"]}, r'data\.features names column "citty".*\(did you mean "city"\?\)'),
        ({"drop": ["reveiw"]}, r'data\.drop names column "reveiw".*\(did you mean "review"\?\)'),
        ({"features": ["age", "label"]}, r'data\.features lists the target "label"'),
        ({"features": ["age"], "drop": ["age"]}, r"no feature columns left"),
    ],
)
def test_bad_column_names_are_user_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        infer_schema(mixed_frame(), "label", **kwargs)


def test_entirely_empty_column_says_how_to_drop_it() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "blank": [np.nan, np.nan], "y": [0, 1]})
    with pytest.raises(UserError) as info:
        infer_schema(frame, "y")
    assert str(info.value) == 'column "blank" is entirely empty; drop it with data.drop: [blank]'
    assert infer_schema(frame, "y", drop=["blank"]) == {"x": "numeric"}


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["cat", "dog", "cat"], "classification"),
        ([True, False, True], "classification"),
        ([0, 1, 2, 1, 0, 2], "classification"),
        ([0.0, 1.0, 1.0, 0.0, np.nan], "classification"),
        (list(np.arange(1000) % 30), "classification"),  # 30 distinct integers, 3% of rows
        (list(np.arange(300) % 200), "regression"),  # 200 distinct integers, 67% of rows
        (list(np.linspace(0, 1, 50)), "regression"),
        ([0.5, 1.5, 0.5, 1.5], "regression"),  # few values, but not integers
    ],
)
def test_infer_task(values: list, task: str) -> None:
    assert infer_task(pd.Series(values, name="y")) == task


def test_infer_task_on_empty_target_is_a_user_error() -> None:
    with pytest.raises(UserError, match='target "y" is entirely empty'):
        infer_task(pd.Series([np.nan, np.nan], name="y"))
