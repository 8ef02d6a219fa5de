"""TranscribeOptions: one frozen object behind Model.transcribe's keywords and the CLI's defaults."""

from __future__ import annotations

import dataclasses

import pytest

import asr
from asr.api import BEAM_OPTIONS, TranscribeOptions, transcribe_options
from asr.cli.common import decode_options
from asr.cli.main import build_parser
from asr.errors import ConfigError
from streaming import EndpointConfig


def test_keywords_fold_into_the_options_given():
    beam = TranscribeOptions(decoder="beam", beam_size=4)
    assert transcribe_options() == TranscribeOptions()
    assert transcribe_options(beam) is beam
    assert transcribe_options(beam, nbest=2, word_timestamps=True) == dataclasses.replace(
        beam, nbest=2, word_timestamps=True
    )
    assert transcribe_options(beam, decoder="greedy").beam_size == 4  # a keyword changes only its own field
    assert beam == TranscribeOptions(decoder="beam", beam_size=4)  # the options given are left as they were
    with pytest.raises(dataclasses.FrozenInstanceError):
        beam.beam_size = 8


def test_bad_options_are_refused_by_name():
    with pytest.raises(TypeError, match="beam_sise"):
        transcribe_options(beam_sise=4)
    with pytest.raises(TypeError, match="TranscribeOptions"):
        transcribe_options({"decoder": "beam"})
    with pytest.raises(ConfigError, match="unknown decoder 'viterbi'"):
        transcribe_options(decoder="viterbi")


def test_transcribe_takes_options_and_keywords_alike(tiny_checkpoint, speechlike):
    model = asr.load_model(tiny_checkpoint)
    options = TranscribeOptions(decoder="beam", beam_size=4, nbest=2, word_timestamps=True)
    by_keywords = model.transcribe(speechlike, decoder="beam", beam_size=4, nbest=2, word_timestamps=True)
    assert model.transcribe(speechlike, options) == by_keywords
    assert model.transcribe(speechlike, options=options) == by_keywords
    assert model.transcribe_batch([speechlike], options=options) == [by_keywords]
    # Keywords change the options given.
    assert model.transcribe(speechlike, options, decoder="greedy", word_timestamps=False) == model.transcribe(
        speechlike
    )
    assert model.beam_config(options) == model.beam_config(decoder="beam", beam_size=4, nbest=2)


def test_command_line_defaults_are_the_dataclasses_defaults():
    parser = build_parser()
    transcribe = parser.parse_args(["transcribe", "a.wav"])
    defaults = TranscribeOptions()
    assert transcribe.max_segment_seconds == defaults.max_segment_seconds
    assert transcribe.word_timestamps == defaults.word_timestamps
    for name in ("decoder", *BEAM_OPTIONS):
        assert getattr(transcribe, name) == getattr(defaults, name), name
    beam = parser.parse_args(["transcribe", "a.wav", "--decoder", "beam"])
    assert TranscribeOptions(**decode_options(beam)) == TranscribeOptions(decoder="beam")
    assert decode_options(transcribe) == {"decoder": "greedy"}  # the beam flags only for beam search
    dictate = parser.parse_args(["dictate"])
    endpoint = EndpointConfig()
    assert (dictate.silence_after_speech, dictate.max_segment) == (endpoint.silence_after_speech, endpoint.max_segment)
