"""The overfit-one-batch check: can this model, loss and data pipeline learn at all?

Trains a fresh model of a training config on one batch of its training set, without
augmentation or dropout, and reports the loss curve and the greedy error rates on that batch.
A model that cannot drive its loss down and its CER towards zero on a handful of utterances has
a bug (labels misaligned, features broken, a head that cannot emit a token) that more data or
epochs would only hide. Used by the recipes before a long run, and by the test suite.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch

from asr.decoding.greedy import greedy_decode_batch
from asr.features import FeatureExtractor
from asr.manifest import Utterance
from asr.metrics import error_rates
from asr.network import CTCModel
from asr.phones import PhoneTargets, cached_cmudict
from asr.tokenizer import build_tokenizer
from asr.train.config import TrainConfig
from asr.train.data import FeatureDataset, collate
from asr.train.loading import load_normalizer
from asr.train.step import compute_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverfitResult:
    """Loss per step (summed CTC loss over the batch's utterances, divided by their number)
    and the greedy WER and CER on the batch after the last step."""

    losses: tuple[float, ...]
    wer: float
    cer: float
    utterances: int


def overfit_one_batch(
    config: TrainConfig, utterances: list[Utterance], steps: int = 200, lr: float = 3e-3, seed: int = 0
) -> OverfitResult:
    """Train ``config``'s model (dropout off) on ``utterances`` as one batch for ``steps`` steps.

    Raises:
        ValueError: none of ``utterances`` could be loaded.
    """
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(config.tokenizer)
    extractor = FeatureExtractor(config.features, load_normalizer(config.data.stats))
    data = FeatureDataset(utterances, extractor, tokenizer, config.model.stack_frames, name="overfit", progress=False)
    if len(data) == 0:
        raise ValueError("overfit_one_batch: none of the utterances could be loaded")
    batch = collate(data.examples, [0] * len(data))
    model = CTCModel(dataclasses.replace(config.model, dropout=0.0))
    phones = PhoneTargets(cached_cmudict(config.data.cmudict)) if config.model.aux_phone_layer else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        loss, count = compute_loss(model, batch, phones, config.phone_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        (loss / count).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.clip_grad_norm)
        optimizer.step()
        losses.append(loss.item() / int(count))
    model.eval()
    with torch.no_grad():
        log_probs, out_lengths, _ = model(batch.features, batch.lengths)
    hyps = [h.text for h in greedy_decode_batch(log_probs, out_lengths, tokenizer)]
    rates = error_rates(list(batch.texts), hyps)
    logger.info(
        "overfit one batch of %d: loss %.2f -> %.2f in %d steps; greedy WER %.2f%%, CER %.2f%%",
        len(data), losses[0], losses[-1], steps, 100 * rates.wer, 100 * rates.cer,
    )  # fmt: skip
    return OverfitResult(tuple(losses), rates.wer, rates.cer, len(data))
