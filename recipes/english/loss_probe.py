#!/usr/bin/env python3
"""Training loss of several checkpoints on the same training items, clean and with SpecAugment.

The training loss a run logs per epoch is measured on that epoch's own draws (speed factors,
SpecAugment masks, dropout) while the weights move, so two epochs' figures are not of the same
inputs. This measures each checkpoint on one fixed set of training items instead: every
``--every``-th item of the config's training set (joined pairs as the config makes them), at
speed 1.0, without dropout; once clean and once through the config's SpecAugment with a fixed
seed. Prints a Markdown table of the character CTC loss, the auxiliary phone CTC loss and
their weighted sum (what training minimises), each per item.

Usage, from the repository root:
    python recipes/english/loss_probe.py --config recipes/english/conf/X.toml CHECKPOINT [...]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from asr.checkpoint import load_checkpoint
from asr.network import CTCModel
from asr.phones import PhoneTargets, cached_cmudict
from asr.train.augment import SpecAugment
from asr.train.config import TrainConfig, load_train_config
from asr.train.data import collate
from asr.train.loading import TrainingData, build_data
from asr.train.step import ctc_loss, phone_ctc_loss

logger = logging.getLogger("loss_probe")

BATCH_SIZE = 16
AUGMENT_SEED = 0
MODES = ("clean", "SpecAugment")


def item_losses(
    model: CTCModel, data: TrainingData, config: TrainConfig, items: list[int], augment: bool
) -> tuple[float, float]:
    """Mean character and phone CTC loss per item of ``items`` (training set indices)."""
    speed = list(config.speed_factors).index(1.0)
    phones = PhoneTargets(cached_cmudict(config.data.cmudict))
    torch.manual_seed(AUGMENT_SEED)
    specaugment = SpecAugment(config.specaugment, data.extractor.normalizer, config.features.log_floor)
    model.eval()
    char = phone = 0.0
    with torch.no_grad():
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start : start + BATCH_SIZE]
            batch = collate([data.train.example(i, speed) for i in chunk], [0] * len(chunk))
            features = specaugment(batch.features) if augment else batch.features  # (N, T, n_mels)
            log_probs, out_lengths, _, phone_log_probs = model(features, batch.lengths, with_aux=True)
            char += ctc_loss(log_probs, out_lengths, batch).item()
            phone += phone_ctc_loss(phone_log_probs, out_lengths, batch.texts, phones).item()
    return char / len(items), phone / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint directories")
    parser.add_argument("--config", required=True, type=Path, help="the training config whose data to use")
    parser.add_argument("--every", type=int, default=6, help="take every N-th training item")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    config = load_train_config(args.config)
    if not config.model.aux_phone_layer:
        raise SystemExit(f"{args.config}: the model has no phone head to measure")
    data = build_data(config, progress_bars=False)
    items = list(range(0, len(data.train), args.every))
    rows = [
        f"| checkpoint | input | char loss | phone loss | char + {config.phone_loss_weight} x phone |",
        "|---|---|---|---|---|",
    ]
    for checkpoint in args.checkpoints:
        model = load_checkpoint(checkpoint).model
        for mode in MODES:
            char, phone = item_losses(model, data, config, items, augment=mode != "clean")
            total = char + config.phone_loss_weight * phone
            rows.append(f"| {checkpoint} | {mode} | {char:.2f} | {phone:.2f} | {total:.2f} |")
            logger.info(rows[-1])
    print(f"{len(items)} training items (every {args.every}-th)\n\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
