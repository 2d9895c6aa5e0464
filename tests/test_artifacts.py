"""Loading a run folder never runs code: the skops allow-list matches what we save, crafted files that call
eval/exec/os.system/file writers are refused (and really would run under skops' own trust), tensors must be
whole and finite, and the SHA-256 manifest names the file that changed."""

from __future__ import annotations

import importlib
import io
import json
import re
import shlex
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from safetensors.torch import save_file
from sklearn.preprocessing import FunctionTransformer

import trainwell
from trainwell.artifacts import (
    SKOPS_ALLOWED,
    build_manifest,
    file_digest,
    fsync_tree,
    load_skops,
    load_tensors,
    save_skops,
    verify_manifest,
)
from trainwell.config import PrepareConfig, TrainConfig
from trainwell.data.prepare import build_preparer
from trainwell.errors import UserError
from trainwell.models.registry import BuildContext, create_model, list_models
from trainwell.models.unsupervised import fit_unsupervised, list_unsupervised

# Names that must never be trusted: each runs code, reads or writes files, or reaches attributes by name.
DANGEROUS = [
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open", "builtins.getattr", "builtins.setattr",
    "builtins.__import__", "builtins.function", "builtins.type", "os.system", "subprocess.Popen", "numpy.load",
    "numpy.save", "numpy.savetxt", "numpy.fromfile", "numpy.loadtxt", "pandas.read_pickle", "operator.attrgetter",
    "operator.methodcaller", "functools.partial", "trainwell.files.write_text",
    "trainwell.files.write_json",
]  # fmt: skip
PAYLOADS = ["eval", "exec", "numpy.savetxt", "os.system", "write_text"]


# ---------------------------------------------------------------- the allow-list is what we save


def _evidence_models() -> list[Any]:
    """Every classical registry model, fitted for each task it serves, plus the parameters that add types."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)).astype(np.float32)
    data = {"classification": (X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)), "regression": (X, X @ [1.0, 2, 0, -1])}
    fast = {"random_forest": {"n_estimators": 3}, "lightgbm": {"n_estimators": 5},
            "voting": {"member_params": {"lightgbm": {"n_estimators": 5}}},
            "stacking": {"member_params": {"lightgbm": {"n_estimators": 5}}}}  # fmt: skip
    runs = [(s.name, task, fast.get(s.name, {})) for s in list_models() if s.family == "classical" for task in s.tasks]
    runs.append(("knn", "classification", {"metric": "manhattan"}))
    fitted = []
    for name, task, params in runs:
        ctx = BuildContext(task=task, n_features=4, n_classes=2 if task == "classification" else 0, seed=0,
                           train=TrainConfig())  # fmt: skip
        model = create_model(name, params, ctx)
        model.fit(*data[task], X[:20], data[task][1][:20])
        fitted.append(model.estimator_)  # type: ignore[attr-defined]
    return fitted


def _evidence_unsupervised() -> list[Any]:
    """Every unsupervised model saved with skops (the autoencoders are safetensors), fitted on small blobs."""
    X = np.random.default_rng(0).normal(size=(60, 3)) + np.repeat([[0.0, 0, 0], [5, 5, 5]], 30, axis=0)
    fast = {"isolation_forest": {"n_estimators": 3}, "dbscan": {"eps": 1.5}}
    skops = [s.name for s in list_unsupervised() if s.saved_as == "skops"]
    return [fit_unsupervised(name, fast.get(name, {}), X, seed=0) for name in skops]


def _evidence_preparers() -> list[Any]:
    """Preparers over every column kind, with the options that add transformers."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({
        "age": np.where(rng.random(n) < 0.2, np.nan, rng.normal(40, 10, n)), "member": rng.choice(["yes", "no"], n),
        "city": rng.choice(["paris", "lyon", None], n), "review": rng.choice(["good film", "bad plot", None], n),
        "signup": pd.date_range("2021-01-01", periods=n, freq="29h").strftime("%Y-%m-%d %H:%M"), "key": range(n),
    })  # fmt: skip
    schema: dict[str, Any] = {"age": "numeric", "member": "boolean", "city": "categorical", "review": "text",
                              "signup": "datetime", "key": "id"}  # fmt: skip
    configs = [PrepareConfig(), PrepareConfig(clip_outliers=2.0, scaling="robust", encoding="ordinal",
                                              missing_indicators=False, impute_numeric="constant")]  # fmt: skip
    return [build_preparer(schema, cfg).fit(frame) for cfg in configs]


def test_allow_list_is_exactly_what_our_saved_objects_hold() -> None:
    found: set[str] = set()
    for obj in _evidence_models() + _evidence_unsupervised() + _evidence_preparers():
        found.update(sio.get_untrusted_types(data=sio.dumps(obj)))
    assert found - SKOPS_ALLOWED == set(), "saved but not allowed: add to SKOPS_ALLOWED after review"
    assert SKOPS_ALLOWED - found == set(), "allowed but never saved: remove from SKOPS_ALLOWED"


def test_allow_list_holds_only_classes_and_nothing_dangerous() -> None:
    assert not SKOPS_ALLOWED & set(DANGEROUS)
    for name in SKOPS_ALLOWED:
        module, attr = name.rsplit(".", 1)
        assert isinstance(getattr(importlib.import_module(module), attr), type), f"{name} is not a class"
        assert not name.startswith(("builtins.", "os.", "subprocess.", "trainwell.track.")), name


def test_save_skops_refuses_a_type_not_on_the_list(tmp_path: Path) -> None:
    import os

    path = tmp_path / "estimator.skops"
    with pytest.raises(TypeError, match=r"refusing to save .*(os|posix)\.getcwd.*add it to\s+SKOPS_ALLOWED"):
        save_skops(FunctionTransformer(func=os.getcwd), path)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temp file


def test_save_then_load_round_trips_and_leaves_no_temp_file(tmp_path: Path) -> None:
    preparer = _evidence_preparers()[1]
    path = tmp_path / "model" / "preparer.skops"
    save_skops(preparer, path)
    save_skops(preparer, path)  # replaces in place
    assert [p.name for p in path.parent.iterdir()] == ["preparer.skops"]
    assert load_skops(path).get_feature_names_out().tolist() == preparer.get_feature_names_out().tolist()


# ---------------------------------------------------------------- crafted payloads


def _json_node(value: Any) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(value),
            "is_json": True}  # fmt: skip


def _call_node(target: str, *args: Any) -> dict[str, Any]:
    """A skops node that, when constructed, calls `target(*args)` (ConstructorFromReduceNode)."""
    module, name = target.rsplit(".", 1)
    arguments = {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                 "content": [_json_node(a) for a in args]}  # fmt: skip
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode", "content": arguments}


def _payload(kind: str, marker: Path) -> dict[str, Any]:
    """A call that creates `marker` when the file is loaded."""
    return {
        "eval": lambda: _call_node("builtins.eval", f"open({str(marker)!r}, 'w').write('pwned')"),
        "exec": lambda: _call_node("builtins.exec", f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')"),
        "numpy.savetxt": lambda: _call_node("numpy.savetxt", str(marker), [[1.0]]),
        "os.system": lambda: _call_node("os.system", f"touch {shlex.quote(str(marker))}"),
        "write_text": lambda: _call_node("trainwell.files.write_text", str(marker), "pwned"),
    }[kind]()


def _zip(schema: dict[str, Any], members: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def _bare(node: dict[str, Any]) -> bytes:
    """A skops file whose whole content is `node`."""
    return _zip({**node, "protocol": 2, "_skops_version": "0.16.0"})


def _hidden(real: bytes, node: dict[str, Any]) -> bytes:
    """A real skops file with `node` slipped into its root object's attributes: it still loads as the model."""
    with zipfile.ZipFile(io.BytesIO(real)) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "schema.json"}
        schema = json.loads(archive.read("schema.json"))
    attrs = schema["content"]
    attrs["content"]["note_"] = node
    attrs["key_types"]["content"].append({"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"})
    return _zip(schema, members)


@pytest.mark.parametrize("kind", PAYLOADS)
def test_crafted_payloads_are_refused_and_run_nothing(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    real = sio.dumps(_evidence_preparers()[0])
    crafted = {"bare.skops": _bare(_payload(kind, marker)), "hidden.skops": _hidden(real, _payload(kind, marker))}
    for name, data in crafted.items():
        path = tmp_path / name
        path.write_bytes(data)
        refused = rf"^refusing to load {re.escape(str(path))}: it holds types trainwell never saves: "
        with pytest.raises(UserError, match=refused):
            load_skops(path)
        assert not marker.exists()


@pytest.mark.parametrize("kind", PAYLOADS)
def test_payloads_are_real_they_run_when_skops_is_told_to_trust_them(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    real = sio.dumps(_evidence_preparers()[0])
    path = tmp_path / "evil.skops"
    path.write_bytes(_hidden(real, _payload(kind, marker)))
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))  # what a prefix rule like "builtins." did
    assert marker.exists()
    assert hasattr(loaded, "transform")  # and the file still works as the preparer it pretends to be


def _corruptions() -> dict[str, Callable[[bytes], bytes]]:
    def flip(data: bytes) -> bytes:
        at = data.index(b'"__loader__"')
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]

    def deflated(data: bytes) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for name in src.namelist():
                dst.writestr(name, src.read(name))
        return out.getvalue()

    deep = 5000
    nested = ('{"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": [' * deep
              + json.dumps(_json_node(1)) + "]}" * deep)  # fmt: skip
    return {
        "garbage": lambda d: b"not a zip at all",
        "truncated": lambda d: d[: len(d) // 2],
        "bad crc": flip,
        "compressed": deflated,
        "no schema": lambda d: _zip({}).replace(b"schema.json", b"schemx.json"),
        "not json": lambda d: _zip({}).replace(b"{}", b"{!"),
        "schema is a list": lambda d: _zip([1, 2]),  # type: ignore[arg-type]
        "no protocol": lambda d: _zip({"__class__": "x", "__module__": "y", "__loader__": "ListNode"}),
        "unknown loader": lambda d: _bare({"__class__": "x", "__module__": "y", "__loader__": "Nope"}),
        "missing content": lambda d: _bare({"__class__": "list", "__module__": "builtins", "__loader__": "ListNode"}),
        "deep nesting": lambda d: _zip({}).replace(b"{}", nested[:-1].encode() + b', "protocol": 2}'),
        "state does not fit": lambda d: _bare({"__class__": "SelectColumns", "__module__": "trainwell.data.prepare",
                                               "__loader__": "ObjectNode", "content": _json_node(5)}),
        "array member missing": lambda d: _bare({"__class__": "ndarray", "__module__": "numpy",
                                                 "__loader__": "NdArrayNode", "type": "numpy", "file": "gone.npy"}),
    }  # fmt: skip


@pytest.mark.parametrize("corrupt", list(_corruptions()))
def test_damaged_skops_file_is_one_user_error_naming_it(corrupt: str, tmp_path: Path) -> None:
    path = tmp_path / "estimator.skops"
    path.write_bytes(_corruptions()[corrupt](sio.dumps([1.0])))
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))} is not a skops file trainwell can read \(\w+\)"):
        load_skops(path)


def test_missing_skops_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"none\.skops not found"):
        load_skops(tmp_path / "none.skops")


# ---------------------------------------------------------------- end to end through the CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small finished run and a labelled CSV of its kind of rows."""
    root = tmp_path_factory.mktemp("e2e")
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=150), rng.normal(size=150)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "city": rng.choice(["a", "b", "c"], 150),
                          "label": np.where(x1 + x2 > 0, "yes", "no")})  # fmt: skip
    trainwell.train({"data": {"target": "label"}, "model": {"name": "logistic_regression"},
                     "validation": {"explain": False, "learning_curve": False}},
                    data=frame, run_dir=root / "run", quiet=True)  # fmt: skip
    frame.head(10).to_csv(root / "rows.csv", index=False)
    return root / "run", root / "rows.csv"


@pytest.mark.parametrize(
    ("target", "kind"),
    [("estimator.skops", "eval"), ("estimator.skops", "os.system"), ("preparer.skops", "numpy.savetxt"),
     ("preparer.skops", "write_text")],
)  # fmt: skip
def test_a_run_with_a_crafted_model_file_is_refused_by_every_command(
    target: str, kind: str, trained: tuple[Path, Path], cli, tmp_path: Path
) -> None:  # fmt: skip
    source, rows = trained
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    shutil.copytree(source, run_dir)
    path = run_dir / "model" / target
    path.write_bytes(_hidden(path.read_bytes(), _payload(kind, marker)))

    with pytest.raises(UserError, match=rf"refusing to load {re.escape(str(path))}: it holds types trainwell never"):
        load_skops(path)
    for command in (("predict", run_dir, rows, "--output", tmp_path / "out.csv"), ("evaluate", run_dir, rows),
                    ("explain", run_dir, rows)):  # fmt: skip
        code, out, err = cli(*command)
        assert code == 2, (command[0], out, err)
        assert "error:" in err, (command[0], err)
        assert not marker.exists(), command[0]
    assert not (tmp_path / "out.csv").exists()


# ---------------------------------------------------------------- tensors


def test_tensors_load_and_damaged_ones_are_refused(tmp_path: Path) -> None:
    good = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "steps": torch.tensor([1, 2])}
    save_file(good, str(tmp_path / "good.safetensors"))
    loaded = load_tensors(tmp_path / "good.safetensors")
    assert torch.equal(loaded["w"], good["w"]) and torch.equal(loaded["steps"], good["steps"])

    for bad in (float("nan"), float("inf"), -float("inf")):
        damaged = {"w": good["w"], "b": torch.tensor([0.0, bad], dtype=torch.float16)}
        save_file(damaged, str(tmp_path / "bad.safetensors"))
        with pytest.raises(UserError, match=r'bad\.safetensors: tensor "b" holds NaN/inf values; the file is damaged'):
            load_tensors(tmp_path / "bad.safetensors")

    data = (tmp_path / "good.safetensors").read_bytes()
    for name, damaged in {"truncated": data[:-5], "garbled": b"\xff" * 8 + data[8:], "empty": b""}.items():
        (tmp_path / f"{name}.safetensors").write_bytes(damaged)
        with pytest.raises(UserError, match=rf"{name}\.safetensors is not a readable safetensors file"):
            load_tensors(tmp_path / f"{name}.safetensors")
    with pytest.raises(UserError, match=r"none\.safetensors not found"):
        load_tensors(tmp_path / "none.safetensors")


def test_background_rows_are_checked_on_load(tmp_path: Path) -> None:
    from trainwell.evaluate.analysis import load_background

    save_file({"X": torch.ones(3, 2)}, str(tmp_path / "background.safetensors"))
    assert load_background(tmp_path / "background.safetensors").shape == (3, 2)
    save_file({"X": torch.tensor([[1.0, float("nan")]])}, str(tmp_path / "background.safetensors"))
    with pytest.raises(UserError, match='tensor "X" holds NaN/inf'):
        load_background(tmp_path / "background.safetensors")


# ---------------------------------------------------------------- manifest


def _tree(root: Path) -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "estimator.skops").write_bytes(b"weights" * 100)
    (root / "model" / "model.json").write_text('{"family": "classical"}')
    (root / "metrics.json").write_text("{}")
    (root / "run.json").write_text("{}")
    (root / "model" / ".estimator.skops.1234.tmp").write_bytes(b"half")  # an atomic write's temp file
    return root


def test_manifest_lists_files_and_an_untouched_tree_verifies(tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    manifest = build_manifest(root)
    assert list(manifest) == ["metrics.json", "model/estimator.skops", "model/model.json"]
    assert manifest["model/estimator.skops"] == {"sha256": file_digest(root / "model" / "estimator.skops"),
                                                 "bytes": 700}  # fmt: skip
    import hashlib

    assert manifest["metrics.json"]["sha256"] == hashlib.sha256(b"{}").hexdigest()
    verify_manifest(root, manifest)
    (root / "report.html").write_text("<html>")  # unlisted files outside model/ are not loaded: ignored
    verify_manifest(root, manifest)
    fsync_tree(root)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "model/estimator.skops").write_bytes(b"weightz" + b"weights" * 99),
         r"model/estimator\.skops: changed since the run was saved \(sha256 mismatch\)"),
        (lambda r: (r / "model/estimator.skops").write_bytes(b"weights" * 99),
         r"model/estimator\.skops: is truncated \(693 bytes, expected 700\)"),
        (lambda r: (r / "metrics.json").unlink(), r"metrics\.json: is missing"),
        (lambda r: (r / "model/extra.skops").write_bytes(b"x"), r"model/extra\.skops: not part of the saved run"),
        (lambda r: (r / "model/sub").mkdir() or (r / "model/sub/x.json").write_text("{}"),
         r"model/sub/x\.json: not part of the saved run"),
    ],
    ids=["changed byte", "truncated", "missing", "extra in model", "extra nested in model"],
)  # fmt: skip
def test_manifest_names_the_file_that_changed(damage: Callable[[Path], Any], message: str, tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    manifest = build_manifest(root)
    damage(root)
    with pytest.raises(UserError, match=rf"^{re.escape(str(root))}/{message}"):
        verify_manifest(root, manifest)


@pytest.mark.parametrize("entry", [{"../outside": {"sha256": "0", "bytes": 1}}, {"metrics.json": {"bytes": "2"}},
                                   {"/etc/passwd": {"sha256": "0", "bytes": 1}}])  # fmt: skip
def test_malformed_manifest_entries_are_refused(entry: dict[str, Any], tmp_path: Path) -> None:
    root = _tree(tmp_path / "run")
    with pytest.raises(UserError, match="manifest entry .* is malformed"):
        verify_manifest(root, entry)


@pytest.mark.parametrize(
    ("meta", "message"),
    [(None, "model.json not found"), ("{not json", r"model\.json is damaged \(JSONDecodeError"),
     ('{"family": "classical", "name": "knn"}', r"model\.json is damaged \(KeyError"),
     ("[1, 2]", r"model\.json is damaged \(TypeError")],
)  # fmt: skip
def test_damaged_model_json_is_a_user_error(meta: str | None, message: str, tmp_path: Path) -> None:
    from trainwell.models.classical import SklearnModel

    if meta is not None:
        (tmp_path / "model.json").write_text(meta)
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path))}/{message}"):
        SklearnModel.load(tmp_path)


def test_a_neural_model_json_with_invalid_params_is_one_line(tmp_path: Path) -> None:
    from trainwell.models.neural import NeuralModel

    meta = {"family": "neural", "name": "mlp", "params": {"hidden_sizes": [-1], "dropout": 5}, "task": "regression",
            "n_features": 3, "n_classes": 0, "image_shape": None, "target_mean": 0.0, "target_std": 1.0, "seed": 0,
            "train": {}}  # fmt: skip
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"model\.json is damaged \(ValidationError") as caught:
        NeuralModel.load(tmp_path)
    assert "\n" not in str(caught.value)  # pydantic's message spans lines; the user sees its first only
