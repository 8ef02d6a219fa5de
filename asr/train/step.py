"""One optimizer step of training: the learning-rate schedule, the CTC loss, the update on one
process's batch, the skipping of steps whose loss or gradient is not finite, and the step's log.

:class:`StepRunner` holds what only the steps use: the network being trained (the replica, or
the replica wrapped in DistributedDataParallel), SpecAugment and the batch to rerun. The model,
optimizer, gradient scaler and progress belong to :class:`asr.train.trainer.Trainer`, which saves them
in checkpoints and hands them in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from asr.errors import ASRError, TrainingError
from asr.features import Normalizer
from asr.network import CTCModel
from asr.phones import PhoneTargets, cached_cmudict
from asr.train.augment import SpecAugment
from asr.train.config import TrainConfig
from asr.train.data import Batch
from asr.train.distributed import DistributedContext, all_reduce_sum
from asr.train.state import TrainingProgress

logger = logging.getLogger(__name__)

# Steps with a non-finite loss or gradient are skipped; this many in a row end training.
MAX_SKIPPED_IN_A_ROW = 20


@dataclass(frozen=True)
class StepStats:
    """One optimizer step, summed over all processes."""

    loss_sum: float  # summed CTC loss of the step's utterances
    utterances: int
    lr: float
    grad_norm: float


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warm-up to ``peak_lr`` then cosine decay to ``min_lr_ratio * peak_lr``.

    ``step`` and ``total_steps`` count global batches (see :mod:`asr.train.state`), so the
    schedule follows the data seen whatever the number of processes; with one process a global
    batch is an optimizer step.
    """
    optim = config.optim
    if step < optim.warmup_steps:
        return optim.peak_lr * (step + 1) / optim.warmup_steps
    progress = min(1.0, (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps))
    floor = optim.min_lr_ratio
    return optim.peak_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def ctc_loss(log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Summed CTC loss of ``(N, T', V)`` log-probabilities (``(N,)`` valid frames each)
    against the batch's ``(N, L)`` tokens; a scalar."""
    return torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1),  # (T', N, V), as ctc_loss wants
        batch.tokens,
        out_lengths,
        batch.token_lengths,
        blank=0,
        reduction="sum",
        zero_infinity=True,
    )


def phone_ctc_loss(
    phone_log_probs: torch.Tensor, out_lengths: torch.Tensor, texts: tuple[str, ...], phones: PhoneTargets
) -> torch.Tensor:
    """Summed CTC loss of ``(N, T', P)`` phone log-probabilities against the dictionary's
    phones of ``texts``; utterances with a word the dictionary lacks contribute 0. A scalar."""
    targets, target_lengths, known = phones.batch(texts)
    device = phone_log_probs.device
    losses = torch.nn.functional.ctc_loss(
        phone_log_probs.transpose(0, 1).float(),  # (T', N, P)
        targets.to(device),
        out_lengths,
        target_lengths.to(device),
        blank=0,
        reduction="none",
        zero_infinity=True,
    )  # (N,)
    return (losses * known.to(device)).sum()


def compute_loss(
    model: torch.nn.Module, batch: Batch, phones: PhoneTargets | None = None, phone_weight: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed CTC loss of a batch of ``(N, T, n_mels)`` features and its number of utterances
    ``N``, both scalars (``model``: a CTCModel, maybe in DDP). With ``phones``, the model's
    auxiliary phone loss is added, times ``phone_weight``."""
    if phones is None:
        log_probs, out_lengths, _ = model(batch.features, batch.lengths)  # (N, T', V)
        return ctc_loss(log_probs, out_lengths, batch), torch.tensor(len(batch.ids))
    log_probs, out_lengths, _, phone_log_probs = model(batch.features, batch.lengths, with_aux=True)
    loss = ctc_loss(log_probs, out_lengths, batch)
    loss = loss + phone_weight * phone_ctc_loss(phone_log_probs, out_lengths, batch.texts, phones)
    return loss, torch.tensor(len(batch.ids))


class StepRunner:
    """Takes the optimizer steps of one training process.

    ``model`` is this process's replica; :attr:`network` is what trains it: ``model`` itself,
    or ``model`` wrapped in DistributedDataParallel after :meth:`distribute`. Mixed precision
    is on exactly when ``scaler`` is enabled. ``total_batches`` (global batches of the whole
    run) sets the length of the learning-rate schedule. ``normalizer`` (the features'
    statistics) is needed by SpecAugment's level perturbation (``specaugment.gain_db``).
    """

    def __init__(
        self,
        config: TrainConfig,
        model: CTCModel,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        total_batches: int,
        context: DistributedContext,
        device: torch.device,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.network: torch.nn.Module = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.amp = scaler.is_enabled()
        self.total_batches = total_batches
        self.context = context
        self.device = device
        self.specaugment = SpecAugment(config.specaugment, normalizer, config.features.log_floor)
        self.previous_batch: Batch | None = None
        self.phones = PhoneTargets(cached_cmudict(config.data.cmudict)) if config.model.aux_phone_layer else None

    def distribute(self) -> None:
        """Wrap the replica in DistributedDataParallel in a job of several processes.

        DDP broadcasts rank 0's weights as it starts, so replicas begin identical.
        """
        if self.context.is_distributed and self.network is self.model:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=device_ids)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def train_step(self, batch: Batch | None, progress: TrainingProgress, contributes: bool = True) -> StepStats:
        """One optimizer step on this process's ``batch`` (features ``(N, T, n_mels)``);
        skipped if its loss or gradient is not finite (see :meth:`skip_step`).

        ``progress`` gives the learning rate's position (``batches_done``) and counts skipped
        steps; the caller advances the rest of it. A step that does not ``contribute`` (a
        padding slot at the end of an epoch, in a job of several processes) runs its stand-in
        batch with zero weight, because DDP needs every process in every backward pass.
        ``None`` (a batch none of whose audio could be read) reruns the previous batch with
        zero weight.
        """
        config, world_size = self.config, self.context.world_size
        if batch is None:
            if self.previous_batch is None:
                raise ASRError("the first training batch of this run has no readable audio")
            batch, contributes = self.previous_batch, False
        self.previous_batch = batch
        batch = batch.to(self.device)
        batch = dataclasses.replace(batch, features=self.specaugment(batch.features))
        lr = learning_rate(progress.batches_done, self.total_batches, config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast():
            loss, utts = compute_loss(self.network, batch, self.phones, self.config.phone_loss_weight)
        if not contributes:
            loss, utts = loss * 0, utts * 0
        # (summed loss, utterances) of every process's batch together; float64 keeps the count exact.
        totals = torch.tensor([loss.item(), float(utts)], dtype=torch.float64, device=self.device)
        all_reduce_sum(totals, self.context)
        global_utts = int(totals[1])
        self.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(float(totals[0])):  # every process sees the same summed loss
            return self.skip_step(f"loss {float(totals[0])}", lr, progress)
        # DDP averages gradients over processes, so scaling by world_size makes the gradient that
        # of the global summed loss over the global utterances; with one process, loss / utts.
        self.scaler.scale(loss * world_size / global_utts).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.clip_grad_norm)
        if not self.amp and not math.isfinite(float(grad_norm)):  # (with AMP the scaler skips such steps)
            self.optimizer.zero_grad(set_to_none=True)
            return self.skip_step(f"gradient norm {float(grad_norm)}", lr, progress)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        progress.skipped_in_a_row = 0
        return StepStats(float(totals[0]), global_utts, lr, float(grad_norm))

    def skip_step(self, what: str, lr: float, progress: TrainingProgress) -> StepStats:
        """Count a step whose ``what`` was not finite in ``progress`` and leave the weights
        alone; give up when :data:`MAX_SKIPPED_IN_A_ROW` steps in a row were skipped.

        Raises:
            TrainingError: training keeps producing non-finite values.
        """
        progress.skipped_steps += 1
        progress.skipped_in_a_row += 1
        if self.context.is_main:
            logger.warning(
                "step %d: %s is not finite; step skipped (%d skipped so far)", progress.step + 1, what,
                progress.skipped_steps,
            )  # fmt: skip
        if progress.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            raise TrainingError(
                f"the last {progress.skipped_in_a_row} training steps had a non-finite {what.split()[0]}; "
                "stopping (lower optim.peak_lr or check the data for broken audio)"
            )
        return StepStats(0.0, 0, lr, float("nan"))


def log_step(
    stats: StepStats, progress: TrainingProgress, log_every_steps: int, writer: SummaryWriter | None, bar: tqdm
) -> None:
    """Show a step's loss and learning rate on the progress ``bar``, and write them with its
    gradient norm to TensorBoard every ``log_every_steps`` steps (``writer``: rank 0's, else None)."""
    x = progress.batches_done
    if writer is not None and stats.utterances and progress.step % log_every_steps == 0:
        writer.add_scalar("train/loss", stats.loss_sum / stats.utterances, x)
        writer.add_scalar("train/lr", stats.lr, x)
        writer.add_scalar("train/grad_norm", stats.grad_norm, x)
    if stats.utterances:
        bar.set_postfix(loss=f"{stats.loss_sum / stats.utterances:.3f}", lr=f"{stats.lr:.2e}")
