"""The speechocean762 recipe's data preparation on the real corpus."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.manifest import read_manifest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "speechocean762" / "run.py"


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(RECIPE.parent))
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
    ages = recipe.speaker_ages(shared_data / "speechocean762" / "train_spk2age")
    children = {u.speaker for u in valid if recipe.is_child(u.speaker, ages)}
    assert len(children) == recipe.VALID_CHILDREN
    assert not {u.speaker for u in train} & {u.speaker for u in valid}
    assert all(u.audio.is_file() and u.duration > 0 for u in train[:20] + test[:20])
    assert (data / ".stage-0-prepare.done").exists()
    # A finished stage is skipped on the next run.
    (data / "train.jsonl").write_text("")
    recipe.main(["--stage", "0", "--stop-stage", "0", "--data-root", str(shared_data)])
    assert (data / "train.jsonl").read_text() == ""


@pytest.fixture
def synthesize(recipe):
    return importlib.import_module("synthesize")


def test_book_body_drops_the_gutenberg_header_and_footer(synthesize):
    book = (
        "The Project Gutenberg eBook of Tests\nLicence words here.\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK TESTS ***\n"
        "It was a dark and stormy night. The rain fell in torrents!\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK TESTS ***\nMore licence.\n"
    )
    assert synthesize.book_body(book).strip() == "It was a dark and stormy night. The rain fell in torrents!"
    sentences = synthesize.book_sentences(book, min_words=4, max_words=14)
    assert sentences == ["IT WAS A DARK AND STORMY NIGHT", "THE RAIN FELL IN TORRENTS"]
    assert synthesize.book_sentences(book, min_words=6, max_words=14) == ["IT WAS A DARK AND STORMY NIGHT"]


def test_gutenberg_sentences_are_seeded_and_distinct(synthesize, shared_data):
    folder = shared_data / "text" / "gutenberg"
    a = synthesize.gutenberg_sentences(folder, 50, seed=1)
    assert a == synthesize.gutenberg_sentences(folder, 50, seed=1)
    assert a != synthesize.gutenberg_sentences(folder, 50, seed=2)
    assert len(set(a)) == 50 and all(4 <= len(s.split()) <= 14 for s in a)


def test_degradations_keep_length_and_stay_in_range(synthesize, speechlike):
    rng = np.random.default_rng(0)
    always = synthesize.DegradeConfig(reverb_prob=1.0, noise_prob=1.0, band_limit_prob=1.0)
    for _ in range(5):
        out = synthesize.degrade(speechlike, rng, always)
        assert out.shape == speechlike.shape and out.dtype == np.float32
        assert 0 < np.abs(out).max() <= 0.9 + 1e-6


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (apt-get install flite)")
def test_flite_corpus_is_reproducible_and_resumable(synthesize, tmp_path):
    voices = tuple(v for v in synthesize.FLITE_VOICES if v.name in ("kal16", "slt"))
    synthesizer = synthesize.Synthesizer(voices, seed=5)
    sentences = ["THE CAT SAT ON THE MAT", "A RED CAR AND A BIG DOG", "SHE SELLS SEA SHELLS"]
    first = synthesize.synthesize_corpus(sentences, tmp_path / "a", "s", synthesizer, workers=2)
    assert [u.text for u in first] == sentences
    for utt in first:
        audio, rate = soundfile.read(utt.audio, dtype="float32")
        assert rate == 16000 and 0.5 < utt.duration < 5 and np.abs(audio).max() > 0.01
        assert utt.speaker in ("flite-kal16", "flite-slt")
    again = synthesize.synthesize_corpus(sentences, tmp_path / "b", "s", synthesizer, workers=1)
    for a, b in zip(first, again, strict=True):
        assert a.audio.read_bytes() == b.audio.read_bytes()
    # Finished files are kept: an interrupted run resumes without redoing them.
    stamp = first[0].audio.stat().st_mtime_ns
    synthesize.synthesize_corpus(sentences, tmp_path / "a", "s", synthesizer, workers=1)
    assert first[0].audio.stat().st_mtime_ns == stamp


def test_bundle_lm_gives_the_model_its_lm_and_tuned_weights(recipe, tiny_checkpoint, tmp_path):
    import json

    import asr
    from tests.test_beam import ARPA

    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    (lm_dir / "lm.bin").write_text(ARPA)
    (lm_dir / "lexicon.txt").write_text("HELLO\tH E L L O |\n")
    (lm_dir / "lm.json").write_text("{}")
    tuning = tmp_path / "lm-tuning.json"
    tuning.write_text(json.dumps({"best": {"lm_weight": 1.5, "word_score": -1.0, "wer": 0.5}, "grid": []}))
    recipe.bundle_lm(lm_dir, tuning, tiny_checkpoint)
    model = asr.load_model(tiny_checkpoint)
    assert model.lm is not None and (model.lm.lm_weight, model.lm.word_score) == (1.5, -1.0)
    assert model.lm.lexicon.read_text() == "HELLO\tH E L L O |\n"
    assert "50.00%" in json.loads((tiny_checkpoint / "lm" / "decoding.json").read_text())["tuned_on"]
