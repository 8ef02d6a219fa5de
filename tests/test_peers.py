"""Side-by-side benchmarks: pocketsphinx and our models on the same audio."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

from asr.api import load_model
from asr.audio import load_audio
from asr.bench.peers import PeerUnavailableError, PocketSphinx
from asr.bench.side_by_side import EvalSet, side_by_side, side_by_side_table, streamed
from asr.bench.speed import compare_systems, scores_table
from asr.cli.main import EXIT_OK, main
from asr.manifest import Utterance, write_manifest
from asr.metrics import error_rates
from asr.text import normalize_text
from streaming.stream import Recognizer
from tests.test_bundled_model import SAMPLES


def test_pocketsphinx_transcribes_the_sample():
    reference = normalize_text((SAMPLES / "sample.txt").read_text())
    text = PocketSphinx().transcribe(load_audio(SAMPLES / "sample.wav", PocketSphinx.sample_rate))
    assert text == normalize_text(text) and error_rates([reference], [text]).wer < 0.5


def test_missing_pocketsphinx_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_pocketsphinx(name, *args, **kwargs):
        if name == "pocketsphinx":
            raise ImportError("No module named 'pocketsphinx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "pocketsphinx", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pocketsphinx)
    with pytest.raises(PeerUnavailableError, match="pip install pocketsphinx"):
        PocketSphinx()


def test_systems_are_scored_on_the_same_audio():
    waveforms = [np.zeros(16000, dtype=np.float32), np.ones(8000, dtype=np.float32) * 0.1]
    texts = ["HELLO WORLD", "GOOD MORNING"]
    seen = []

    def perfect(w):
        seen.append(w.size)
        return texts[0] if w.size == 16000 else texts[1]

    scores = compare_systems([("perfect", perfect), ("silent", lambda w: "")], waveforms, texts, 16000)
    assert [(s.name, s.wer) for s in scores] == [("perfect", 0.0), ("silent", 1.0)]
    assert seen == [16000, 16000, 8000] and all(s.rtf > 0 for s in scores)  # one warm-up, then each once
    assert "| silent | 100.00 | 100.00 |" in scores_table(scores)


def test_side_by_side_scores_every_system_on_every_set():
    sets = [
        EvalSet("quiet", (np.zeros(16000, dtype=np.float32),), ("HELLO",)),
        EvalSet("loud", (np.full(8000, 0.1, dtype=np.float32),), ("GOOD MORNING",)),
    ]
    systems = [("knows hello", lambda w: "HELLO"), ("silent", lambda w: "")]
    scores = side_by_side(systems, sets, 16000)
    assert [(s.set_name, s.score.name, s.score.wer) for s in scores] == [
        ("quiet", "knows hello", 0.0), ("quiet", "silent", 1.0), ("loud", "knows hello", 1.0), ("loud", "silent", 1.0),
    ]  # fmt: skip
    assert "| loud | knows hello | 100.00 |" in side_by_side_table(scores)


def test_streamed_system_equals_a_live_stream_of_the_same_audio():
    model = load_model("streaming")
    waveform = load_audio(SAMPLES / "sample.wav", model.sample_rate)
    stream = Recognizer(model).create_stream()
    stream.accept_waveform(waveform)
    assert streamed(model, "greedy")(waveform) == stream.finish().text != ""


def test_cli_puts_the_bundled_models_beside_pocketsphinx_on_each_set(tmp_path, capsys):
    reference = (SAMPLES / "sample.txt").read_text()
    manifests = []
    for name in ("first", "second"):
        manifests += ["--manifest", str(tmp_path / f"{name}.jsonl")]
        write_manifest(tmp_path / f"{name}.jsonl", [Utterance(SAMPLES / "sample.wav", reference, "s1")])
    assert main(["bench", "--peers", *manifests]) == EXIT_OK
    table = capsys.readouterr().out
    for set_name in ("first", "second"):
        systems = (
            "default, greedy",
            "default, beam + LM",
            "streaming, streamed, greedy",
            "streaming, streamed, beam + LM",
        )
        for system in (*systems, "pocketsphinx"):
            assert f"| {set_name} | {system} |" in table


def test_cli_compares_one_model_with_pocketsphinx(tmp_path, capsys):
    reference = (SAMPLES / "sample.txt").read_text()
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance(SAMPLES / "sample.wav", reference, "s1")])
    assert main(["bench", "--peers", "--model", "default", "--manifest", str(manifest)]) == EXIT_OK
    table = capsys.readouterr().out
    assert "| m | default (greedy) |" in table and "| m | pocketsphinx |" in table


def test_cli_measures_one_model_alone_without_the_peer(tmp_path, capsys):
    reference = (SAMPLES / "sample.txt").read_text()
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance(SAMPLES / "sample.wav", reference, "s1")])
    args = ["bench", "--peers", "--no-peer", "--model", "default", "--decoder", "beam", "--manifest", str(manifest)]
    assert main(args) == EXIT_OK
    table = capsys.readouterr().out
    assert "| m | default (beam) |" in table and "pocketsphinx" not in table


def test_cli_refuses_no_peer_without_peers(capsys):
    assert main(["bench", "--no-peer"]) != EXIT_OK
    assert "--no-peer" in capsys.readouterr().err
