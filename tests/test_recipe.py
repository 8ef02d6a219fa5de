"""The speechocean762 recipe's data preparation on the real corpus."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from asr.manifest import read_manifest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "speechocean762" / "run.py"


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("speechocean762_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DATA_DIR", tmp_path / "data")
    return module


def test_prepare_writes_disjoint_manifests(recipe, shared_data, tmp_path):
    recipe.main(["--stage", "0", "--stop-stage", "0", "--data-root", str(shared_data)])
    data = tmp_path / "data"
    train, valid, test = (read_manifest(data / f"{name}.jsonl") for name in ("train", "valid", "test"))
    assert len(train) + len(valid) == 2500 and len(test) == 500
    assert len({u.speaker for u in valid}) == recipe.VALID_SPEAKERS
    assert not {u.speaker for u in train} & {u.speaker for u in valid}
    assert all(u.audio.is_file() and u.duration > 0 for u in train[:20] + test[:20])
    assert (data / ".stage-0-prepare.done").exists()
    # A finished stage is skipped on the next run.
    (data / "train.jsonl").write_text("")
    recipe.main(["--stage", "0", "--stop-stage", "0", "--data-root", str(shared_data)])
    assert (data / "train.jsonl").read_text() == ""
