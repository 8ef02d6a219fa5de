"""Checkpoint averaging: one model whose weights are the mean of the last few epochs'.

Near the end of training the weights wander around a minimum; their mean usually sits closer
to it than any one of them, so the averaged model decodes a little better at no training cost
(icefall's ``--avg``). Only checkpoints that rebuild the same model can be averaged: equal model
configuration, features, normalisation statistics and tokenizer, or the mean would be
meaningless. The result is an ordinary self-describing checkpoint whose provenance is the
newest input's plus ``averaged``: the epochs and directories that went into it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.checkpoint import Checkpoint, PathLike, load_checkpoint, save_checkpoint
from asr.errors import CheckpointError, ConfigError
from asr.network import CTCModel
from asr.train.experiment import epoch_checkpoints

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AveragedCheckpoint:
    output: Path
    sources: tuple[Path, ...]  # the averaged checkpoint directories, oldest first


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts with the same names and shapes.

    Floating-point tensors are summed in float64 and cast back to their own dtype; other tensors
    (counters) are taken from the last state dict.
    """
    if not states:
        raise ValueError("nothing to average")
    averaged = {}
    for name, last in states[-1].items():
        if last.is_floating_point():
            total = sum(state[name].to(torch.float64) for state in states)
            averaged[name] = (total / len(states)).to(last.dtype)
        else:
            averaged[name] = last.clone()
    return averaged


def _differences(a: object, b: object) -> str:
    """The fields in which two dataclasses differ, as ``name: a vs b``."""
    left, right = dataclasses.asdict(a), dataclasses.asdict(b)
    return ", ".join(f"{k}: {left[k]} vs {right[k]}" for k in left if left[k] != right[k])


def check_compatible(directories: Sequence[Path], checkpoints: Sequence[Checkpoint]) -> None:
    """Raise CheckpointError unless every checkpoint rebuilds the same model as the first."""
    first_dir, first = directories[0], checkpoints[0]
    for directory, other in zip(directories[1:], checkpoints[1:]):
        where = f"cannot average {first_dir} and {directory}"
        if other.model.config != first.model.config:
            raise CheckpointError(
                f"{where}: their model configs differ ({_differences(first.model.config, other.model.config)})"
            )
        if other.features != first.features:
            raise CheckpointError(
                f"{where}: their feature settings differ ({_differences(first.features, other.features)})"
            )
        if other.normalizer != first.normalizer:
            raise CheckpointError(f"{where}: their feature normalisation statistics differ")
        if other.tokenizer.to_dict() != first.tokenizer.to_dict():
            raise CheckpointError(f"{where}: their tokenizers differ")


def average_checkpoints(directories: Sequence[PathLike], output: PathLike) -> AveragedCheckpoint:
    """Write to ``output`` the checkpoint whose weights are the mean of ``directories``'.

    Raises:
        CheckpointError: a checkpoint is unreadable, or they do not rebuild the same model.
        ConfigError: no directories, or ``output`` is one of them.
    """
    sources = tuple(Path(d) for d in directories)
    if not sources:
        raise ConfigError("give at least one checkpoint to average")
    output = Path(output)
    if output.resolve() in {s.resolve() for s in sources}:
        raise ConfigError(f"{output}: the output would overwrite one of the checkpoints being averaged")
    checkpoints = [load_checkpoint(s) for s in sources]
    check_compatible(sources, checkpoints)
    model = CTCModel(checkpoints[0].model.config)
    model.load_state_dict(average_state_dicts([c.model.state_dict() for c in checkpoints]))
    newest = checkpoints[-1]
    provenance = dict(newest.provenance)
    provenance["averaged"] = {
        "epochs": [c.provenance.get("epoch") for c in checkpoints],
        "checkpoints": [str(s.resolve()) for s in sources],
    }
    save_checkpoint(output, model, newest.features, newest.normalizer, newest.tokenizer, provenance)
    logger.info("averaged %d checkpoints into %s", len(sources), output)
    return AveragedCheckpoint(output, sources)


def average_last_epochs(exp_dir: PathLike, last: int, output: PathLike) -> AveragedCheckpoint:
    """Average the ``last`` newest ``<exp_dir>/epoch-<n>`` checkpoints into ``output``.

    Raises:
        ConfigError: ``last`` is below 1, or ``output`` is one of the inputs.
        CheckpointError: fewer than ``last`` epoch checkpoints, or they cannot be averaged.
    """
    if last < 1:
        raise ConfigError(f"--last must be at least 1, got {last}")
    available = epoch_checkpoints(exp_dir)
    if len(available) < last:
        names = ", ".join(path.name for _, path in available) or "none"
        raise CheckpointError(
            f"{exp_dir}: cannot average the last {last} epochs, it holds {len(available)} epoch checkpoints ({names}); "
            "training keeps keep_epoch_checkpoints of them"
        )
    return average_checkpoints([path for _, path in available[-last:]], output)
