"""Where ``asr transcribe`` and ``asr dictate`` put their results: several inputs on stdout that a
parser can take apart, ``all`` only into a directory, TIMIT-style trees with ``--keep-folders``,
and dictation as text or JSON Lines with times."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile

from asr.cli.main import main
from asr.cli.output import output_names
from tests.test_formats import check_srt, check_vtt

SAMPLE = "asr/samples/sample.wav"
HEADER = re.compile(r"^==> (.+) <==$", re.MULTILINE)


@pytest.fixture
def timit_tree(tmp_path) -> list[str]:
    """Two recordings of the same name in different folders, as TIMIT has them."""
    paths = []
    for folder in ("dr1-fcjf0", "dr2-faem0"):
        (tmp_path / "timit" / folder).mkdir(parents=True)
        paths.append(str(tmp_path / "timit" / folder / "sa1.wav"))
        shutil.copy(SAMPLE, paths[-1])
    return paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["transcribe", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_json_on_stdout_is_one_json_line_per_input_naming_it(timit_tree, capsys):
    status, out, _ = run(capsys, *timit_tree, "--output-format", "json")
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["input"] for r in records] == timit_tree
    _, single, _ = run(capsys, timit_tree[0], "--output-format", "json")
    assert single.count("\n") == 1 and json.loads(single) == records[0]  # one input: the same record
    assert records[0]["text"] and set(records[0]) == {"input", "text", "duration", "words", "segments"}


def test_subtitles_of_several_inputs_on_stdout_are_separate_valid_documents(timit_tree, capsys):
    _, srt, _ = run(capsys, *timit_tree, "--output-format", "srt")
    assert HEADER.findall(srt) == timit_tree
    documents = HEADER.split(srt)[1:]  # name, document, name, document
    for document in documents[1::2]:
        assert check_srt(document) >= 1
    _, vtt, _ = run(capsys, *timit_tree, "--output-format", "vtt")
    documents = ["WEBVTT\n\n" + d for d in vtt.split("WEBVTT\n\n")[1:]]
    assert len(documents) == len(timit_tree)
    for document, path in zip(documents, timit_tree):
        note = f"NOTE {path}\n\n"
        assert document.startswith("WEBVTT\n\n" + note)
        assert check_vtt(document.replace(note, "")) >= 1
    _, tsv, _ = run(capsys, *timit_tree, "--output-format", "tsv")
    header, *rows = tsv.splitlines()
    assert header == "input\tstart\tend\ttext"
    assert [row.split("\t")[0] for row in rows] == timit_tree
    _, alone, _ = run(capsys, timit_tree[0], "--output-format", "srt")
    assert check_srt(alone) >= 1 and not HEADER.search(alone)  # one input: plain SubRip


def test_all_formats_to_stdout_are_refused_before_any_work(capsys):
    status, out, err = run(capsys, SAMPLE, "--output-format", "all", "--model", "no/such/model")
    assert status == 2 and out == ""
    assert "--output-format all" in err and "--output-dir" in err and "Traceback" not in err


def test_same_names_in_different_folders_need_keep_folders(timit_tree, tmp_path, capsys):
    out = tmp_path / "out"
    status, _, err = run(capsys, *timit_tree, "--output-dir", str(out))
    assert status == 2 and "--keep-folders" in err and not out.exists()
    status, _, _ = run(capsys, *timit_tree, "--output-dir", str(out), "--keep-folders", "--output-format", "json")
    assert status == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json")) == [
        "dr1-fcjf0/sa1.json",
        "dr2-faem0/sa1.json",
    ]
    assert json.loads((out / "dr1-fcjf0" / "sa1.json").read_text())["text"]
    status, _, err = run(capsys, SAMPLE, "--keep-folders")
    assert status == 2 and "--output-dir" in err


def test_output_names_mirror_folders_below_the_common_parent(tmp_path):
    paths = [str(tmp_path / p) for p in ("a/x/t.wav", "a/y/t.wav", "a/y/t.flac", "a/y/u.wav")]
    assert list(output_names(paths, keep_folders=True).values()) == ["x/t", "y/t.wav", "y/t.flac", "y/u"]
    same = [str(tmp_path / "a" / "t.wav"), str(tmp_path / "a" / "." / "t.wav")]
    assert set(output_names(same).values()) == {"t"}  # one file given twice: one name, no clash
    assert output_names([paths[0]], keep_folders=True) == {paths[0]: "t"}


@pytest.fixture
def streaming_model(tmp_path, speechlike):
    from asr.tokenizer import CharTokenizer
    from tests.test_streaming import random_streaming_model

    return random_streaming_model(tmp_path, speechlike, CharTokenizer())


def test_dictate_writes_json_lines_with_segment_times(streaming_model, speechlike, tmp_path, capsys):
    from streaming import Recognizer, RecognizerConfig
    from streaming.endpoint import EndpointConfig

    audio = np.concatenate([speechlike, np.zeros(16000, dtype=np.float32), speechlike])
    wav, out = tmp_path / "talk.wav", tmp_path / "dictated.jsonl"
    soundfile.write(wav, audio, 16000)
    argv = [
        "dictate",
        "--model",
        str(streaming_model.name),
        "--input",
        str(wav),
        "--output",
        str(out),
        "--max-segment",
        "2",
    ]
    assert main([*argv, "--output-format", "json"]) == 0
    printed = capsys.readouterr().out.splitlines()
    config = RecognizerConfig(endpoint=EndpointConfig(max_segment=2.0))
    stream = Recognizer(streaming_model, config).create_stream()
    stream.accept_waveform(soundfile.read(wav, dtype="float32")[0])  # int16-rounded, as dictate reads it
    expected = stream.finish().segments
    records = [json.loads(line) for line in printed]
    assert [(r["start"], r["end"], r["text"]) for r in records] == [(s.start, s.end, s.text) for s in expected]
    assert len(expected) > 1 and all(r["words"] and r["start"] < r["end"] for r in records)
    assert records[0]["words"][0] == {
        "word": expected[0].words[0].word, "start": expected[0].words[0].start, "end": expected[0].words[0].end,
        "confidence": expected[0].words[0].confidence,
    }  # fmt: skip
    assert out.read_text().splitlines() == printed
