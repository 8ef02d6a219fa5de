"""One training job on one process or many: the process group and the few collectives it needs.

``torchrun`` (``python -m torch.distributed.run``) starts one process per device and tells each
its place through the environment: ``WORLD_SIZE`` (processes in all), ``RANK`` (this process,
0 to ``WORLD_SIZE - 1``, over all nodes) and ``LOCAL_RANK`` (this process on its node, which
picks its GPU), plus ``MASTER_ADDR``/``MASTER_PORT`` for the rendezvous that
:func:`torch.distributed.init_process_group` reads. Without those variables, or with
``WORLD_SIZE=1``, the job is one ordinary process and every function here is a no-op.

Rank 0 is the main process: it alone logs, writes TensorBoard and checkpoints. The others only
compute; they meet rank 0 in the collectives of each training step.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from asr.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Rank 0 validates and writes checkpoints while the other ranks wait in their next collective;
# on a large validation set that outlasts NCCL's default 10 minutes, so allow an hour.
COLLECTIVE_TIMEOUT = timedelta(hours=1)
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job; the default is a job of one process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = DistributedContext()


def context_from_env(environ: Mapping[str, str] | None = None) -> DistributedContext:
    """The context torchrun describes in ``environ`` (default ``os.environ``).

    Raises:
        ConfigError: a variable is not an integer, or the ranks do not fit the world size.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for name, default in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0)):
        try:
            values[name] = int(environ.get(name, default))
        except ValueError as exc:
            raise ConfigError(f"environment variable {name}={environ[name]!r} is not an integer") from exc
    context = DistributedContext(values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"])
    if context.world_size < 1 or not 0 <= context.rank < context.world_size or context.local_rank < 0:
        raise ConfigError(f"inconsistent torchrun environment: {context}")
    return context


def select_device(preference: str, context: DistributedContext) -> torch.device:
    """The device this process trains on: ``"auto"`` takes GPU ``LOCAL_RANK`` when CUDA works.

    Raises:
        ConfigError: ``preference`` is unknown, ``"cuda"`` without CUDA, or more processes on
            this node than GPUs.
    """
    if preference not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {preference!r}")
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device = 'cuda' but CUDA is not available on this machine")
    if context.local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK {context.local_rank} has no GPU of its own (this node has {torch.cuda.device_count()}); "
            "start at most that many processes per node"
        )
    return torch.device("cuda", context.local_rank)


@contextlib.contextmanager
def process_group(context: DistributedContext, device: torch.device) -> Iterator[None]:
    """Join the job's process group for the block (NCCL on GPUs, Gloo on CPUs); leave it after.

    The group is destroyed however the block ends, so an error on one rank does not leave the
    process hanging at exit (torchrun then stops the other ranks).
    """
    if not context.is_distributed:
        yield
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    logger.info("process %d of %d joined the %s process group", context.rank, context.world_size, backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place; returned for convenience."""
    if context.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_from_main(value: T, context: DistributedContext) -> T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not context.is_distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(context: DistributedContext) -> None:
    if context.is_distributed:
        dist.barrier()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in order: equal exactly when the weights are."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def replicas_agree(module: torch.nn.Module, context: DistributedContext) -> bool:
    """Whether every rank holds bit-identical weights, as DistributedDataParallel promises."""
    if not context.is_distributed:
        return True
    fingerprints: list[Any] = [None] * context.world_size
    dist.all_gather_object(fingerprints, weights_fingerprint(module))
    return len(set(fingerprints)) == 1
