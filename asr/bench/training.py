"""Training speed: the real training step against the bare LSTM's forward and backward passes
of the same shapes, and two Gloo processes against one.

The training step is :class:`asr.train.trainer.Trainer`'s, on batches from its own data pipeline (real
speech): SpecAugment, the model, CTC loss, backward, gradient clipping and AdamW. The reference
is ``torch.nn.LSTM`` of the model's stack shapes on the same padded batch shapes, forward and
backward only; the ratio says what the rest of the step costs. The Gloo figure runs the same
steps in two processes of one thread each (``torch.distributed`` with DistributedDataParallel,
as ``torchrun --nproc_per_node 2 -m asr.cli train`` does) against one process of one thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.multiprocessing as mp

from asr.bench.compute import ForwardShapes, bare_lstm
from asr.bench.report import Figure
from asr.checkpoint import Checkpoint
from asr.errors import ASRError
from asr.manifest import Utterance, write_manifest
from asr.tokenizer import TokenizerConfig
from asr.train.config import DataConfig, TrainConfig
from asr.train.data import Batch, bucket_batches, shard_batches, speed_choices
from asr.train.distributed import context_from_env, process_group
from asr.train.loading import build_data
from asr.train.trainer import Trainer

BATCH_FRAMES = 3000  # padded feature frames per batch (30 s of audio)
WARMUP_STEPS = 1
ROUNDS = 2  # each measurement and its reference, alternately
GLOO_PROCESSES = 2
LOCALHOST = "127.0.0.1"
PROCESS_TIMEOUT_SECONDS = 600


def bench_config(checkpoint: Checkpoint, utterances: Sequence[Utterance], workdir: Path) -> TrainConfig:
    """A training configuration with ``checkpoint``'s shapes and features (fresh weights) over
    ``utterances``, writing into ``workdir``.

    An auxiliary phone head is left out: it needs the CMU dictionary, which a bundled model does
    not ship, and the bare-LSTM reference has no counterpart to it."""
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = workdir / "bench.jsonl"
    write_manifest(manifest, utterances)
    stats = workdir / "stats.json"
    stats.write_text(json.dumps(checkpoint.normalizer.to_dict()))
    model = checkpoint.model.config
    return TrainConfig(
        data=DataConfig(train_manifest=str(manifest), valid_manifest=str(manifest), stats=str(stats)),
        exp_dir=str(workdir / "exp"), epochs=1, max_batch_frames=BATCH_FRAMES, speed_factors=(1.0,),
        num_threads=1, checkpoint_every_steps=0, device="cpu", keep_epoch_checkpoints=0,
        model=dataclasses.replace(model, vocab_size=checkpoint.tokenizer.vocab_size, aux_phone_layer=0),
        tokenizer=TokenizerConfig(),
        features=checkpoint.features,
    )  # fmt: skip


def _batches(trainer: Trainer, steps: int, rank: int = 0, world_size: int = 1) -> list[Batch]:
    """This process's share of the first ``steps`` global batches, cycling over the data."""
    config = trainer.config
    indices = bucket_batches(trainer.frames, config.max_batch_frames, config.seed, 0)
    indices = [indices[i % len(indices)] for i in range(steps * world_size)]
    shard = shard_batches(indices, rank, world_size)
    speeds = [speed_choices(config.seed, 0, rank + s * world_size, len(b), 1) for s, b in enumerate(shard)]
    return list(trainer.data.train.batches(shard, speeds))


def _timed_steps(trainer: Trainer, batches: Sequence[Batch]) -> tuple[float, int]:
    """Seconds for the training steps of ``batches`` after the warm-up ones, and their padded frames."""
    for batch in batches[:WARMUP_STEPS]:
        trainer.train_step(batch)
    timed = batches[WARMUP_STEPS:]
    start = time.perf_counter()
    for batch in timed:
        trainer.train_step(batch)
    return time.perf_counter() - start, sum(b.features.shape[0] * b.features.shape[1] for b in timed)


def _bare_forward_backward(trainer: Trainer, batches: Sequence[Batch]) -> float:
    """Seconds of the bare LSTM stack's forward and backward passes on the shapes of ``batches``."""
    network = trainer.model
    first = network.forward_layers[0]
    config = network.config
    generator = torch.Generator().manual_seed(0)
    inputs = []
    for batch in batches:
        frames = int(network.output_lengths(torch.tensor([batch.features.shape[1]]))[0])
        inputs.append(torch.randn(batch.features.shape[0], frames, first.input_size, generator=generator))
    shapes = ForwardShapes(1, 1, first.input_size, config.hidden_size, config.num_layers, config.bidirectional)
    reference = bare_lstm(shapes).train()

    def step(x: torch.Tensor) -> None:
        out, _ = reference(x)
        out.sum().backward()

    for x in inputs[:WARMUP_STEPS]:
        step(x)
    start = time.perf_counter()
    for x in inputs[WARMUP_STEPS:]:
        step(x)
    return time.perf_counter() - start


def bench_training_step(config: TrainConfig, steps: int) -> list[Figure]:
    """Padded feature frames per second of ``steps`` training steps against the bare LSTM's
    forward and backward passes of the same shapes (one thread)."""
    torch.set_num_threads(1)
    trainer = Trainer(config, build_data(config, progress_bars=False), progress_bars=False)
    batches = _batches(trainer, steps + WARMUP_STEPS)
    seconds = bare = float("inf")
    for _ in range(ROUNDS):  # alternated, so that a busy spell slows both alike; the fastest counts
        ours, frames = _timed_steps(trainer, batches)
        seconds = min(seconds, ours)
        bare = min(bare, _bare_forward_backward(trainer, batches))
    described = f"{steps} steps of ≤ {config.max_batch_frames} frames, 1 thread"
    return [
        Figure("training", "training step", frames / seconds, "frames/s", "bare LSTM forward+backward",
               frames / bare, floor=0.75, note=described),
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def _gloo_worker(rank: int, world_size: int, port: int, config: TrainConfig, steps: int, results) -> None:
    """One process of a Gloo job: join it, train ``steps`` global steps, report frames and seconds."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR=LOCALHOST, MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    context = context_from_env()
    with process_group(context, torch.device("cpu")):
        trainer = Trainer(config, build_data(config, progress_bars=False), progress_bars=False, context=context)
        trainer.steps.distribute()
        batches = _batches(trainer, steps + WARMUP_STEPS, rank, world_size)
        seconds, frames = _timed_steps(trainer, batches)
    results.put((rank, seconds, frames))


def gloo_throughput(config: TrainConfig, steps: int, world_size: int) -> float:
    """Padded frames per second of the whole job: ``world_size`` processes of one thread each
    (one process: no process group), each in its own interpreter as torchrun would start it."""
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    processes = [
        context.Process(target=_gloo_worker, args=(rank, world_size, port, config, steps, results))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=PROCESS_TIMEOUT_SECONDS) for _ in processes]
    except queue.Empty:
        reports = []
    for process in processes:
        process.join(timeout=PROCESS_TIMEOUT_SECONDS)
        if process.is_alive():
            process.kill()
    if len(reports) != world_size:
        codes = ", ".join(str(p.exitcode) for p in processes)
        raise ASRError(f"the benchmark's {world_size}-process training job failed (exit statuses {codes})")
    frames = sum(r[2] for r in reports)
    return frames / max(r[1] for r in reports)


def bench_gloo(config: TrainConfig, steps: int) -> list[Figure]:
    """Training throughput of :data:`GLOO_PROCESSES` Gloo processes against one."""
    one = several = 0.0
    for _ in range(ROUNDS):
        one = max(one, gloo_throughput(config, steps, 1))
        several = max(several, gloo_throughput(config, steps, GLOO_PROCESSES))
    return [
        Figure("training", f"{GLOO_PROCESSES} Gloo processes", several, "frames/s", "1 process", one,
               note=f"1 thread each, {steps} global steps; ideal ratio {GLOO_PROCESSES}"),
    ]  # fmt: skip
