"""The ``asr`` command, run as users run it, on tiny and bundled models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from asr.cli.main import main
from asr.manifest import Utterance, write_manifest
from asr.text import normalize_text


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
    assert main(["bench", str(good), "--model", str(tiny_checkpoint), "--sections", "offline", "--repeats", "1"]) == 0
    assert "| offline | transcribe, greedy, file by file, 1 thread (RTF " in capsys.readouterr().out


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "asr.cli", "transcribe", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--model", "--output-format", "--output-dir", "--threads", "--decoder"):
        assert flag in result.stdout


def test_all_output_formats_are_written_per_input(tmp_path):
    out_dir = tmp_path / "out"
    sample = "asr/samples/sample.wav"
    assert main(["transcribe", sample, "--output-dir", str(out_dir), "--output-format", "all"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [
        f"sample.{ext}" for ext in ("json", "srt", "tsv", "txt", "vtt")
    ]
    result = json.loads((out_dir / "sample.json").read_text())
    words, duration = result["words"], result["duration"]
    assert abs(duration - soundfile.info(sample).duration) < 0.01
    assert words and all(0 <= w["start"] <= w["end"] <= duration and 0 < w["confidence"] <= 1 for w in words)
    assert (out_dir / "sample.srt").read_text().startswith("1\n00:00:00,")
    assert (out_dir / "sample.vtt").read_text().startswith("WEBVTT\n\n00:00:00.")


def test_beam_nbest_and_word_timestamps_from_the_command_line(capsys):
    sample = "asr/samples/sample.wav"
    # Lexicon-free (--no-lm): with the model's LM, 8 beams can all spell the same words.
    args = [
        "transcribe",
        sample,
        "--decoder",
        "beam",
        "--no-lm",
        "--beam-size",
        "8",
        "--nbest",
        "3",
        "--word-timestamps",
    ]
    assert main([*args, "--output-format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    nbest = result["segments"][0]["nbest"]
    assert len(nbest) == 3 and nbest[0]["text"] == result["text"]
    assert [a["score"] for a in nbest] == sorted((a["score"] for a in nbest), reverse=True)
    assert [w["word"] for w in result["words"]] == result["text"].split()


def test_align_gives_word_times_of_a_given_transcript(tmp_path, capsys):
    sample = "asr/samples/sample.wav"
    transcript = Path("asr/samples/sample.txt").read_text().strip()  # "He boiled himself some coffee ..."
    assert main(["align", sample, transcript]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    assert [w["word"] for w in words] == normalize_text(transcript).split()
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and words[-1]["end"] <= soundfile.info(sample).duration
    manifest = tmp_path / "m.jsonl"
    first_words = " ".join(transcript.split()[:5])
    write_manifest(manifest, [Utterance(sample, first_words, "ok"), Utterance(tmp_path / "gone.wav", "x", "gone")])
    assert main(["align", "--manifest", str(manifest), "--output-dir", str(tmp_path / "al")]) == 1
    assert json.loads((tmp_path / "al" / "ok.json").read_text())["text"] == normalize_text(first_words)
    assert not (tmp_path / "al" / "gone.json").exists()


def test_inputs_sharing_a_stem_keep_separate_outputs(tiny_checkpoint, speechlike, tmp_path, capsys):
    wav, flac = tmp_path / "talk.wav", tmp_path / "talk.flac"
    soundfile.write(str(wav), speechlike, 16000)
    soundfile.write(str(flac), speechlike[:16000], 16000)
    out = tmp_path / "out"
    args = ["transcribe", str(wav), str(flac), "--model", str(tiny_checkpoint), "--output-dir", str(out)]
    assert main([*args, "--output-format", "json"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["talk.flac.json", "talk.wav.json"]
    assert json.loads((out / "talk.flac.json").read_text())["duration"] == pytest.approx(1.0, abs=0.01)
    other = tmp_path / "other"
    other.mkdir()
    soundfile.write(str(other / "talk.wav"), speechlike, 16000)
    assert main(["transcribe", str(wav), str(other / "talk.wav"), "--model", str(tiny_checkpoint), "--output-dir",
                 str(tmp_path / "out2")]) == 2  # fmt: skip
    assert "share the file name 'talk.wav'" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()  # refused before any work
