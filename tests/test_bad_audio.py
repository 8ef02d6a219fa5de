"""Every kind of broken or unusual audio, through the Python API, ``asr transcribe``,
``asr evaluate`` and ``asr train``: each input either works or fails with a message naming the
file and the problem; the other inputs of the same run still complete; exit codes say which."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

import asr
import asr.file_batches
from asr.cli.main import main
from asr.cli.output import output_names
from asr.errors import AudioError
from asr.formats import render
from asr.manifest import Utterance, write_manifest

RATE = 16000
LONG_SECONDS = 600  # "a very long file": ten minutes, cut into pieces by the long-audio path


def speech(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    return (0.3 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int = RATE, **kwargs) -> Path:
    soundfile.write(str(path), audio, rate, **kwargs)
    return path


def raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def truncated(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def ffmpeg(path: Path, codec: str, rate: int = RATE, **options) -> Path:
    """Two seconds of speech-like audio encoded by FFmpeg (PyAV), as ``ffmpeg -i x.wav PATH`` would."""
    from tests.test_audio_formats import encode

    return Path(encode(str(path), speech(2.0), codec, rate, **options))


# name -> (make the input in a folder, None if it must work else the problem its error names)
CASES: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    "missing file": (lambda d: d / "missing.wav", "no such file"),
    "directory": (lambda d: (d / "folder.wav").mkdir() or d / "folder.wav", "is a directory"),
    "empty file": (lambda d: raw(d / "empty.wav", b""), "not a readable audio file"),
    "zero samples": (lambda d: write(d / "zero.wav", np.zeros(0, np.float32)), "audio is empty"),
    "shorter than a frame": (lambda d: write(d / "short.wav", speech(0.01)), "shorter than one feature frame"),
    "truncated wav": (lambda d: truncated(write(d / "cut.wav", speech(2.0)), 0.5), None),
    "truncated flac": (lambda d: truncated(write(d / "cut.flac", speech(2.0)), 0.5), None),
    "header only": (lambda d: truncated(write(d / "header.wav", speech(1.0)), 0.001), "not a readable audio file"),
    "flac named .wav": (lambda d: write(d / "flac.wav", speech(), format="FLAC"), None),
    "text named .wav": (lambda d: raw(d / "text.wav", b"hello\n"), "not a readable audio file"),
    "nan samples": (lambda d: write(d / "nan.wav", np.where(speech() > 0.2, np.nan, speech()), subtype="FLOAT"),
                    "NaN or infinite"),
    "inf samples": (lambda d: write(d / "inf.wav", np.where(speech() > 0.2, np.inf, speech()), subtype="FLOAT"),
                    "NaN or infinite"),
    "silence only": (lambda d: write(d / "silence.wav", np.zeros(RATE, np.float32)), None),
    "clipping": (lambda d: write(d / "clipped.wav", np.clip(speech() * 20, -1, 1)), None),
    "8 kHz": (lambda d: write(d / "8k.wav", speech(rate=8000), 8000), None),
    "48 kHz": (lambda d: write(d / "48k.wav", speech(rate=48000), 48000), None),
    "6 channels": (lambda d: write(d / "six.wav", np.stack([speech()] * 6, axis=1)), None),
    "24-bit wav": (lambda d: write(d / "pcm24.wav", speech(), subtype="PCM_24"), None),
    "float wav": (lambda d: write(d / "float.wav", speech(), subtype="FLOAT"), None),
    "very long file": (lambda d: write(d / "long.flac", np.tile(speech(10.0), LONG_SECONDS // 10)), None),
    "m4a (AAC)": (lambda d: ffmpeg(d / "talk.m4a", "aac"), None),
    "webm (Opus)": (lambda d: ffmpeg(d / "talk.webm", "libopus", 48000), None),
    "mov with video": (lambda d: ffmpeg(d / "clip.mov", "aac", video=True), None),
    "mp4 without sound": (lambda d: ffmpeg(d / "silent-film.mp4", "aac", video=True, audio=False), "no audio track"),
    "truncated m4a": (lambda d: truncated(ffmpeg(d / "cut.m4a", "aac"), 0.5), "not a readable audio file"),
}  # fmt: skip
FAILING = [name for name, (_, problem) in CASES.items() if problem]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_audio")
    return {name: make(folder) for name, (make, _) in CASES.items()}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.conftest import make_tiny_checkpoint

    return asr.load_model(make_tiny_checkpoint(tmp_path_factory.mktemp("model")))


@pytest.mark.parametrize("name", list(CASES))
def test_the_python_api_works_or_names_the_file_and_problem(model, inputs, name):
    problem = CASES[name][1]
    if problem is None:
        transcript = model.transcribe(inputs[name])
        assert transcript.duration > 0
        if name == "very long file":
            assert transcript.duration == pytest.approx(LONG_SECONDS, abs=0.01)
            # Speech with no pauses is cut in the second half of each window: no piece is
            # shorter than half a window.
            half_window = asr.TranscribeOptions().max_segment_seconds / 2
            assert len(transcript.segments) <= LONG_SECONDS / half_window or not transcript.text
        return
    with pytest.raises(AudioError) as caught:
        model.transcribe(inputs[name])
    assert str(inputs[name]) in str(caught.value) and problem in str(caught.value)


def test_transcribe_reports_every_bad_file_and_writes_every_good_one(model, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    paths = [str(p) for p in inputs.values()]
    status = main(["transcribe", *paths, "--model", model.name, "--output-dir", str(out), "--output-format", "json"])
    err = capsys.readouterr().err
    assert status == 1  # some failed
    assert f"{len(FAILING)} of {len(CASES)} file(s) failed" in err
    names = output_names(paths)  # cut.wav and cut.flac share a stem: their outputs keep both names
    for name, path in inputs.items():
        written = out / f"{names[str(path)]}.json"
        if CASES[name][1] is None:  # written, and what that file gives alone
            alone = model.transcribe(path)
            assert json.loads(written.read_text()) == json.loads(render(alone, "json")), name
        else:
            assert not written.exists() and str(path) in err and CASES[name][1] in err, name


def test_transcribe_exit_codes(model, inputs, capsys):
    assert main(["transcribe", str(inputs["float wav"]), "--model", model.name]) == 0
    assert main(["transcribe", str(inputs["text named .wav"]), "--model", model.name]) == 1
    assert main(["transcribe", str(inputs["float wav"]), "--model", str(inputs["directory"])]) == 2


def test_evaluate_scores_the_good_and_counts_the_bad(model, inputs, tmp_path, capsys):
    manifest = tmp_path / "all.jsonl"
    short = {k: v for k, v in inputs.items() if k != "very long file"}
    write_manifest(manifest, [Utterance(path, "A WORD", name.replace(" ", "-")) for name, path in short.items()])
    status = main(["evaluate", "--model", model.name, "--manifest", str(manifest), "--report-dir", str(tmp_path / "r")])
    assert status == 1
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert len(summary["failed"]) == len(FAILING)
    assert summary["utterances"] == len(short) - len(FAILING)


def test_training_skips_and_counts_the_bad_and_learns_from_the_rest(inputs, tmp_path, caplog):
    import dataclasses

    from asr.manifest import read_manifest
    from asr.train.trainer import train
    from tests.test_train import make_toy_corpus, toy_config

    corpus = make_toy_corpus(tmp_path)
    bad = [Utterance(inputs[name], "AB", name.replace(" ", "-")) for name in FAILING]
    write_manifest(corpus / "mixed.jsonl", read_manifest(corpus / "train.jsonl") + bad)
    config = toy_config(corpus, epochs=1)
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, train_manifest=str(corpus / "mixed.jsonl"))
    )
    result = train(config, progress_bars=False)
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    for name in FAILING:
        assert str(inputs[name].name) in caplog.text, name


def test_a_file_that_disappears_mid_run_is_reported_and_the_rest_complete(model, tmp_path, monkeypatch, capsys):
    files = [write(tmp_path / f"{i}.wav", speech()) for i in range(3)]
    original = asr.file_batches.load_audio

    def read_then_delete(audio, *args, **kwargs):
        if Path(audio) == files[0]:
            files[2].unlink()  # gone before its turn comes
        return original(audio, *args, **kwargs)

    monkeypatch.setattr(asr.file_batches, "load_audio", read_then_delete)
    out = tmp_path / "out"
    status = main(
        ["transcribe", *map(str, files), "--model", model.name, "--output-dir", str(out), "--output-format", "json"]
    )
    err = capsys.readouterr().err
    assert status == 1 and f"{files[2]}: no such file" in err
    assert (out / "0.json").exists() and (out / "1.json").exists() and not (out / "2.json").exists()


UNREADABLE_SCRIPT = """
import os, sys
import numpy as np
import asr
from asr.errors import AudioError
model = asr.load_model(sys.argv[1])
model.transcribe(np.zeros(16000, np.float32))  # every import and first-call set-up done as root
os.setgid(65534); os.setuid(65534)  # then become 'nobody': file permissions apply again
try:
    model.transcribe(sys.argv[2])
except AudioError as exc:
    print(exc)
"""


def test_an_unreadable_file_is_named(model, tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    locked = write(folder / "locked.wav", speech())
    os.chmod(locked, 0)
    if os.geteuid() != 0:
        with pytest.raises(AudioError, match=f"{locked}: permission denied"):
            model.transcribe(locked)
        return
    # Root reads anything; the check runs as the unprivileged user 'nobody' instead.
    for path in (tmp_path, folder):
        os.chmod(path, 0o755)
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", UNREADABLE_SCRIPT, model.name, str(locked)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(repo), "HOME": str(folder)}, timeout=120,
    )  # fmt: skip
    assert f"{locked}: permission denied" in result.stdout, result.stderr
