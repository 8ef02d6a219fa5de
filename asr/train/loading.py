"""What a training run reads: the tokenizer, the feature extractor and both datasets.

:func:`build_data` loads the training manifest (as in-memory features, as audio read batch by
batch with ``data.loader_workers``, or as in-memory features joined in pairs of one speaker's
consecutive utterances with ``data.join_share``: see :mod:`asr.train.concat`) and the
validation manifest (always in-memory features, at speed 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ConfigError
from asr.features import FeatureExtractor, Normalizer
from asr.manifest import read_manifest
from asr.tokenizer import Tokenizer, build_tokenizer
from asr.train.concat import JoinedDataset
from asr.train.config import TrainConfig
from asr.train.data import AudioDataset, FeatureDataset


@dataclass
class TrainingData:
    train: FeatureDataset | AudioDataset | JoinedDataset
    valid: FeatureDataset
    extractor: FeatureExtractor
    tokenizer: Tokenizer


def load_normalizer(path: str) -> Normalizer:
    try:
        return Normalizer.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: cannot read feature statistics ({exc})") from exc


def build_data(config: TrainConfig, progress_bars: bool = True) -> TrainingData:
    """Load both manifests: validation as in-memory features, training too, or (with
    ``data.loader_workers``) read from disk batch by batch."""
    tokenizer = build_tokenizer(config.tokenizer)
    if tokenizer.vocab_size != config.model.vocab_size:
        units = config.tokenizer.bpe_model or "characters"
        raise ConfigError(
            f"model.vocab_size is {config.model.vocab_size}, but the tokenizer ({units}) has "
            f"{tokenizer.vocab_size} tokens: set model.vocab_size = {tokenizer.vocab_size}"
        )
    extractor = FeatureExtractor(config.features, load_normalizer(config.data.stats))
    stack = config.model.stack_frames
    utterances = read_manifest(config.data.train_manifest)
    if config.data.loader_workers > 0:
        train = AudioDataset(
            utterances, extractor, tokenizer, stack, config.speed_factors, "train", config.data.loader_workers
        )
    else:
        train = FeatureDataset(
            utterances, extractor, tokenizer, stack, config.speed_factors, name="train", progress=progress_bars,
            half_precision=config.data.half_precision_features,
        )  # fmt: skip
        if config.data.join_share:
            max_frames = extractor.config.num_frames(round(config.data.join_max_seconds * extractor.config.sample_rate))
            train = JoinedDataset(train, tokenizer, stack, config.data.join_share, max_frames, config.seed)
    valid = FeatureDataset(
        read_manifest(config.data.valid_manifest), extractor, tokenizer, stack, (1.0,),
        name="valid", progress=progress_bars,
    )  # fmt: skip
    if len(train) == 0:
        raise ConfigError(f"{config.data.train_manifest}: no usable training utterances")
    return TrainingData(train, valid, extractor, tokenizer)
