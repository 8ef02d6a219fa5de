"""Training killed for real (SIGKILL) mid-epoch and mid-checkpoint-write, then resumed: no
checkpoint is ever left unreadable, and the resumed run ends with exactly the weights of an
uninterrupted one with the same seed (on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asr.checkpoint import load_checkpoint, resolve_checkpoint_dir
from asr.config import dump_toml
from tests.test_train import make_toy_corpus, toy_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.0005
KILL_ATTEMPTS = 8


def start_training(config_path: Path, resume: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "asr.cli", "train", "--config", str(config_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command + (["--resume"] if resume else []), cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(condition, process: subprocess.Popen, timeout: float = 300.0) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(POLL_SECONDS)
    raise TimeoutError("training neither reached the point to kill it nor ended")


def writing(exp: Path) -> bool:
    """A checkpoint write is under way: its temporary directory exists."""
    return any(p.name.startswith(".last.tmp-") for p in exp.iterdir()) if exp.is_dir() else False


def test_sigkill_mid_epoch_and_mid_write_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    corpus = make_toy_corpus(tmp_path)
    straight = toy_config(corpus, exp_dir=str(tmp_path / "straight"), epochs=3, checkpoint_every_steps=1)
    killed = toy_config(corpus, exp_dir=str(tmp_path / "killed"), epochs=3, checkpoint_every_steps=1)
    for config, name in ((straight, "straight.toml"), (killed, "killed.toml")):
        (tmp_path / name).write_text(dump_toml(config))
    process = start_training(tmp_path / "straight.toml", resume=False)
    assert process.wait(timeout=600) == 0, process.stderr.read()

    exp = tmp_path / "killed"
    # 1. Mid-epoch: once the first checkpoint is written, kill the process group outright.
    process = start_training(tmp_path / "killed.toml", resume=False)
    assert wait_for(lambda: (exp / "last").is_dir(), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    load_checkpoint(exp / "last")  # the checkpoint it left is whole

    # 2. Mid-write: resume, and kill the moment a checkpoint's temporary directory appears.
    hit_a_write = False
    for _ in range(KILL_ATTEMPTS):
        process = start_training(tmp_path / "killed.toml", resume=True)
        if not wait_for(lambda: writing(exp), process):
            break  # it finished before a write could be caught
        process.send_signal(signal.SIGKILL)
        process.wait()
        hit_a_write = True
        # Whatever the kill interrupted, a whole checkpoint remains to resume from.
        load_checkpoint(resolve_checkpoint_dir(exp / "last"))
    assert hit_a_write

    process = start_training(tmp_path / "killed.toml", resume=True)
    assert process.wait(timeout=600) == 0, process.stderr.read()
    a = load_checkpoint(tmp_path / "straight" / "last")
    b = load_checkpoint(exp / "last")
    assert a.provenance["history"] == b.provenance["history"]
    for name, weight in a.model.state_dict().items():
        assert torch.equal(weight, b.model.state_dict()[name]), name
