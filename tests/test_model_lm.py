"""A model's own LM (``<checkpoint>/lm``): used by beam search unless another LM or --no-lm is given."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

import asr
from asr.api import BEAM_OPTIONS, Model, TranscribeOptions
from asr.cli.common import decode_options
from asr.cli.main import build_parser, main
from asr.decoding.beam import BeamConfig
from asr.errors import CheckpointError
from asr.lm.bundled import find_model_lm
from tests.test_beam import ARPA
from tests.test_bundled_model import SAMPLES

LEXICON = "HELLO\tH E L L O |\nHELLA\tH E L L A |\n"


def give_lm(checkpoint, decoding: str | None = '{"lm_weight": 2.5, "word_score": -1.0, "tuned_on": "test"}'):
    lm_dir = checkpoint / "lm"
    lm_dir.mkdir()
    (lm_dir / "lm.bin").write_text(ARPA)  # KenLM reads ARPA text whatever the file's name
    (lm_dir / "lexicon.txt").write_text(LEXICON)
    if decoding is not None:
        (lm_dir / "decoding.json").write_text(decoding)
    return lm_dir


def test_beam_search_uses_the_models_own_lm_with_its_tuned_weights(tiny_checkpoint, speechlike):
    lm_dir = give_lm(tiny_checkpoint)
    model = asr.load_model(tiny_checkpoint)
    config = model.beam_config()
    assert (config.lm, config.lexicon) == (str(lm_dir / "lm.bin"), str(lm_dir / "lexicon.txt"))
    assert (config.lm_weight, config.word_score) == (2.5, -1.0)
    assert model.beam_config(lm_weight=0.5).lm_weight == 0.5  # a weight given overrides the tuned one
    free = model.beam_config(use_lm=False)
    assert (free.lm, free.lexicon, free.lm_weight) == (None, None, 1.0)
    other = model.beam_config(lexicon=str(lm_dir / "lexicon.txt"))  # a lexicon of one's own: no own LM
    assert other.lm is None
    transcript = model.transcribe(speechlike, decoder="beam")
    assert set(transcript.text.split()) <= {"HELLO", "HELLA"}
    assert ("beam", config) in model._decoders


def test_beam_config_and_transcribe_take_every_beam_option_with_its_default():
    # Model.beam_config and Model.transcribe both take their keywords as TranscribeOptions fields,
    # whose beam settings default to BeamConfig's (or to None: the model's own LM decides).
    defaults = {field.name: field.default for field in dataclasses.fields(TranscribeOptions)}
    parameters = inspect.signature(TranscribeOptions).parameters
    assert {name: p.default for name, p in parameters.items() if name in BEAM_OPTIONS} == {
        name: defaults[name] for name in BEAM_OPTIONS
    }
    assert [name for name in defaults if name in BEAM_OPTIONS] == list(BEAM_OPTIONS)
    beam = BeamConfig()
    assert (defaults["beam_size"], defaults["beam_threshold"], defaults["nbest"]) == (
        beam.beam_size, beam.beam_threshold, beam.nbest
    )  # fmt: skip
    for method in (Model.beam_config, Model.transcribe):
        assert "options" in inspect.signature(method).parameters


def test_a_model_without_lm_decodes_lexicon_free(tiny_checkpoint):
    model = asr.load_model(tiny_checkpoint)
    assert model.lm is None
    assert model.beam_config().lm is None and model.beam_config().lexicon is None


@pytest.mark.parametrize(
    "decoding, problem",
    [(None, "lacks decoding.json"), ("{not json", "not a decoding file"), ('{"lm_weight": 1}', "not a decoding file"),
     ('{"lm_weight": NaN, "word_score": 0}', "finite")],
)  # fmt: skip
def test_a_broken_model_lm_is_named(tiny_checkpoint, decoding, problem):
    give_lm(tiny_checkpoint, decoding)
    with pytest.raises(CheckpointError, match=problem):
        find_model_lm(tiny_checkpoint)


def test_cli_no_lm_turns_the_models_lm_off(tiny_checkpoint, speechlike, tmp_path, write_audio):
    give_lm(tiny_checkpoint)
    audio = write_audio("a.wav", speechlike)
    argv = ["transcribe", str(audio), "--model", str(tiny_checkpoint), "--decoder", "beam"]
    assert decode_options(build_parser().parse_args(argv))["use_lm"] is True
    assert decode_options(build_parser().parse_args([*argv, "--no-lm"]))["use_lm"] is False
    for flags in ([], ["--no-lm"]):
        out = tmp_path / ("own" if not flags else "none")
        assert main([*argv, "--output-dir", str(out), "--output-format", "json", *flags]) == 0
        assert json.loads((out / "a.json").read_text())["duration"] == pytest.approx(speechlike.size / 16000)


@pytest.mark.parametrize("name", ["default", "streaming"])
def test_bundled_models_carry_their_lm_and_beam_search_spells_its_words(name):
    model = asr.load_model(name)
    assert model.lm is not None and model.lm.lm.stat().st_size > 0
    tuned = json.loads((model.lm.lm.parent / "decoding.json").read_text())
    assert (model.lm.lm_weight, model.lm.word_score) == (tuned["lm_weight"], tuned["word_score"])
    words = {line.split("\t", 1)[0] for line in model.lm.lexicon.read_text().splitlines()}
    text = model.transcribe(SAMPLES / "sample.wav", decoder="beam").text
    assert text and set(text.split()) <= words
