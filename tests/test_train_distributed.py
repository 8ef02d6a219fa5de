"""Training on several processes: batch sharding, a real two-process run, resumption on one."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import asr.train.loading
import asr.train.trainer
from asr.checkpoint import load_checkpoint
from asr.errors import ConfigError
from asr.network import ModelConfig
from asr.train.augment import SpecAugmentConfig
from asr.train.config import TrainConfig
from asr.train.data import bucket_batches, collate, global_batches_in_step, shard_batches
from asr.train.distributed import DistributedContext, context_from_env
from tests.test_train import make_toy_corpus, toy_config

REPO_ROOT = Path(__file__).resolve().parents[1]
WORLD_SIZE = 2
SUBPROCESS_TIMEOUT_S = 300


def test_every_batch_is_used_once_per_epoch_in_equal_steps():
    batches = [[i, 100 + i] for i in range(11)]
    for world_size in (1, 2, 3, 4, 11, 12):
        shards = [shard_batches(batches, rank, world_size) for rank in range(world_size)]
        assert len({len(shard) for shard in shards}) == 1, world_size  # every rank, every step
        for step in range(len(shards[0])):
            in_step = [shard[step] for shard in shards if shard[step]]
            # Step s trains on global batches s * W ... s * W + W - 1, whole and in order.
            assert in_step == batches[step * world_size : (step + 1) * world_size]
            assert len(in_step) == global_batches_in_step(len(batches), step, world_size)
        used = sorted(tuple(batch) for shard in shards for batch in shard if batch)
        assert used == sorted(tuple(batch) for batch in batches)
    assert shard_batches(batches, 0, 1) == batches
    assert shard_batches([], 0, 2) == []
    with pytest.raises(ValueError, match="rank 2"):
        shard_batches(batches, 2, 2)


@pytest.mark.parametrize("before, after", [(2, 1), (1, 2), (3, 2), (2, 4)])
def test_resuming_mid_epoch_on_another_number_of_processes_uses_every_batch_once(before, after):
    frames = [int(x) for x in np.random.default_rng(0).integers(100, 900, size=60)]
    batches = [tuple(b) for b in bucket_batches(frames, 2000, seed=3, epoch=0)]
    steps_before_the_crash = 3
    shards = [shard_batches(batches, rank, before) for rank in range(before)]
    trained = [tuple(shard[step]) for step in range(steps_before_the_crash) for shard in shards if shard[step]]
    # What train_one_epoch records as the position, in global batches.
    position = sum(global_batches_in_step(len(batches), step, before) for step in range(steps_before_the_crash))
    remaining = batches[position:]
    trained += [tuple(batch) for rank in range(after) for batch in shard_batches(remaining, rank, after) if batch]
    assert len(trained) == len(batches) and sorted(trained) == sorted(batches)


def test_context_comes_from_torchruns_environment():
    assert context_from_env({}) == DistributedContext(0, 0, 1)
    context = context_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (context.rank, context.local_rank, context.world_size, context.is_main) == (3, 1, 4, False)
    with pytest.raises(ConfigError, match="inconsistent"):
        context_from_env({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(ConfigError, match="RANK"):
        context_from_env({"WORLD_SIZE": "2", "RANK": "zero"})


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    return repr(value)


def write_toml(config: TrainConfig, path: Path) -> Path:
    """``config`` as a TOML file that :func:`asr.train.config.load_train_config` reads back."""
    settings = dataclasses.asdict(config)
    lines = [f"{key} = {toml_value(v)}" for key, v in settings.items() if not isinstance(v, dict)]
    for table, values in settings.items():
        if isinstance(values, dict):
            lines += [f"[{table}]"] + [f"{key} = {toml_value(v)}" for key, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_asr(args: list[str], processes: int) -> subprocess.CompletedProcess:
    """``asr -v <args>`` as one plain process, or as ``processes`` under torchrun."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
    return subprocess.run(
        [*launcher, "-m", "asr.cli", "-v", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )  # fmt: skip


def deterministic_config(root: Path, **overrides) -> TrainConfig:
    """The toy config without random draws in training (speed, masks, dropout), and small."""
    return toy_config(
        root, epochs=1, num_threads=1, speed_factors=(1.0,),
        specaugment=SpecAugmentConfig(freq_masks=0, time_masks=0),
        model=ModelConfig(hidden_size=32, num_layers=1, dropout=0.0), **overrides,
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    root = make_toy_corpus(tmp_path_factory.mktemp("ddp"))
    config = deterministic_config(root)
    result = run_asr(["train", "--config", str(write_toml(config, root / "tiny.toml"))], WORLD_SIZE)
    assert result.returncode == 0, result.stderr
    return root, config, result


def epoch_batches(config: TrainConfig, epoch: int) -> list[list[int]]:
    data = asr.train.loading.build_data(config, progress_bars=False)
    frames = [data.train.num_frames(i) for i in range(len(data.train))]
    return bucket_batches(frames, config.max_batch_frames, config.seed, epoch)


def train_on_step_unions(config: TrainConfig, world_size: int) -> dict[str, torch.Tensor]:
    """One process, one epoch, each step on the union of the batches ``world_size`` would share."""
    torch.manual_seed(config.seed)  # as asr.train.trainer.train does before building the model
    data = asr.train.loading.build_data(config, progress_bars=False)
    trainer = asr.train.trainer.Trainer(config, data, progress_bars=False)
    batches = bucket_batches(trainer.frames, config.max_batch_frames, config.seed, 0)
    for start in range(0, len(batches), world_size):
        group = batches[start : start + world_size]
        union = [data.train.examples[i] for batch in group for i in batch]
        trainer.train_step(collate(union, [0] * len(union)))  # one speed factor: index 0
        trainer.progress.batches_done += len(group)
    return trainer.model.state_dict()


def test_two_processes_train_one_model_like_one_process_on_their_joint_batches(two_process_run):
    root, config, result = two_process_run
    exp = root / "exp"
    assert json.loads(result.stdout)["epoch"] == 1  # printed once, by rank 0
    log = result.stderr
    assert log.count("asr.train.trainer: epoch 1: train loss") == 1
    assert log.count("train: 24 utterances loaded") == 1
    assert log.count("epoch 1: weights identical on all 2 processes") == 1
    assert sorted(p.name for p in exp.iterdir()) == ["best", "epoch-1", "last", "tensorboard"]
    assert len(list((exp / "tensorboard").iterdir())) == 1  # one writer: rank 0's

    state = json.loads((exp / "last" / "trainer.json").read_text())
    num_batches = len(epoch_batches(config, 0))
    assert state["world_size"] == WORLD_SIZE
    assert state["progress"]["epoch"] == 1 and state["progress"]["batch_in_epoch"] == 0
    assert state["progress"]["batches_done"] == num_batches
    assert state["progress"]["step"] == -(-num_batches // WORLD_SIZE)

    # The gradient of a two-process step is that of the summed loss of both batches over all their
    # utterances, and the padding slot of the epoch's last step adds nothing.
    expected = train_on_step_unions(config, WORLD_SIZE)
    trained = load_checkpoint(exp / "epoch-1").model.state_dict()
    for name, weight in trained.items():
        torch.testing.assert_close(weight, expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_two_process_checkpoint_resumes_on_one_process(two_process_run, tmp_path):
    root, config, _ = two_process_run
    shutil.copytree(root / "exp", tmp_path / "exp")
    first_state = json.loads((root / "exp" / "last" / "trainer.json").read_text())["progress"]
    config = dataclasses.replace(config, exp_dir=str(tmp_path / "exp"), epochs=2)
    result = run_asr(["train", "--config", str(write_toml(config, tmp_path / "tiny.toml")), "--resume"], 1)
    assert result.returncode == 0, result.stderr
    assert "(written by 2 process(es), continuing on 1) at epoch 2, global batch 0" in result.stderr
    assert json.loads(result.stdout)["epoch"] == 2
    state = json.loads((tmp_path / "exp" / "last" / "trainer.json").read_text())
    progress = state["progress"]
    batches_of_epoch_2 = len(epoch_batches(config, 1))  # one per step on one process
    assert state["world_size"] == 1 and progress["epoch"] == 2 and progress["batch_in_epoch"] == 0
    assert progress["batches_done"] == first_state["batches_done"] + batches_of_epoch_2
    assert progress["step"] == first_state["step"] + batches_of_epoch_2
    assert [row["epoch"] for row in progress["history"]] == [1, 2]
    assert progress["history"][0] == first_state["history"][0]
    assert (tmp_path / "exp" / "epoch-2").is_dir() and (tmp_path / "exp" / "epoch-1").is_dir()
