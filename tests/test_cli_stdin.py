"""``asr transcribe -``: standard input through a real pipe, as ``ffmpeg ... | asr transcribe -``
runs it, reads whole and transcribes like the same audio given as a file (issue 19)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import asr as asr_api
from asr.audio import load_audio

ASR = str(Path(sys.executable).with_name("asr"))
SAMPLE = "asr/samples/sample.wav"
TIMEOUT = 120  # seconds: torch's import alone takes several on a busy machine


def asr(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([ASR, *args], input=stdin, capture_output=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def file_text() -> str:
    done = asr("transcribe", SAMPLE)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def encoded(waveform: np.ndarray, tmp_path: Path, fmt: str) -> bytes:
    path = tmp_path / f"speech.{fmt.lower()}"
    soundfile.write(path, waveform, 16_000, format=fmt)
    return path.read_bytes()


def test_standard_input_gives_the_text_of_the_file(file_text):
    done = asr("transcribe", "-", stdin=Path(SAMPLE).read_bytes())
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == file_text


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_flac_and_ogg_piped_in_give_the_text_of_their_file(tmp_path, fmt):
    data = encoded(load_audio(SAMPLE), tmp_path, fmt)
    done = asr("transcribe", "-", stdin=data)
    assert done.returncode == 0, done.stderr
    expected = asr_api.load_model().transcribe(tmp_path / f"speech.{fmt.lower()}").text
    assert expected and done.stdout.decode().strip() == expected


def test_long_standard_input_is_cut_into_pieces_and_named_stdin_in_output_dir(file_text, tmp_path):
    long = np.tile(load_audio(SAMPLE), 9)  # 30 s: longer than one piece, cut as a long array is
    done = asr("transcribe", "--output-dir", str(tmp_path), "--output-format", "json", "-",
               stdin=encoded(long, tmp_path, "FLAC"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "stdin.json").read_text())
    assert len(result["segments"]) > 1 and result["text"].count(file_text.split()[0]) >= 8


def test_empty_or_repeated_standard_input_is_one_line(tmp_path):
    done = asr("transcribe", "-")
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        "error: <stdin>: not a readable audio file (nothing came in: the stream is empty)"
    ]
    done = asr("transcribe", "-", "-", stdin=Path(SAMPLE).read_bytes())
    assert done.returncode == 2 and len(done.stderr.decode().strip().splitlines()) == 1
