"""Resumable training state: progress, optimizer and RNG, stored without pickles.

Stored beside the model in the ``last`` checkpoint directory as ``trainer.json`` (progress,
optimizer hyperparameters, gradient-scaler state, the number of processes that wrote it) and
``trainer.safetensors`` (optimizer moments, rank 0's RNG state). The learning-rate schedule is a
pure function of the global batches done, so the progress restores it.

Progress is counted in *global batches*, the batches of :func:`asr.train.data.bucket_batches`,
which depend on the data, ``max_batch_frames``, ``seed`` and the epoch but not on the number of
processes. A job of W processes trains on W of them per optimizer step (see
:func:`asr.train.data.shard_batches`), and a state is only written between steps, so a state
written by W processes resumes on any other number. The partial epoch: its global batches
``0 .. batch_in_epoch - 1`` are done, and the resumed job shards the rest,
``batch_in_epoch ..``, of the same list over its own processes; nothing is repeated and nothing
skipped (beyond the usual: batches trained after the last save are trained again), and the
epoch's loss sums carry on. What changes with the number of processes is how the remaining
batches group into optimizer steps, and the random draws (speed perturbation, SpecAugment,
dropout) of ranks other than 0, which are reseeded from the step; resumption on one process of
a one-process state is exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from asr.errors import CheckpointError

STATE_JSON = "trainer.json"
STATE_TENSORS = "trainer.safetensors"
_RNG_KEY = "rng/torch"


@dataclass
class TrainingProgress:
    """Where training stands; kept apart from the (frozen) configuration.

    Every field means the same whatever the number of processes; losses and utterance counts
    are summed over all of them.
    """

    epoch: int = 0  # the epoch under way (0-based)
    batch_in_epoch: int = 0  # global batches of this epoch already done: the sampler's position
    step: int = 0  # optimizer steps done overall (each takes one global batch per process)
    best_valid_wer: float = float("inf")
    epoch_loss_sum: float = 0.0  # summed training loss of this epoch's batches so far
    epoch_utterances: int = 0  # utterances of this epoch's batches so far
    history: list[dict] = field(default_factory=list)  # one row of metrics per finished epoch
    batches_done: int = 0  # global batches done overall: the learning-rate schedule's clock
    skipped_steps: int = 0  # steps skipped overall for a loss or gradient that was not finite
    skipped_in_a_row: int = 0  # of which the latest consecutive ones


@dataclass(frozen=True)
class RestoredState:
    progress: TrainingProgress
    world_size: int  # processes of the run that wrote the state


def encode_state(
    progress: TrainingProgress,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    world_size: int = 1,
) -> dict[str, bytes]:
    """Trainer state as file name -> bytes, ready for :func:`asr.checkpoint.save_checkpoint`."""
    opt_state = optimizer.state_dict()
    tensors = {_RNG_KEY: torch.get_rng_state()}
    for param_id, values in opt_state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer/{param_id}/{key}"] = torch.as_tensor(value).detach().cpu().clone()
    meta = {
        "progress": asdict(progress),
        "param_groups": opt_state["param_groups"],
        "world_size": world_size,
        "grad_scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
    }
    return {STATE_JSON: json.dumps(meta, indent=2).encode(), STATE_TENSORS: save_tensors(tensors)}


def restore_state(
    directory: Path, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None
) -> RestoredState:
    """Load optimizer, RNG and gradient-scaler state from ``directory``; return the progress.

    States written before progress counted global batches (one process, so a batch was a step)
    are read too.
    """
    try:
        meta = json.loads((directory / STATE_JSON).read_text())
        tensors = load_tensors((directory / STATE_TENSORS).read_bytes())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{directory}: no usable trainer state to resume from ({exc})") from exc
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer/"):
            _, param_id, key = name.split("/", 2)
            state.setdefault(int(param_id), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors[_RNG_KEY])
    if scaler is not None and scaler.is_enabled() and meta.get("grad_scaler"):
        scaler.load_state_dict(meta["grad_scaler"])
    progress = dict(meta["progress"])
    progress.setdefault("batches_done", progress["step"])
    return RestoredState(TrainingProgress(**progress), int(meta.get("world_size", 1)))
