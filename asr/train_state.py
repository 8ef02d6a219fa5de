"""Resumable training state: progress, optimizer and RNG, stored without pickles.

Stored beside the model in the ``last`` checkpoint directory as ``trainer.json`` (progress,
optimizer hyperparameters) and ``trainer.safetensors`` (optimizer moments, RNG state). The
learning-rate schedule is a pure function of the step, so the step restores it.
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
    """Where training stands; kept apart from the (frozen) configuration."""

    epoch: int = 0  # the epoch under way (0-based)
    batch_in_epoch: int = 0  # batches of this epoch already done: the sampler's position
    step: int = 0  # optimizer steps done overall
    best_valid_wer: float = float("inf")
    epoch_loss_sum: float = 0.0  # summed training loss of this epoch's batches so far
    epoch_utterances: int = 0  # utterances of this epoch's batches so far
    history: list[dict] = field(default_factory=list)  # one row of metrics per finished epoch


def encode_state(progress: TrainingProgress, optimizer: torch.optim.Optimizer) -> dict[str, bytes]:
    """Trainer state as file name -> bytes, ready for :func:`asr.checkpoint.save_checkpoint`."""
    opt_state = optimizer.state_dict()
    tensors = {_RNG_KEY: torch.get_rng_state()}
    for param_id, values in opt_state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer/{param_id}/{key}"] = torch.as_tensor(value).clone()
    meta = {"progress": asdict(progress), "param_groups": opt_state["param_groups"]}
    return {STATE_JSON: json.dumps(meta, indent=2).encode(), STATE_TENSORS: save_tensors(tensors)}


def restore_state(directory: Path, optimizer: torch.optim.Optimizer) -> TrainingProgress:
    """Load optimizer and RNG state from ``directory``; return the progress to continue from."""
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
    return TrainingProgress(**meta["progress"])
