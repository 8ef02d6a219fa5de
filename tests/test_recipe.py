"""The bundled models' recipe (recipes/english): data preparation on the real corpora, the
synthetic speech, the language model's text and the learning-curve report."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest
import soundfile

from asr.manifest import read_manifest


@pytest.fixture
def recipe(tmp_path, monkeypatch):
    module = importlib.import_module("recipes.english.run")
    monkeypatch.setattr(module, "DATA_DIR", tmp_path / "data")
    return module


def test_prepare_writes_disjoint_manifests(recipe, shared_data, tmp_path):
    recipe.main(["--stage", "0", "--stop-stage", "0", "--data-root", str(shared_data)])
    data = tmp_path / "data"
    train, valid, test = (read_manifest(data / f"{name}.jsonl") for name in ("train", "valid", "test"))
    assert len(test) == 500
    per_set = {name: (read_manifest(data / f"train_{name}.jsonl"), read_manifest(data / f"valid_{name}.jsonl"))
               for name in recipe.REAL_SETS}  # fmt: skip
    assert sum(len(t) + len(v) for t, v in per_set.values()) == 2500 + 1848 + 1619 + 342
    assert len(train) + len(valid) == 2500 + 1848 + 1619 + 342
    # Every utterance id names its set, so that training reports validation WER per set.
    for name, (set_train, set_valid) in per_set.items():
        assert set_valid and all(u.id.startswith(f"{name}/") for u in set_train + set_valid)
    so_train, so_valid = per_set["speechocean762"]
    assert len({u.speaker for u in so_valid}) == recipe.VALID_SPEAKERS
    ages = recipe.speaker_ages(shared_data / "speechocean762" / "train_spk2age")
    assert len({u.speaker for u in so_valid if recipe.is_child(u.speaker, ages)}) == recipe.VALID_CHILDREN
    ls_train, ls_valid = per_set["librispeech_train"]
    assert len({u.speaker for u in ls_valid}) == recipe.VALID_LIBRISPEECH_SPEAKERS
    for set_train, set_valid in (per_set["speechocean762"], per_set["librispeech_train"]):
        assert not {u.speaker for u in set_train} & {u.speaker for u in set_valid}
    # Single-speaker sets hold out prompts: no prompt is read on both sides (kathleen reads many twice).
    from asr.text import normalize_text

    for name in ("kathleen", "ljspeech"):
        set_train, set_valid = per_set[name]
        assert not {normalize_text(u.text) for u in set_train} & {normalize_text(u.text) for u in set_valid}
    assert all(u.audio.is_file() and u.duration > 0 for u in train[:20] + test[:20])
    assert (data / "cmudict.dict").is_file()
    assert (data / ".stage-0-prepare.done").exists()
    # A finished stage is skipped on the next run.
    (data / "train.jsonl").write_text("")
    recipe.main(["--stage", "0", "--stop-stage", "0", "--data-root", str(shared_data)])
    assert (data / "train.jsonl").read_text() == ""


@pytest.fixture
def synthesize():
    return importlib.import_module("recipes.english.synthesize")


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


def test_bundle_lm_gives_the_model_its_lm_and_tuned_weights(tiny_checkpoint, tmp_path):
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
    from recipes.english.bundle import bundle_lm

    bundle_lm(lm_dir, tuning, tiny_checkpoint)
    model = asr.load_model(tiny_checkpoint)
    assert model.lm is not None and (model.lm.lm_weight, model.lm.word_score) == (1.5, -1.0)
    assert model.lm.lexicon.read_text() == "HELLO\tH E L L O |\n"
    assert "50.00%" in json.loads((tiny_checkpoint / "lm" / "decoding.json").read_text())["tuned_on"]


def test_bundle_model_ships_float16_weights_without_machine_paths(tiny_checkpoint, tmp_path):
    import json

    import torch

    from asr.checkpoint import load_checkpoint, save_checkpoint
    from recipes.english.bundle import bundle_model

    trained = load_checkpoint(tiny_checkpoint)
    recipe_dir = tmp_path / "recipe"
    config = {"exp_dir": str(recipe_dir / "exp" / "run"), "init_from": str(recipe_dir / "exp" / "start" / "best"),
              "data": {"stats": str(recipe_dir / "data" / "stats.json"), "join_share": 0.4}}  # fmt: skip
    best = tmp_path / "best"
    save_checkpoint(
        best, trained.model, trained.features, trained.normalizer, trained.tokenizer, {"train_config": config}
    )
    bundle_model(best, "recipes/english (conf/x.toml)", tmp_path / "bundled", recipe_dir)
    meta = json.loads((tmp_path / "bundled" / "model.json").read_text())
    assert meta["weights"]["storage"] == "float16"
    assert meta["provenance"]["recipe"] == "recipes/english (conf/x.toml)"
    assert meta["provenance"]["train_config"] == {
        "exp_dir": "run", "init_from": "exp/start/best", "data": {"stats": "stats.json", "join_share": 0.4}
    }  # fmt: skip
    bundled = load_checkpoint(tmp_path / "bundled")
    for (name, a), (_, b) in zip(trained.model.state_dict().items(), bundled.model.state_dict().items()):
        assert torch.equal(b, a.half().float() if a.is_floating_point() else a), name


def test_modern_sentences_are_normalised_seeded_and_exclude_held_out_text(synthesize, tmp_path):
    text = tmp_path / "modern.txt"
    lines = ["Let 's meet at 7 tonight .", "I do n't know where it is", "Book a table for 2 people please",
             "short", "Play some music by the Beatles now"]  # fmt: skip
    text.write_text("\n".join(lines) + "\n")
    pool = synthesize.modern_pool([text], exclude=["please play some music by the beatles now"])
    assert pool == sorted(pool) == synthesize.modern_pool([text], ["please play some music by the beatles now"])
    picked = synthesize.draw_sentences(pool, 10, seed=3)
    assert picked == sorted(picked) and picked == synthesize.draw_sentences(pool, 10, 3)
    assert len(synthesize.draw_sentences(pool, 2, seed=3)) == 2
    assert "LET'S MEET AT SEVEN TONIGHT" in picked and "I DON'T KNOW WHERE IT IS" in picked
    assert "BOOK A TABLE FOR TWO PEOPLE PLEASE" in picked
    assert not any("BEATLES" in s for s in picked) and "SHORT" not in picked


def test_vocal_tract_change_scales_frequency_and_duration(synthesize):
    rate = 16000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    shorter = synthesize.change_vocal_tract(tone, 1.1)
    assert abs(len(shorter) - rate / 1.1) < 2
    peak = np.argmax(np.abs(np.fft.rfft(shorter))) * rate / len(shorter)
    assert abs(peak - 550) < 3


@pytest.mark.parametrize("engine", ["rhvoice", "pico", "espeak-ng", "festival", "flite"])
def test_every_engine_speaks_with_its_variations(synthesize, engine, tmp_path):
    voices = tuple(v for v in synthesize.available_voices() if v.engine == engine)
    if not voices:
        pytest.skip(f"{engine} is not installed (apt-get install {synthesize.APT_PACKAGES[engine]})")
    synthesizer = synthesize.Synthesizer(voices, seed=9)
    out = tmp_path / "a.flac"
    job, label = synthesizer(synthesize.Job(0, "THE CAT SAT ON THE MAT", out))
    audio, rate = soundfile.read(out, dtype="float32")
    assert rate == 16000 and 0.5 < len(audio) / rate < 6 and np.abs(audio).max() > 0.01
    assert label.startswith(engine)


def test_licensed_voices_only(synthesize):
    names = {(v.engine, v.name) for v in synthesize.ENGINE_VOICES["rhvoice"]}
    assert names == {("rhvoice", n) for n in ("alan", "bdl", "clb", "slt")}
    total = sum(len(v) for v in synthesize.ENGINE_VOICES.values())
    assert total >= 40


def test_report_plots_and_tabulates_a_run(tmp_path):
    import json

    report = importlib.import_module("recipes.english.report")
    history = [
        {"epoch": e, "step": 10 * e, "train_loss": 100.0 / e, "valid_loss": 120.0 / e, "valid_wer": 1.0 / (e + 1),
         "valid_wer/kathleen": 0.5 / e, "valid_wer/speechocean762": 0.9 / e}
        for e in (1, 2, 3)
    ]  # fmt: skip
    (tmp_path / "run" / "last").mkdir(parents=True)
    (tmp_path / "run" / "last" / "model.json").write_text(json.dumps({"provenance": {"history": history}}))
    out, table = tmp_path / "curves.png", tmp_path / "curves.md"
    assert report.main([str(tmp_path / "run"), "--out", str(out), "--markdown", str(table)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    rows = table.read_text().strip().splitlines()
    assert "| kathleen | speechocean762 |" in rows[2] and rows[-1].startswith("| 3 | 30 | 33.33 | 40.00 | 25.00 |")


def test_report_chains_runs_that_continue_one_another():
    report = importlib.import_module("recipes.english.report")
    first = [{"epoch": e, "step": 10 * e} for e in (1, 2)]
    second = [{"epoch": e, "step": 7 * e} for e in (1, 2, 3)]
    chained = report.chained({"a": first, "b": second})
    assert [(r["epoch"], r["step"]) for r in chained["a"]] == [(1, 10), (2, 20)]
    assert [(r["epoch"], r["step"]) for r in chained["b"]] == [(3, 27), (4, 34), (5, 41)]


def test_level_shift_writes_a_quieter_copy_of_a_manifest(tmp_path, speechlike):
    from recipes.english import level_shift

    soundfile.write(tmp_path / "a.flac", 0.3 * speechlike, 16000)
    (tmp_path / "m.jsonl").write_text('{"id": "set/a", "audio": "a.flac", "text": "A"}\n')
    assert level_shift.main([str(tmp_path / "m.jsonl"), "--gain-db", "-10", "--out", str(tmp_path / "q")]) == 0
    (copy,) = read_manifest(tmp_path / "q" / "manifest.jsonl")
    assert copy.id == "set/a" and copy.text == "A"
    before, after = soundfile.read(tmp_path / "a.flac")[0], soundfile.read(copy.audio)[0]
    assert level_shift.rms_db(after) == pytest.approx(level_shift.rms_db(before) - 10, abs=0.05)
    level_shift.main([str(tmp_path / "m.jsonl"), "--rms-db", "-30", "--out", str(tmp_path / "r")])
    (copy,) = read_manifest(tmp_path / "r" / "manifest.jsonl")
    assert level_shift.rms_db(soundfile.read(copy.audio)[0]) == pytest.approx(-30, abs=0.05)
