"""Long files and replayed files go through the block reader (asr.audio_decode.open_audio), so
every format it reads, FFmpeg's included, is cut into pieces or replayed without being read
whole, and gives the samples reading it whole gives (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

import asr.audio_decode
from asr.audio import SAMPLE_RATE, load_audio
from asr.cli.main import main
from asr.longform import SplitConfig, pieces
from streaming.audio_source import FileSource
from tests.test_audio_formats import encode

SAMPLE = "asr/samples/sample.wav"
CONFIG = SplitConfig(max_seconds=8.0)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_audio(SAMPLE)


@pytest.fixture
def long_m4a(speech, tmp_path) -> str:
    return encode(str(tmp_path / "talk.m4a"), np.tile(speech, 6), "aac")  # 20 s


def never_whole(monkeypatch) -> None:
    def refuse(reader):
        raise AssertionError(f"{reader.name} read whole")

    monkeypatch.setattr(asr.audio_decode, "read_all", refuse)
    monkeypatch.setattr("asr.audio.read_all", refuse)


@pytest.mark.parametrize("fmt", ["m4a", "wav", "flac"])
def test_a_long_file_in_blocks_gives_the_pieces_of_its_whole_waveform(speech, tmp_path, monkeypatch, capfd, fmt):
    path = tmp_path / f"talk.{fmt}"
    if fmt == "m4a":
        encode(str(path), np.tile(speech, 6), "aac")
    else:
        soundfile.write(path, np.tile(speech, 6), SAMPLE_RATE)
    whole = list(pieces(load_audio(path), SAMPLE_RATE, 400, CONFIG))
    never_whole(monkeypatch)
    blocks = list(pieces(path, SAMPLE_RATE, 400, CONFIG))
    assert len(blocks) == len(whole) > 2
    for a, b in zip(blocks, whole):
        assert a.start == b.start
        np.testing.assert_array_equal(a.waveform, b.waveform)
    assert capfd.readouterr().err == ""  # no decoder noise


def test_a_replayed_m4a_gives_the_samples_of_the_file(long_m4a, monkeypatch):
    whole = load_audio(long_m4a)
    never_whole(monkeypatch)
    source = FileSource(long_m4a)
    assert source.sample_rate == SAMPLE_RATE
    np.testing.assert_array_equal(np.concatenate(list(source)), whole)


def test_dictate_replays_an_m4a(speech, tmp_path, capsys):
    path = encode(str(tmp_path / "talk.m4a"), speech, "aac")
    assert main(["dictate", "--input", path]) == 0
    assert "HE " in capsys.readouterr().out
