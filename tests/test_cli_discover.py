"""What a new user can find out from ``asr`` itself: its version, the bundled models, every
default in ``--help``, the stats a training run needs; and help that is instant (no torch)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import soundfile

from asr.cli.main import build_parser, main

ASR = [sys.executable, "-m", "asr.cli"]


def subcommand_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """``(words, parser)`` of every (sub)command below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*prefix, name), child
                yield from subcommand_parsers(child, (*prefix, name))


def test_version(capsys):
    from asr import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"asr {__version__}"


def test_models_lists_each_bundled_model_from_its_metadata(capsys):
    from asr.api import BUNDLED_MODELS, bundled_model_path

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in BUNDLED_MODELS:
        directory = bundled_model_path(name)
        meta = json.loads((directory / "model.json").read_text())
        kind = "bidirectional" if meta["model"]["bidirectional"] else "streaming"
        size = meta["weights"]["bytes"] / 1e6
        assert f"{name}  ({kind}, " in out
        storage = meta["weights"].get("storage", "float32")
        # weights plus the small model.json
        assert f"{size:.1f} MB {storage}" in out or f"{size + 0.05:.1f} MB {storage}" in out
        provenance = meta["provenance"]
        saved = next(h for h in provenance["history"] if h["epoch"] == provenance["epoch"])
        assert f"WER {100 * saved['valid_wer']:.1f}% greedy" in out
        tuned = json.loads((directory / "lm" / "decoding.json").read_text())["tuned_on"]
        assert tuned.split()[0] in out and provenance["attribution"].split()[2] in out


@pytest.mark.parametrize("words, parser", list(subcommand_parsers(build_parser())), ids=lambda v: str(v))
def test_help_shows_every_default(words, parser):
    """Every flag with a value of its own shows it (or says in words what happens without it)."""
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or action.default in (None, argparse.SUPPRESS) or action.nargs == 0:
            continue
        if isinstance(action.default, bool):
            continue
        text = formatter._expand_help(action) if action.help else ""
        assert "default" in text, (words, action.option_strings)


def test_dictate_help_names_the_streaming_model():
    help_text = " ".join(dict(subcommand_parsers(build_parser()))[("dictate",)].format_help().split())
    assert "(default: 'streaming')" in help_text and "'default'" not in help_text


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["transcribe", "--help"],
        ["dictate", "--help"],
        ["bench", "--help"],
        ["lm", "build", "--help"],
        ["transcribe", "a.wav", "--threads", "0"],  # a usage error
        ["nonsense"],
    ],
)
def test_help_and_usage_errors_do_not_import_torch(argv):
    script = (
        "import sys\nfrom asr.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_stats_writes_what_train_reads(tmp_path, speechlike, capsys):
    from asr.features import Normalizer
    from asr.manifest import Utterance, read_manifest, write_manifest
    from asr.train.loading import load_normalizer
    from asr.train.recipe import compute_stats

    audio = tmp_path / "a.flac"
    soundfile.write(str(audio), speechlike, 16000)
    manifest = tmp_path / "train.jsonl"
    write_manifest(manifest, [Utterance(audio, "hello", "a"), Utterance(audio, "hello", "b")])
    output = tmp_path / "stats.json"
    assert main(["stats", "--manifest", str(manifest), "--output", str(output)]) == 0
    assert str(output) in capsys.readouterr().out
    loaded = load_normalizer(str(output))
    expected = compute_stats(read_manifest(manifest))
    assert isinstance(loaded, Normalizer) and loaded.to_dict() == json.loads(json.dumps(expected.to_dict()))
