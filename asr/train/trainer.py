"""Training a CTC model, on one process or many: the loop, validation, checkpoints, resumption.

Built from small named steps in the manner of icefall's ``train.py``: :func:`asr.train.loading.build_data`,
:meth:`Trainer.train_step` (one optimizer step: see :mod:`asr.train.step`),
:meth:`Trainer.train_one_epoch`, :func:`validate`, and :func:`train` to drive them. Checkpoints
(see :mod:`asr.train.experiment`) go to ``<exp_dir>/last`` (resumable, written every
``checkpoint_every_steps`` and at each epoch's end), ``<exp_dir>/best`` (lowest validation WER)
and ``<exp_dir>/epoch-<n>`` (the newest ``keep_epoch_checkpoints`` epochs, for ``asr average``).

Launched by ``torchrun`` (see :mod:`asr.train.distributed`), each process holds every training
utterance's features, trains a replica of the model wrapped in DistributedDataParallel on its
share of the duration-bucketed batches (:func:`asr.train.data.shard_batches`: whole batches, one
per process per step), and DDP keeps the replicas identical by averaging gradients. The loss of
a step is the summed CTC loss of all the processes' batches divided by all their utterances,
the same normalisation as one process gives to one batch. Only rank 0 logs, writes TensorBoard
and checkpoints, and validates (on the whole validation set, with its unwrapped replica); it
sends the metrics to the others, which wait for them. Resumption works across a changed number
of processes: see :mod:`asr.train.state`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from asr.checkpoint import load_checkpoint, resolve_checkpoint_dir, save_checkpoint
from asr.decoding.greedy import greedy_decode_batch
from asr.errors import CheckpointError, ConfigError
from asr.metrics import error_rates
from asr.network import CTCModel
from asr.tokenizer import Tokenizer
from asr.train.config import TrainConfig
from asr.train.data import (
    Batch,
    bucket_batches,
    collate,
    global_batches_in_step,
    shard_batches,
    speed_choices,
)
from asr.train.distributed import (
    SINGLE_PROCESS,
    DistributedContext,
    barrier,
    broadcast_from_main,
    context_from_env,
    process_group,
    replicas_agree,
    select_device,
)
from asr.train.experiment import BEST, LAST, TENSORBOARD, epoch_name, prune_epoch_checkpoints
from asr.train.loading import TrainingData, build_data
from asr.train.state import TrainingProgress, encode_state, restore_state
from asr.train.step import StepRunner, StepStats, ctc_loss, log_step

logger = logging.getLogger(__name__)

CPU = torch.device("cpu")
# Model settings that init_from may change: their weights start fresh, every other one is taken.
# A deeper stack keeps the checkpoint's layers (and head) and starts its new top layers fresh.
REPLACEABLE = ("frontend", "stack_frames", "conv_channels", "num_layers", "aux_phone_layer", "aux_phone_vocab_size")
# A validation utterance id "<set>/<utterance>" names the subset it belongs to.
SUBSET_SEPARATOR = "/"


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The RNG seed of ``rank`` from optimizer ``step`` on, so ranks draw different augmentation.

    Rank 0 starting afresh uses ``seed`` itself: one process draws exactly as it always has.
    """
    return seed if rank == 0 and step == 0 else hash((seed, rank, step))


def validate(
    model: CTCModel, data: TrainingData, max_batch_frames: int, device: torch.device = CPU
) -> dict[str, float]:
    """Validation loss per utterance, and greedy WER and CER; where utterance ids name their
    subset (``<set>/<utterance>``), also ``wer/<set>`` and ``cer/<set>`` for each subset."""
    model.eval()
    total_loss, refs, hyps, ids = 0.0, [], [], []
    with torch.no_grad():
        for indices in bucket_batches(
            [data.valid.num_frames(i) for i in range(len(data.valid))], max_batch_frames, 0, 0, shuffle=False
        ):
            batch = collate([data.valid.examples[i] for i in indices], [0] * len(indices)).to(device)
            log_probs, out_lengths, _ = model(batch.features, batch.lengths)
            total_loss += ctc_loss(log_probs, out_lengths, batch).item()
            hyps += [h.text for h in greedy_decode_batch(log_probs.cpu(), out_lengths.cpu(), data.tokenizer)]
            refs += list(batch.texts)
            ids += list(batch.ids)
    model.train()
    rates = error_rates(refs, hyps)
    metrics = {"loss": total_loss / max(1, len(refs)), "wer": rates.wer, "cer": rates.cer}
    subsets = sorted({i.split(SUBSET_SEPARATOR, 1)[0] for i in ids if SUBSET_SEPARATOR in i})
    for subset in subsets:
        pairs = [(r, h) for r, h, i in zip(refs, hyps, ids) if i.startswith(subset + SUBSET_SEPARATOR)]
        subset_rates = error_rates([r for r, _ in pairs], [h for _, h in pairs])
        metrics[f"wer/{subset}"] = subset_rates.wer
        metrics[f"cer/{subset}"] = subset_rates.cer
    return metrics


class Trainer:
    """Owns the model, optimizer, progress and writers of one training process.

    ``model`` is this process's replica; :attr:`steps` trains it, wrapped in
    DistributedDataParallel once :meth:`run` starts in a job of several.
    """

    def __init__(
        self,
        config: TrainConfig,
        data: TrainingData,
        progress_bars: bool = True,
        context: DistributedContext = SINGLE_PROCESS,
        device: torch.device = CPU,
    ) -> None:
        self.config = config
        self.data = data
        self.context = context
        self.device = device
        self.progress_bars = progress_bars and context.is_main
        self.exp_dir = Path(config.exp_dir)
        self.model = CTCModel(config.model).to(device)
        # fused: one kernel over all parameters (a third of the time of the per-tensor loop on CPUs).
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.optim.peak_lr, weight_decay=config.optim.weight_decay, fused=True
        )
        amp = config.amp and device.type == "cuda"
        if config.amp and not amp and context.is_main:
            logger.info("amp = true is ignored: mixed precision needs a CUDA device, training runs on %s", device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp)
        self.progress = TrainingProgress()
        self.frames = [data.train.num_frames(i) for i in range(len(data.train))]
        self.batches_per_epoch = len(bucket_batches(self.frames, config.max_batch_frames, config.seed, 0))
        self.total_batches = self.batches_per_epoch * config.epochs
        self.steps = StepRunner(
            config, self.model, self.optimizer, self.scaler, self.total_batches, context, device,
            data.extractor.normalizer,
        )  # fmt: skip
        self.writer = SummaryWriter(str(self.exp_dir / TENSORBOARD)) if context.is_main else None

    def provenance(self) -> dict:
        return {
            "train_config": dataclasses.asdict(self.config),
            "epoch": self.progress.epoch,
            "step": self.progress.step,
            "world_size": self.context.world_size,
            "history": self.progress.history,
            "attribution": self.config.data.attribution,
        }

    def save(self, name: str) -> None:
        """Write checkpoint ``<exp_dir>/<name>`` (with the trainer state if it is ``last``); rank 0 only."""
        if not self.context.is_main:
            return
        extra = None
        if name == LAST:
            extra = encode_state(self.progress, self.optimizer, self.scaler, self.context.world_size)
        save_checkpoint(
            self.exp_dir / name, self.model, self.config.features, self.data.extractor.normalizer,
            self.data.tokenizer, self.provenance(), extra,
        )  # fmt: skip

    def initialize_from(self, directory: str | Path) -> None:
        """Start from the weights of the checkpoint in ``directory``.

        With the same model configuration (dropout aside, as it shapes no weight) every weight
        is taken. With another front end, auxiliary phone head or number of layers and otherwise
        the same model, each weight whose name and shape agree is taken (the LSTM stack but its
        first input weights, and the head; a deeper stack takes the checkpoint's layers as its
        lowest) and the rest keep their random start, as ESPnet's ``init_param`` does.
        """
        checkpoint = load_checkpoint(directory)
        theirs = dataclasses.replace(checkpoint.model.config, dropout=self.config.model.dropout)
        if dataclasses.replace(theirs, **{k: getattr(self.config.model, k) for k in REPLACEABLE}) != self.config.model:
            raise ConfigError(
                f"init_from {directory}: its model {checkpoint.model.config} differs from the config's "
                f"{self.config.model} in more than the front end and phone head"
            )
        self.check_tokenizer(checkpoint.tokenizer, f"init_from {directory}")
        if checkpoint.normalizer != self.data.extractor.normalizer:
            logger.warning("init_from %s: its feature statistics differ from %s", directory, self.config.data.stats)
        source, target = checkpoint.model.state_dict(), self.model.state_dict()
        taken = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
        self.model.load_state_dict(taken, strict=False)
        fresh = sorted(set(target) - set(taken))
        if fresh:
            logger.info(
                "initialised %d weight tensors from %s; starting fresh: %s", len(taken), directory, ", ".join(fresh)
            )
        else:
            logger.info("initialised the model from %s", directory)

    def check_tokenizer(self, tokenizer: Tokenizer, what: str) -> None:
        """Refuse weights whose output units are another tokenizer's (same size or not)."""
        if tokenizer.to_dict() != self.data.tokenizer.to_dict():
            raise ConfigError(f"{what}: its tokenizer differs from the config's [tokenizer] ({self.config.tokenizer})")

    def resume(self) -> None:
        """Continue from ``<exp_dir>/last``: model, optimizer, RNG, epoch and batch position.

        Every process reads the checkpoint (on several nodes, ``exp_dir`` must be shared).
        """
        try:
            directory = resolve_checkpoint_dir(self.exp_dir / LAST)
        except CheckpointError:
            logger.info("no checkpoint in %s; starting from scratch", self.exp_dir)
            return
        checkpoint = load_checkpoint(directory)
        self.check_tokenizer(checkpoint.tokenizer, f"resuming {directory}")
        self.model.load_state_dict(checkpoint.model.state_dict())
        restored = restore_state(directory, self.optimizer, self.scaler)
        self.progress = progress = restored.progress
        if not self.context.is_main:  # the saved RNG state is rank 0's
            torch.manual_seed(rank_seed(self.config.seed, self.context.rank, progress.step))
        logger.info(
            "resumed from %s (written by %d process(es), continuing on %d) at epoch %d, global batch %d, step %d",
            directory, restored.world_size, self.context.world_size, progress.epoch + 1, progress.batch_in_epoch,
            progress.step,
        )  # fmt: skip

    def train_step(self, batch: Batch | None, contributes: bool = True) -> StepStats:
        """One optimizer step on this process's ``batch``: see :meth:`StepRunner.train_step`."""
        return self.steps.train_step(batch, self.progress, contributes)

    def train_one_epoch(self) -> float:
        """Run the rest of the current epoch; return its mean loss per utterance."""
        config, progress, context = self.config, self.progress, self.context
        batches = bucket_batches(self.frames, config.max_batch_frames, config.seed, progress.epoch)
        remaining = batches[progress.batch_in_epoch :]
        shards = shard_batches(remaining, context.rank, context.world_size)
        slots = [indices or batches[0] for indices in shards]  # an empty shard runs batch 0, unweighted
        first = progress.batch_in_epoch + context.rank
        speeds = [
            speed_choices(config.seed, progress.epoch, first + s * context.world_size, len(slot), len(config.speed_factors))
            for s, slot in enumerate(slots)
        ]  # fmt: skip
        self.model.train()
        bar = tqdm(
            zip(shards, self.data.train.batches(slots, speeds)), total=len(shards),
            desc=f"epoch {progress.epoch + 1}/{config.epochs}", disable=not self.progress_bars, leave=False,
        )  # fmt: skip
        for step_in_epoch, (indices, batch) in enumerate(bar):
            stats = self.train_step(batch, contributes=bool(indices))
            done = global_batches_in_step(len(remaining), step_in_epoch, context.world_size)
            progress.step += 1
            progress.batch_in_epoch += done
            progress.batches_done += done
            progress.epoch_loss_sum += stats.loss_sum
            progress.epoch_utterances += stats.utterances
            log_step(stats, progress, config.log_every_steps, self.writer, bar)
            if config.checkpoint_every_steps and progress.step % config.checkpoint_every_steps == 0:
                self.save(LAST)
        return progress.epoch_loss_sum / max(1, progress.epoch_utterances)

    def finish_epoch(self, train_loss: float) -> None:
        """Validate (on rank 0), record the epoch, check the replicas and write checkpoints."""
        config, progress = self.config, self.progress
        metrics = (
            validate(self.model, self.data, config.max_batch_frames, self.device) if self.context.is_main else None
        )
        metrics = broadcast_from_main(metrics, self.context)
        row = {"epoch": progress.epoch + 1, "step": progress.step, "train_loss": train_loss}
        if progress.skipped_steps:
            row["skipped_steps"] = progress.skipped_steps
        row.update({f"valid_{k}": v for k, v in metrics.items()})
        progress.history.append(row)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"valid/{key}", value, progress.epoch + 1)
        if self.context.is_main:
            logger.info(
                "epoch %d: train loss %.3f, valid loss %.3f, valid WER %.2f%%, CER %.2f%%",
                progress.epoch + 1, train_loss, metrics["loss"], 100 * metrics["wer"], 100 * metrics["cer"],
            )  # fmt: skip
        improved = metrics["wer"] < progress.best_valid_wer
        if improved:
            progress.best_valid_wer = metrics["wer"]
        progress.epoch += 1
        progress.batch_in_epoch = progress.epoch_utterances = 0
        progress.epoch_loss_sum = 0.0
        self.check_replicas()
        if improved:
            self.save(BEST)
        if config.keep_epoch_checkpoints:
            self.save(epoch_name(progress.epoch))
        self.save(LAST)
        if config.keep_epoch_checkpoints and self.context.is_main:
            prune_epoch_checkpoints(self.exp_dir, config.keep_epoch_checkpoints)

    def check_replicas(self) -> None:
        """Confirm that all processes hold the same weights (cheap: one hash per process)."""
        if not self.context.is_distributed:
            return
        agree = replicas_agree(self.model, self.context)
        if not self.context.is_main:
            return
        if agree:
            logger.info("epoch %d: weights identical on all %d processes", self.progress.epoch, self.context.world_size)
        else:
            logger.warning(
                "epoch %d: the %d processes hold different weights; checkpoints are rank 0's",
                self.progress.epoch, self.context.world_size,
            )  # fmt: skip

    def run(self) -> TrainingProgress:
        self.steps.distribute()
        try:
            while self.progress.epoch < self.config.epochs:
                self.finish_epoch(self.train_one_epoch())
        finally:
            if self.writer is not None:
                self.writer.close()
        barrier(self.context)  # every process ends after rank 0's last checkpoint is written
        return self.progress


def train(config: TrainConfig, resume: bool = False, progress_bars: bool = True) -> TrainingProgress:
    """Train a model as ``config`` says; with ``resume``, continue from ``<exp_dir>/last``.

    Runs as one process, or as one of several when started by ``torchrun`` (the environment
    says which; see :mod:`asr.train.distributed`). Every process returns the same progress.

    Returns:
        The final progress, with one row of metrics per epoch in ``history``.
    """
    context = context_from_env()
    device = select_device(config.device, context)
    torch.manual_seed(rank_seed(config.seed, context.rank, 0))
    torch.set_num_threads(config.num_threads)
    exp_dir = Path(config.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    if not resume and (exp_dir / LAST).exists():
        raise ConfigError(f"{exp_dir / LAST} exists; pass --resume to continue it or choose another exp_dir")
    with process_group(context, device):
        data = build_data(config, progress_bars and context.is_main)
        trainer = Trainer(config, data, progress_bars, context, device)
        if config.init_from:
            trainer.initialize_from(config.init_from)
        if resume:
            trainer.resume()
        return trainer.run()
