"""How ``asr`` fails: one line and the right status for every bad flag, input and output
(issue 19: no traceback for any input or flag; bad usage exits 2, failed inputs exit 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from asr.cli.main import main

ASR = [sys.executable, "-m", "asr.cli"]


@pytest.fixture
def good(tmp_path, speechlike) -> Path:
    path = tmp_path / "good.flac"
    soundfile.write(str(path), speechlike, 16000)
    return path


@pytest.mark.parametrize(
    "flags",
    [
        ["--threads", "0"],
        ["--threads", "-1"],
        ["--threads", "two"],
        ["--max-segment-seconds", "0"],
        ["--max-segment-seconds", "0.01"],
        ["--max-segment-seconds", "nan"],
        ["--beam-size", "0"],
        ["--nbest", "-2"],
        ["--beam-threshold", "-1"],
        ["--lm-weight", "inf"],
        ["--word-score", "nan"],
    ],
)
def test_numeric_flags_out_of_range_are_one_line_usage_errors(good, flags, capsys):
    with pytest.raises(SystemExit) as info:
        main(["transcribe", str(good), *flags])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and flags[0] in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["lm", "build", "--text", "t.txt", "--output", "o", "--order", "7"],
        ["lm", "build", "--text", "t.txt", "--output", "o", "--prune", "0", "-1"],
        ["average", "--exp-dir", "e", "--last", "0", "--output", "o"],
        ["bpe", "--manifest", "m", "--vocab-size", "1", "--output", "o"],
        ["dictate", "--max-segment", "0"],
        ["dictate", "--silence-after-speech", "-1"],
        ["bench", "--seconds", "0"],
        ["bench", "--repeats", "0"],
        ["stats", "--manifest", "m", "--output", "o", "--max-utterances", "0"],
    ],
)
def test_every_commands_numbers_are_checked_at_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and "out of range" in capsys.readouterr().err


def test_align_probes_a_long_transcript_safely(tiny_checkpoint, good, capsys):
    """A transcript longer than a file name may be is text, not a path (was: OSError)."""
    text = "hello world " * 40
    status = main(["align", str(good), text, "--model", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert status == 1  # too long for two seconds of audio: the input failed
    assert str(good) in err and "need more than" in err


def test_align_transcript_too_long_for_the_audio_names_the_file_and_exits_1(tiny_checkpoint, good, capsys):
    assert main(["align", str(good), "a b " * 100, "--model", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {good}:") and len(err.strip().splitlines()) == 1


def test_output_dir_that_is_a_file_is_named(tiny_checkpoint, good, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("")
    status = main(["transcribe", str(good), "--model", str(tiny_checkpoint), "--output-dir", str(target)])
    err = capsys.readouterr().err
    assert status == 2 and str(target) in err and len(err.strip().splitlines()) == 1


def test_align_manifest_output_dir_that_is_a_file_is_named(tiny_checkpoint, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    status = main(["align", "--manifest", str(manifest), "--output-dir", str(target), "--model", str(tiny_checkpoint)])
    assert status == 2 and f"{target}: exists and is not a folder" in capsys.readouterr().err


def test_a_pipe_closed_early_ends_quietly(tiny_checkpoint, good):
    """``asr transcribe *.flac | head -1``: the rest of the output has nowhere to go."""
    files = [str(good)] * 40
    command = [*ASR, "transcribe", *files, "--model", str(tiny_checkpoint), "--output-format", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # as head does after its line
    _, err = process.communicate(timeout=300)
    assert b"Traceback" not in err and b"BrokenPipe" not in err and b"Exception ignored" not in err
    assert process.returncode in (0, 1)


def test_an_unwritable_output_is_one_line(tiny_checkpoint, good, tmp_path):
    """Output to a full device: one line, status 1, no traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    command = [*ASR, "transcribe", str(good), "--model", str(tiny_checkpoint)]
    with open("/dev/full", "w") as full:
        result = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert "Traceback" not in result.stderr and result.returncode == 1


def test_a_missing_lm_is_no_such_file(good, tmp_path, capsys):
    status = main(["transcribe", str(good), "--lm", str(tmp_path / "nope.bin")])
    err = capsys.readouterr().err
    assert status == 2 and "nope.bin: no such language model file" in err and "lexicon" not in err


def test_a_corrupt_lm_beside_a_lexicon_is_one_line_naming_it(good, tmp_path, capsys):
    from asr.api import bundled_model_path

    lm_dir = bundled_model_path("default") / "lm"
    corrupt = tmp_path / "lm.bin"
    corrupt.write_bytes((lm_dir / "lm.bin").read_bytes()[:100_000])  # a binary cut short
    (tmp_path / "lexicon.txt").write_bytes((lm_dir / "lexicon.txt").read_bytes())
    status = main(["transcribe", str(good), "--lm", str(corrupt)])
    err = capsys.readouterr().err
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"{corrupt}: cannot be read as a KenLM language model" in lines[0]


def test_an_unknown_model_name_lists_the_bundled_ones(good, capsys):
    from asr.api import BUNDLED_MODELS

    assert main(["transcribe", str(good), "--model", "defualt"]) == 2
    err = capsys.readouterr().err
    assert "defualt" in err and all(name in err for name in BUNDLED_MODELS)


def test_beam_flags_without_decoder_imply_beam_search():
    from asr.cli.common import decode_options, resolve_decoder
    from asr.cli.main import build_parser
    from asr.decoding.registry import DEFAULT_DECODER, decoder_entry

    parser = build_parser()
    for flags in (["--nbest", "3", "--beam-size", "4"], ["--lm-weight", "0.5"], ["--no-lm"], ["--beam-size", "16"]):
        args = parser.parse_args(["transcribe", "a.wav", *flags])
        resolve_decoder(args)
        assert decoder_entry(args.decoder).uses_beam, flags
        assert "beam_size" in decode_options(args)
    args = parser.parse_args(["transcribe", "a.wav"])
    resolve_decoder(args)
    assert args.decoder == DEFAULT_DECODER


def test_beam_flags_with_a_decoder_that_reads_none_are_refused(good, capsys):
    from asr.decoding.registry import DECODERS

    greedy = next(name for name, entry in DECODERS.items() if not entry.uses_beam)
    assert main(["transcribe", str(good), "--decoder", greedy, "--nbest", "2"]) == 2
    assert "--nbest" in capsys.readouterr().err


def test_parser_defaults_are_the_librarys():
    from asr.api import BEAM_OPTIONS, TranscribeOptions
    from asr.cli.common import resolve_decoder
    from asr.cli.main import build_parser

    args = build_parser().parse_args(["transcribe", "a.wav"])
    resolve_decoder(args)
    defaults = TranscribeOptions()
    for name in (*BEAM_OPTIONS, "decoder", "word_timestamps"):
        assert getattr(args, name) == getattr(defaults, name), name
    assert args.max_segment_seconds == defaults.max_segment_seconds


@pytest.mark.parametrize(
    "raised, status, said",
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (BrokenPipeError(32, "Broken pipe"), 1, ""),
        (OSError(28, "No space left on device"), 1, "cannot write the output: No space left on device"),
        (PermissionError(13, "Permission denied", "/out/a.txt"), 1, "/out/a.txt: Permission denied"),
    ],
)
def test_how_a_command_ends(raised, status, said, capsys):
    import argparse

    from asr.cli.errors import run_command

    def command(args):
        raise raised

    assert run_command(argparse.Namespace(func=command)) == status
    err = capsys.readouterr().err
    assert said in err and len(err.splitlines()) <= 1 and "Traceback" not in err


def test_no_flag_takes_an_unchecked_number():
    """Every numeric flag of every command goes through a checked type (asr.cli.args): bare
    ``int`` or ``float`` would let 0, -1, nan or inf through to the library."""
    from asr.cli.main import build_parser
    from tests.test_cli_discover import subcommand_parsers

    unchecked = [
        (words, action.option_strings)
        for words, parser in subcommand_parsers(build_parser())
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert unchecked == []
