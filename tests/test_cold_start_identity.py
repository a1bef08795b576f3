"""A model's identity is remembered beside the ONNX exports, so a restart does not hash the
weights again, and any change to the model's files still changes it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.embedding import embedder
from app.embedding.embedder import model_identity


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    for name in ("config.json", "modules.json", "tokenizer.json"):
        (folder / name).write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"weights-1" * 1000)
    return folder


@pytest.fixture
def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget this process's identities, as a restart would."""
    monkeypatch.setattr(embedder, "_identities", {})


def hashing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> str:
        raise AssertionError("the weights were hashed again")

    monkeypatch.setattr(embedder, "_digest", refuse)


def test_a_restart_reads_the_identity_back_instead_of_hashing(
    model: Path, tmp_path: Path, new_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    remembered = tmp_path / "onnx" / "identities.json"
    hashed = model_identity(model)
    assert model_identity(model, remembered) == hashed == "models/tiny@" + hashed[-16:]
    entry = json.loads(remembered.read_text(encoding="utf-8"))[str(model)]
    assert entry["identity"] == hashed
    assert [stamp[0] for stamp in entry["stamps"]] == [
        str(model / name) for name in
        ("config.json", "modules.json", "tokenizer.json", "model.safetensors")]

    monkeypatch.setattr(embedder, "_identities", {})
    hashing_is_refused(monkeypatch)
    assert model_identity(model, remembered) == hashed
    assert model_identity(model) == hashed  # and the rest of the process has it too


@pytest.mark.parametrize("change", ["other weights", "same size and mtime", "a new file"])
def test_a_changed_model_gets_a_new_identity_after_a_restart(
    model: Path, tmp_path: Path, new_process: None, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    remembered = tmp_path / "identities.json"
    before = model_identity(model, remembered)
    weights = model / "model.safetensors"
    status = weights.stat()
    if change == "a new file":
        (model / "pytorch_model.bin").write_bytes(b"more weights")
    else:
        weights.write_bytes(b"weights-2" * 1000)  # same size
    if change == "same size and mtime":  # as `cp -p` of another model would leave it
        os.utime(weights, ns=(status.st_atime_ns, status.st_mtime_ns))
        assert weights.stat().st_mtime_ns == status.st_mtime_ns
    monkeypatch.setattr(embedder, "_identities", {})
    after = model_identity(model, remembered)
    assert after != before
    assert json.loads(remembered.read_text(encoding="utf-8"))[str(model)]["identity"] == after
    monkeypatch.setattr(embedder, "_identities", {})
    hashing_is_refused(monkeypatch)
    assert model_identity(model, remembered) == after


def test_two_models_are_remembered_side_by_side(
    model: Path, tmp_path: Path, new_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = model.parent / "other"
    other.mkdir()
    for path in model.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    remembered = tmp_path / "identities.json"
    identities = [model_identity(model, remembered), model_identity(other, remembered)]
    assert identities[0].split("@")[1] == identities[1].split("@")[1]  # the same files
    monkeypatch.setattr(embedder, "_identities", {})
    hashing_is_refused(monkeypatch)
    assert [model_identity(model, remembered), model_identity(other, remembered)] == identities


@pytest.mark.parametrize("content", ["not json", "[]", '{"%s": {"stamps": [], "identity": 1}}'])
def test_an_unreadable_memory_is_ignored_and_rewritten(
    model: Path, tmp_path: Path, new_process: None, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    expected = model_identity(model)
    monkeypatch.setattr(embedder, "_identities", {})
    remembered = tmp_path / "identities.json"
    remembered.write_text(content.replace("%s", str(model)), encoding="utf-8")
    assert model_identity(model, remembered) == expected
    assert json.loads(remembered.read_text(encoding="utf-8"))[str(model)]["identity"] == expected


def test_a_cache_that_cannot_be_written_only_costs_the_hashing(
    model: Path, tmp_path: Path, new_process: None
) -> None:
    expected = model_identity(model)
    embedder._identities.clear()
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    assert model_identity(model, blocked / "identities.json") == expected
