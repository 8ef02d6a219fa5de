"""The layout of an experiment directory: written by training, read by averaging.

::

    <exp_dir>/last          resumable: weights plus trainer state (see asr.train.state)
    <exp_dir>/best          the weights with the lowest validation WER so far
    <exp_dir>/epoch-<n>     the weights after epoch n (counted from 1); training keeps the
                            newest ``keep_epoch_checkpoints`` of them for ``asr average``
    <exp_dir>/tensorboard   training curves

Every checkpoint directory is complete and self-describing (see asr.checkpoint).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

LAST = "last"
BEST = "best"
TENSORBOARD = "tensorboard"
EPOCH_PREFIX = "epoch-"
_EPOCH_NAME = re.compile(re.escape(EPOCH_PREFIX) + r"(\d+)")


def epoch_name(epoch: int) -> str:
    """The checkpoint name of the weights after ``epoch`` (counted from 1)."""
    return f"{EPOCH_PREFIX}{epoch}"


def epoch_checkpoints(exp_dir: str | Path) -> list[tuple[int, Path]]:
    """The ``epoch-<n>`` checkpoint directories of ``exp_dir`` as ``(n, path)``, oldest first.

    Leftovers of an interrupted save (``epoch-<n>.old``, hidden temporary directories) are not
    listed.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        return []
    found = []
    for path in exp_dir.iterdir():
        match = _EPOCH_NAME.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def prune_epoch_checkpoints(exp_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` epoch checkpoints of ``exp_dir``; return what went."""
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    checkpoints = epoch_checkpoints(exp_dir)
    doomed = [path for _, path in checkpoints[: max(0, len(checkpoints) - keep)]]
    for path in doomed:
        shutil.rmtree(path)
        logger.info("removed %s (keeping the newest %d epoch checkpoints)", path, keep)
    return doomed
