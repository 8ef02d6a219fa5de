"""The ``asr`` command, run as users run it, on tiny and bundled models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import soundfile

from asr.cli import main
from asr.manifest import Utterance, write_manifest


@pytest.fixture
def audio_files(tmp_path, speechlike):
    good = tmp_path / "good.flac"
    soundfile.write(str(good), speechlike, 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    return good, corrupt


def test_corrupt_file_is_reported_and_the_good_one_still_transcribed(tiny_checkpoint, audio_files, tmp_path, capsys):
    good, corrupt = audio_files
    out_dir = tmp_path / "out"
    status = main(
        [
            "transcribe",
            str(corrupt),
            str(good),
            "--model",
            str(tiny_checkpoint),
            "--output-dir",
            str(out_dir),
            "--output-format",
            "all",
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert "corrupt.wav" in captured.err and "1 of 2 file(s) failed" in captured.err
    result = json.loads((out_dir / "good.json").read_text())
    assert set(result) == {"text", "duration", "words", "segments"}
    assert result["duration"] == pytest.approx(2.0)
    assert (out_dir / "good.txt").read_text() == result["text"] + "\n"
    assert not (out_dir / "corrupt.json").exists()


def test_transcribe_prints_text_and_exit_zero(tiny_checkpoint, audio_files, capsys):
    good, _ = audio_files
    assert main(["transcribe", str(good), "--model", str(tiny_checkpoint), "--output-format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["duration"] == pytest.approx(2.0)


def test_bad_model_path_is_a_clear_error(audio_files, tmp_path, capsys):
    good, _ = audio_files
    assert main(["transcribe", str(good), "--model", str(tmp_path / "nope")]) == 2
    assert "nope: no such checkpoint" in capsys.readouterr().err


def test_evaluate_writes_reports(tiny_checkpoint, audio_files, tmp_path, capsys):
    good, corrupt = audio_files
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance(good, "Hello there.", "g"), Utterance(corrupt, "x", "c")])
    report = tmp_path / "report"
    status = main(
        ["evaluate", "--model", str(tiny_checkpoint), "--manifest", str(manifest), "--report-dir", str(report)]
    )
    assert status == 1  # one utterance failed
    summary = json.loads((report / "summary.json").read_text())
    assert {"wer", "cer", "utterances", "words"} <= set(summary)
    assert summary["utterances"] == 1 and summary["words"] == 2
    assert summary["failed"][0]["id"] == "c"
    assert (report / "wer-summary.txt").read_text().startswith("%WER")
    assert json.loads((report / "recogs.jsonl").read_text().splitlines()[0])["ref"] == "HELLO THERE"
    errors = (report / "errors.txt").read_text()
    assert errors.startswith("g\nREF: ") and "HELLO THERE" in errors.splitlines()[1]
    assert errors.splitlines()[2].startswith("HYP: ")
    assert "WER" in capsys.readouterr().out


def test_bench_reports_speed(tiny_checkpoint, audio_files, capsys):
    good, _ = audio_files
    assert main(["bench", str(good), "--model", str(tiny_checkpoint)]) == 0
    assert "faster than real time" in capsys.readouterr().out


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--model", "--output-format", "--output-dir", "--threads", "--decoder"):
        assert flag in result.stdout
