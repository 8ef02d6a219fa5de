"""Training a CTC model: the loop, validation, checkpoints and exact resumption.

Built from small named steps in the manner of icefall's ``train.py``: :func:`build_data`,
:func:`compute_loss`, :func:`train_one_epoch`, :func:`validate`, and :func:`train` to drive them.
Checkpoints go to ``<exp_dir>/last`` (resumable, written every ``checkpoint_every_steps`` and at
each epoch's end) and ``<exp_dir>/best`` (lowest validation WER).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from asr.augment import SpecAugment
from asr.checkpoint import load_checkpoint, resolve_checkpoint_dir, save_checkpoint
from asr.dataset import Batch, FeatureDataset, bucket_batches, collate
from asr.decoding import greedy_decode_batch
from asr.errors import CheckpointError, ConfigError
from asr.features import FeatureExtractor, Normalizer
from asr.manifest import read_manifest
from asr.metrics import error_rates
from asr.network import CTCModel
from asr.text import CharTokenizer
from asr.train_config import TrainConfig
from asr.train_state import TrainingProgress, encode_state, restore_state

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    train: FeatureDataset
    valid: FeatureDataset
    extractor: FeatureExtractor
    tokenizer: CharTokenizer


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warm-up to ``peak_lr`` then cosine decay to ``min_lr_ratio * peak_lr``."""
    optim = config.optim
    if step < optim.warmup_steps:
        return optim.peak_lr * (step + 1) / optim.warmup_steps
    progress = min(1.0, (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps))
    floor = optim.min_lr_ratio
    return optim.peak_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def load_normalizer(path: str) -> Normalizer:
    try:
        return Normalizer.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: cannot read feature statistics ({exc})") from exc


def build_data(config: TrainConfig, progress_bars: bool = True) -> TrainingData:
    """Load both manifests into in-memory features."""
    tokenizer = CharTokenizer()
    if tokenizer.vocab_size != config.model.vocab_size:
        raise ConfigError(f"model.vocab_size is {config.model.vocab_size}, the tokenizer has {tokenizer.vocab_size}")
    extractor = FeatureExtractor(config.features, load_normalizer(config.data.stats))
    stack = config.model.stack_frames
    train = FeatureDataset(
        read_manifest(config.data.train_manifest), extractor, tokenizer, stack,
        config.speed_factors, name="train", progress=progress_bars,
    )  # fmt: skip
    valid = FeatureDataset(
        read_manifest(config.data.valid_manifest), extractor, tokenizer, stack, (1.0,),
        name="valid", progress=progress_bars,
    )  # fmt: skip
    if len(train) == 0:
        raise ConfigError(f"{config.data.train_manifest}: no usable training utterances")
    return TrainingData(train, valid, extractor, tokenizer)


def ctc_loss(log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Summed CTC loss of ``(N, T', V)`` log-probabilities against the batch's tokens."""
    return torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1),  # (T', N, V), as ctc_loss wants
        batch.tokens,
        out_lengths,
        batch.token_lengths,
        blank=0,
        reduction="sum",
        zero_infinity=True,
    )


def compute_loss(model: CTCModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed CTC loss of a batch and its number of utterances."""
    log_probs, out_lengths, _ = model(batch.features, batch.lengths)  # (N, T', V)
    return ctc_loss(log_probs, out_lengths, batch), torch.tensor(len(batch.ids))


def validate(model: CTCModel, data: TrainingData, max_batch_frames: int) -> dict[str, float]:
    """Validation loss per utterance, and greedy WER and CER."""
    model.eval()
    total_loss, refs, hyps = 0.0, [], []
    with torch.no_grad():
        for indices in bucket_batches(
            [data.valid.num_frames(i) for i in range(len(data.valid))], max_batch_frames, 0, 0, shuffle=False
        ):
            batch = collate([data.valid.examples[i] for i in indices], [0] * len(indices))
            log_probs, out_lengths, _ = model(batch.features, batch.lengths)
            total_loss += ctc_loss(log_probs, out_lengths, batch).item()
            hyps += [h.text for h in greedy_decode_batch(log_probs, out_lengths, data.tokenizer)]
            refs += list(batch.texts)
    model.train()
    rates = error_rates(refs, hyps)
    return {"loss": total_loss / max(1, len(refs)), "wer": rates.wer, "cer": rates.cer}


class Trainer:
    """Owns the model, optimizer, progress and writers of one training run."""

    def __init__(self, config: TrainConfig, data: TrainingData, progress_bars: bool = True) -> None:
        self.config = config
        self.data = data
        self.progress_bars = progress_bars
        self.exp_dir = Path(config.exp_dir)
        self.model = CTCModel(config.model)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.optim.peak_lr, weight_decay=config.optim.weight_decay
        )
        self.specaugment = SpecAugment(config.specaugment)
        self.progress = TrainingProgress()
        self.frames = [data.train.num_frames(i) for i in range(len(data.train))]
        self.steps_per_epoch = len(bucket_batches(self.frames, config.max_batch_frames, config.seed, 0))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"))

    def provenance(self) -> dict:
        return {
            "train_config": dataclasses.asdict(self.config),
            "epoch": self.progress.epoch,
            "step": self.progress.step,
            "history": self.progress.history,
            "attribution": self.config.data.attribution,
        }

    def save(self, name: str) -> None:
        extra = encode_state(self.progress, self.optimizer) if name == "last" else None
        save_checkpoint(
            self.exp_dir / name, self.model, self.config.features, self.data.extractor.normalizer,
            self.data.tokenizer, self.provenance(), extra,
        )  # fmt: skip

    def initialize_from(self, directory: str | Path) -> None:
        """Start from the weights of the checkpoint in ``directory`` (same model configuration)."""
        checkpoint = load_checkpoint(directory)
        if checkpoint.model.config != self.config.model:
            raise ConfigError(
                f"init_from {directory}: its model {checkpoint.model.config} differs from the config's {self.config.model}"
            )
        if checkpoint.normalizer != self.data.extractor.normalizer:
            logger.warning("init_from %s: its feature statistics differ from %s", directory, self.config.data.stats)
        self.model.load_state_dict(checkpoint.model.state_dict())
        logger.info("initialised the model from %s", directory)

    def resume(self) -> None:
        """Continue from ``<exp_dir>/last``: model, optimizer, RNG, epoch and batch position."""
        try:
            directory = resolve_checkpoint_dir(self.exp_dir / "last")
        except CheckpointError:
            logger.info("no checkpoint in %s; starting from scratch", self.exp_dir)
            return
        checkpoint = load_checkpoint(directory)
        self.model.load_state_dict(checkpoint.model.state_dict())
        self.progress = restore_state(directory, self.optimizer)
        logger.info(
            "resumed from %s at epoch %d, batch %d, step %d",
            directory, self.progress.epoch, self.progress.batch_in_epoch, self.progress.step,
        )  # fmt: skip

    def train_one_epoch(self) -> float:
        """Run the rest of the current epoch; return its mean loss per utterance."""
        config, progress = self.config, self.progress
        batches = bucket_batches(self.frames, config.max_batch_frames, config.seed, progress.epoch)
        self.model.train()
        bar = tqdm(
            batches[progress.batch_in_epoch :], desc=f"epoch {progress.epoch + 1}/{config.epochs}",
            disable=not self.progress_bars, leave=False,
        )  # fmt: skip
        for indices in bar:
            examples = [self.data.train.examples[i] for i in indices]
            speeds = torch.randint(len(config.speed_factors), (len(examples),)).tolist()
            batch = collate(examples, speeds)
            batch = dataclasses.replace(batch, features=self.specaugment(batch.features))
            lr = learning_rate(progress.step, self.total_steps, config)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss, utts = compute_loss(self.model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            (loss / utts).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.clip_grad_norm)
            self.optimizer.step()
            progress.step += 1
            progress.batch_in_epoch += 1
            progress.epoch_loss_sum += loss.item()
            progress.epoch_utterances += int(utts)
            if progress.step % config.log_every_steps == 0:
                self.writer.add_scalar("train/loss", loss.item() / int(utts), progress.step)
                self.writer.add_scalar("train/lr", lr, progress.step)
                self.writer.add_scalar("train/grad_norm", float(grad_norm), progress.step)
            bar.set_postfix(loss=f"{loss.item() / int(utts):.3f}", lr=f"{lr:.2e}")
            if config.checkpoint_every_steps and progress.step % config.checkpoint_every_steps == 0:
                self.save("last")
        return progress.epoch_loss_sum / max(1, progress.epoch_utterances)

    def run(self) -> TrainingProgress:
        config, progress = self.config, self.progress
        while progress.epoch < config.epochs:
            train_loss = self.train_one_epoch()
            metrics = validate(self.model, self.data, config.max_batch_frames)
            row = {"epoch": progress.epoch + 1, "step": progress.step, "train_loss": train_loss}
            row.update({f"valid_{k}": v for k, v in metrics.items()})
            progress.history.append(row)
            for key, value in metrics.items():
                self.writer.add_scalar(f"valid/{key}", value, progress.epoch + 1)
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
            if improved:
                self.save("best")
            self.save("last")
        self.writer.close()
        return progress


def train(config: TrainConfig, resume: bool = False, progress_bars: bool = True) -> TrainingProgress:
    """Train a model as ``config`` says; with ``resume``, continue from ``<exp_dir>/last``.

    Returns:
        The final progress, with one row of metrics per epoch in ``history``.
    """
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.num_threads)
    exp_dir = Path(config.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    if not resume and (exp_dir / "last").exists():
        raise ConfigError(f"{exp_dir / 'last'} exists; pass --resume to continue it or choose another exp_dir")
    data = build_data(config, progress_bars)
    trainer = Trainer(config, data, progress_bars)
    if config.init_from:
        trainer.initialize_from(config.init_from)
    if resume:
        trainer.resume()
    return trainer.run()
