"""The experiment config: validation, did-you-mean, overrides, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainwell.config import (
    ExperimentConfig,
    commented_yaml,
    dump_config,
    field_reference,
    load_config,
    parse_overrides,
)
from trainwell.errors import UserError


def test_defaults_and_round_trip() -> None:
    cfg = load_config({"data": {"source": "builtin:iris"}})
    assert cfg.train.optimizer == "adam" and cfg.split.test == 0.15
    again = load_config(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_unknown_key_suggests_the_closest_field() -> None:
    with pytest.raises(UserError, match=r'unknown field "train.lrr" \(did you mean "lr"\?\)'):
        load_config({"data": {"source": "x.csv"}, "train": {"lrr": 0.1}})


def test_unknown_section_suggests() -> None:
    with pytest.raises(UserError, match=r'"trian" \(did you mean "train"\?\)'):
        load_config({"data": {"source": "x.csv"}, "trian": {}})


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(UserError, match=r'field "train.epochs"'):
        load_config({"data": {"source": "x.csv"}, "train": {"epochs": "many"}})


def test_overrides_are_parsed_as_yaml_and_validated() -> None:
    over = parse_overrides(["train.lr=0.5", "model.hidden_sizes=[8, 4]", "split.stratify=false"])
    assert over == {"train": {"lr": 0.5}, "model": {"hidden_sizes": [8, 4]}, "split": {"stratify": False}}
    cfg = load_config({"data": {"source": "x.csv"}}, over)
    assert cfg.train.lr == 0.5 and cfg.model.params == {"hidden_sizes": [8, 4]} and not cfg.split.stratify
    with pytest.raises(UserError, match="section.field=value"):
        parse_overrides(["train.lr"])
    with pytest.raises(UserError, match='field "train.lr"'):
        load_config({"data": {"source": "x.csv"}}, parse_overrides(["train.lr=-1"]))


def test_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(UserError, match=r"bad.yaml is not valid YAML at line"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        load_config(bad)


def test_every_field_is_described() -> None:
    rows = field_reference()
    assert len(rows) > 40
    assert all(desc for _, desc, _ in rows), [name for name, desc, _ in rows if not desc]


def test_commented_yaml_parses_back_to_the_same_config() -> None:
    cfg = ExperimentConfig.model_validate({"data": {"source": "d.csv", "target": "y"}})
    text = commented_yaml(cfg)
    assert "# Learning rate." in text
    assert ExperimentConfig.model_validate(yaml.safe_load(text)) == cfg
