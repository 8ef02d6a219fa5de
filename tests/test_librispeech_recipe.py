"""The LibriSpeech recipe on a tiny corpus in its layout: each stage, and all of them end to end
(download from a server on 127.0.0.1, two Gloo training processes, killing and resuming)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asr.bpe import BPETokenizer
from asr.checkpoint import load_checkpoint
from asr.lm.build import write_lexicon
from asr.manifest import read_manifest
from asr.tokenizer import CharTokenizer, TokenizerConfig
from tests.librispeech_corpus import build_tiny_librispeech, tar_subset

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO_ROOT / "recipes" / "librispeech"
SUBSETS = {"train-clean-100": (3, 12), "dev-clean": (1, 6), "test-clean": (1, 6)}


@pytest.fixture
def recipe():
    from recipes.librispeech import run

    return run


@pytest.fixture
def corpus(shared_data, tmp_path):
    build_tiny_librispeech(shared_data, tmp_path / "corpus", SUBSETS)
    return tmp_path / "corpus"


def run_stages(recipe, corpus: Path, work: Path, first: int, last: int, *extra: str) -> None:
    subsets = list(SUBSETS)
    assert recipe.main([
        "--stage", str(first), "--stop-stage", str(last), "--data-dir", str(corpus), "--work-dir", str(work),
        "--subsets", *subsets, "--config", str(RECIPE_DIR / "conf" / "debug.toml"), *extra,
    ]) == 0  # fmt: skip


def test_prepare_stats_and_tokens(recipe, corpus, tmp_path, caplog):
    work = tmp_path / "work"
    run_stages(recipe, corpus, work, 1, 2)
    run_stages(recipe, corpus, work, 4, 4)
    data = work / "data"
    train = read_manifest(data / "train.jsonl")
    assert len(train) == 36 and len(read_manifest(data / "valid.jsonl")) == 6
    assert read_manifest(data / "test-clean.jsonl")[0].id == "1020-100-0000"
    assert all(u.audio.is_file() and u.duration > 0.5 and u.speaker for u in train)
    assert not Path(json.loads((data / "train.jsonl").read_text().splitlines()[0])["audio"]).is_absolute()
    stats = json.loads((data / "stats.json").read_text())
    assert len(stats["mean"]) == 80
    assert (data / "tokens.txt").read_text().splitlines() == list(CharTokenizer().tokens)
    # Done work is skipped on the next run: a changed manifest stays changed.
    (data / "dev-clean.jsonl").write_text((data / "dev-clean.jsonl").read_text().splitlines()[0] + "\n")
    run_stages(recipe, corpus, work, 1, 2)
    assert len(read_manifest(data / "dev-clean.jsonl")) == 1
    # Statistics made from other transcripts are redone (a debug run sharing the work folder).
    (data / "train.jsonl").write_text("".join((data / "train.jsonl").read_text().splitlines(keepends=True)[:12]))
    caplog.set_level(logging.INFO)
    run_stages(recipe, corpus, work, 2, 2)
    assert "stage 2 stats was done from other inputs; redoing it" in caplog.text


def test_bpe_units_their_lexicon_and_the_training_config(recipe, corpus, tmp_path, caplog):
    from recipes.librispeech.stages import lexicon_path, training_config

    work = tmp_path / "work"
    run_stages(recipe, corpus, work, 1, 2, "--bpe-size", "40")
    data = work / "data"
    # Stage 4 spells the words of stage 3's character lexicon in pieces, beside it.
    words = read_manifest(data / "train.jsonl")[0].text.split()
    (data / "lm").mkdir()
    write_lexicon(words, data / "lm" / "lexicon.txt", CharTokenizer())
    run_stages(recipe, corpus, work, 4, 4, "--bpe-size", "40")
    tokenizer = BPETokenizer.from_file(data / "bpe-40.model")
    assert tokenizer.vocab_size == 40
    assert (data / "tokens.txt").read_text().splitlines() == list(tokenizer.tokens)
    lexicon = lexicon_path(data / "lm", tokenizer)
    assert lexicon.name == "lexicon-bpe-40.txt"
    assert lexicon.read_text().splitlines() == [f"{w}\t{' '.join(tokenizer.spell(w))}" for w in sorted(set(words))]
    # Stage 5's derived config trains on those units, in an experiment folder of its own.
    config = training_config(RECIPE_DIR / "conf" / "debug.toml", data, work / "exp", bpe_size=40)
    assert config.tokenizer == TokenizerConfig("bpe", str(data / "bpe-40.model")) and config.model.vocab_size == 40
    assert training_config(RECIPE_DIR / "conf" / "debug.toml", data, work / "exp").tokenizer == TokenizerConfig()
    assert recipe.Paths(corpus, work, RECIPE_DIR / "conf" / "debug.toml", 40).exp == work / "exp" / "debug-bpe-40"
    caplog.set_level(logging.INFO)
    run_stages(recipe, corpus, work, 4, 4, "--bpe-size", "40")
    assert "stage 4 tokens already done; skipping" in caplog.text


def test_recipe_configs_load(recipe, tmp_path):
    from recipes.librispeech.stages import training_config

    for path in sorted((RECIPE_DIR / "conf").glob("*.toml")):
        if path.name != "decode.toml":
            assert training_config(path, tmp_path, tmp_path / "exp", bpe_size=500).model.vocab_size == 500


def test_a_transcript_line_without_text_is_named(recipe, corpus, tmp_path):
    from recipes.librispeech.prepare import PrepareError

    trans = next((corpus / "LibriSpeech" / "dev-clean").glob("*/*/*.trans.txt"))
    trans.write_text(trans.read_text() + "1010-100-9999\n")
    with pytest.raises(PrepareError, match=rf"{trans.name}:7"):
        run_stages(recipe, corpus, tmp_path / "work", 1, 1)


def test_subsets_without_a_dev_set_are_refused(recipe, corpus, tmp_path):
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match="dev-"):
        recipe.main(["--stage", "1", "--stop-stage", "1", "--data-dir", str(corpus), "--work-dir",
                     str(tmp_path / "w"), "--subsets", "train-clean-100"])  # fmt: skip


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture
def mirror(corpus, tmp_path):
    """The tiny corpus as tarballs on an HTTP server at 127.0.0.1, with their checksums."""
    served = tmp_path / "mirror"
    served.mkdir()
    sums = []
    for subset in SUBSETS:
        archive = tar_subset(corpus / "LibriSpeech", subset, served / f"{subset}.tar.gz")
        sums.append(f"{hashlib.sha256(archive.read_bytes()).hexdigest()}  {archive.name}\n")
    (tmp_path / "SHA256SUMS").write_text("".join(sums))
    handler = functools.partial(QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/resources/12", tmp_path / "SHA256SUMS"
    server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass

    def translate_path(self, path: str) -> str:  # serve <dir>/x for /resources/12/x
        return super().translate_path(path.replace("/resources/12", "", 1))


def recipe_command(work: Path, data: Path, first: int, last: int, *extra: str) -> list[str]:
    """The recipe as a user runs it, from the repository root (``cwd=REPO_ROOT``)."""
    return [
        sys.executable, "-m", "recipes.librispeech.run", "--stage", str(first), "--stop-stage", str(last),
        "--data-dir", str(data), "--work-dir", str(work), "--subsets", *SUBSETS, *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_every_stage_end_to_end_with_two_training_processes(mirror, tmp_path):
    url, checksums = mirror
    work, data = tmp_path / "work", tmp_path / "download"
    command = recipe_command(
        work, data, 0, 7, "--mirror", url, "--checksums", str(checksums), "--config", "conf/debug.toml",
        "--nproc", "2", "--average", "2",
    )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (data / "LibriSpeech" / "test-clean" / ".complete").is_file()
    exp = work / "exp" / "debug"
    assert load_checkpoint(exp / "best").provenance["world_size"] == 2
    assert load_checkpoint(exp / "averaged").provenance["averaged"]["epochs"] == [2, 3]
    table = (exp / "results.md").read_text()
    for name in ("| dev-clean | greedy |", "| test-clean | beam16 |", "| test-clean | beam16-lm |"):
        assert name in table
    for report in ("recogs.jsonl", "errors.txt", "wer-summary.txt", "summary.json"):
        assert (exp / "decode" / "test-clean" / "greedy" / report).is_file()
    # Run again: every stage finds its work done.
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=REPO_ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    stages = ("0 download", "1 prepare", "2 stats", "3 lm", "4 tokens", "5 train-debug", "6 average-debug",
              "7 decode-debug")  # fmt: skip
    for skipped in stages:
        assert f"stage {skipped} already done; skipping" in again.stderr


@pytest.mark.slow
def test_bpe_run_trains_and_decodes_with_its_own_lexicon(corpus, tmp_path):
    work = tmp_path / "work"
    command = recipe_command(work, corpus, 1, 7, "--config", "conf/debug.toml", "--bpe-size", "40", "--average", "2")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    exp = work / "exp" / "debug-bpe-40"
    assert load_checkpoint(exp / "averaged").tokenizer == BPETokenizer.from_file(work / "data" / "bpe-40.model")
    assert (work / "data" / "lm" / "lexicon.txt").is_file() and (work / "data" / "lm" / "lexicon-bpe-40.txt").is_file()
    assert "| test-clean | beam16-lm |" in (exp / "results.md").read_text()


@pytest.mark.slow
def test_killed_training_resumes_and_finishes(corpus, tmp_path):
    work = tmp_path / "work"
    config = tmp_path / "long.toml"
    config.write_text((RECIPE_DIR / "conf" / "debug.toml").read_text().replace("epochs = 3", "epochs = 12"))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    prepare = subprocess.run(recipe_command(work, corpus, 1, 2), capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert prepare.returncode == 0, prepare.stderr[-3000:]
    command = recipe_command(work, corpus, 5, 5, "--config", str(config))
    training = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, cwd=REPO_ROOT)  # fmt: skip
    state = work / "exp" / "long" / "last" / "trainer.json"
    deadline = time.monotonic() + 300
    while not state.is_file() and time.monotonic() < deadline and training.poll() is None:
        time.sleep(0.2)
    assert training.poll() is None, "training ended before it could be killed"
    os.killpg(training.pid, signal.SIGKILL)  # the recipe and its training process, mid-run
    training.wait()
    interrupted = json.loads(state.read_text())
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stderr
    history = load_checkpoint(work / "exp" / "long" / "last").provenance["history"]
    assert [row["epoch"] for row in history] == list(range(1, 13))
    assert interrupted  # there was a resumable state to continue from
