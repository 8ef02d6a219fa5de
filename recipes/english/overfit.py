#!/usr/bin/env python3
"""The overfit-one-batch check on a recipe configuration: its model, loss and data pipeline
can drive the loss down and the error rates to near zero on one batch of its training set.

Usage: python recipes/english/overfit.py conf/bilstm.toml [--utterances 8] [--steps 200]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from asr.manifest import read_manifest
from asr.train.config import load_train_config
from asr.train.overfit import overfit_one_batch

logger = logging.getLogger("overfit")

RECIPE_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="training config (relative paths: this recipe's folder)")
    parser.add_argument("--utterances", type=int, default=8, help="the batch: this many real training utterances")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps on that batch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(1)
    path = args.config if args.config.is_file() else RECIPE_DIR / args.config
    config = load_train_config(path)
    # Real speech of several sets, spread evenly over the real training manifest.
    real = read_manifest(RECIPE_DIR / "data" / "train.jsonl")
    batch = real[:: max(1, len(real) // args.utterances)][: args.utterances]
    result = overfit_one_batch(config, batch, steps=args.steps)
    logger.info(
        "%s: %d utterances, loss %.2f -> %.3f in %d steps; greedy WER %.2f%%, CER %.2f%%", path.name,
        result.utterances, result.losses[0], result.losses[-1], args.steps, 100 * result.wer, 100 * result.cer,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
