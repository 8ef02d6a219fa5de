"""The LibriSpeech recipe on a tiny corpus in its layout: preparation, statistics, tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from asr.manifest import read_manifest
from asr.text import CharTokenizer
from tests.librispeech_corpus import build_tiny_librispeech

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes" / "librispeech"
SUBSETS = {"train-clean-100": (3, 12), "dev-clean": (1, 6), "test-clean": (1, 6)}


@pytest.fixture
def recipe(monkeypatch):
    monkeypatch.syspath_prepend(str(RECIPE_DIR))
    for name in ("run", "stages", "prepare", "decode_sets"):
        sys.modules.pop(name, None)
    import run

    return run


@pytest.fixture
def corpus(shared_data, tmp_path):
    build_tiny_librispeech(shared_data, tmp_path / "corpus", SUBSETS)
    return tmp_path / "corpus"


def run_stages(recipe, corpus: Path, work: Path, first: int, last: int, *extra: str) -> None:
    subsets = list(SUBSETS)
    assert recipe.main([
        "--stage", str(first), "--stop-stage", str(last), "--data-dir", str(corpus), "--work-dir", str(work),
        "--subsets", *subsets, "--config", str(RECIPE_DIR / "conf" / "debug.toml"), *extra,
    ]) == 0  # fmt: skip


def test_prepare_stats_and_tokens(recipe, corpus, tmp_path):
    work = tmp_path / "work"
    run_stages(recipe, corpus, work, 2, 3)
    data = work / "data"
    train = read_manifest(data / "train.jsonl")
    assert len(train) == 36 and len(read_manifest(data / "valid.jsonl")) == 6
    assert read_manifest(data / "test-clean.jsonl")[0].id == "1020-100-0000"
    assert all(u.audio.is_file() and u.duration > 0.5 and u.speaker for u in train)
    assert not Path(json.loads((data / "train.jsonl").read_text().splitlines()[0])["audio"]).is_absolute()
    stats = json.loads((data / "stats.json").read_text())
    assert len(stats["mean"]) == 80
    assert (data / "tokens.txt").read_text().splitlines() == list(CharTokenizer().tokens)
    # Done work is skipped on the next run: a changed manifest stays changed.
    (data / "dev-clean.jsonl").write_text((data / "dev-clean.jsonl").read_text().splitlines()[0] + "\n")
    run_stages(recipe, corpus, work, 2, 3)
    assert len(read_manifest(data / "dev-clean.jsonl")) == 1


def test_a_transcript_line_without_text_is_named(recipe, corpus, tmp_path):
    from prepare import PrepareError

    trans = next((corpus / "LibriSpeech" / "dev-clean").glob("*/*/*.trans.txt"))
    trans.write_text(trans.read_text() + "1010-100-9999\n")
    with pytest.raises(PrepareError, match=rf"{trans.name}:7"):
        run_stages(recipe, corpus, tmp_path / "work", 2, 2)


def test_subsets_without_a_dev_set_are_refused(recipe, corpus, tmp_path):
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match="dev-"):
        recipe.main(["--stage", "2", "--stop-stage", "2", "--data-dir", str(corpus), "--work-dir",
                     str(tmp_path / "w"), "--subsets", "train-clean-100"])  # fmt: skip
