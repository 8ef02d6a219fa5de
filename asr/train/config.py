"""Training configuration: a TOML file mapped onto these frozen dataclasses.

Example (``recipes/english/conf/bilstm.toml``)::

    exp_dir = "exp/bilstm"
    [data]
    train_manifest = "data/train.jsonl"
    valid_manifest = "data/valid.jsonl"
    stats = "data/stats.json"
    [model]
    hidden_size = 256
    [optim]
    peak_lr = 1.5e-3

The output units are characters unless a ``[tokenizer]`` table says otherwise::

    [tokenizer]
    kind = "bpe"
    bpe_model = "data/bpe-500.model"    # trained by asr.bpe.train_bpe or `asr bpe`
    [model]
    vocab_size = 500                    # must equal the model's number of pieces

Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from asr.config import from_dict, read_layered_toml
from asr.errors import ConfigError
from asr.features import FeatureConfig
from asr.network import ModelConfig
from asr.tokenizer import TokenizerConfig
from asr.train.augment import SpecAugmentConfig
from asr.train.distributed import DEVICES


@dataclass(frozen=True)
class DataConfig:
    train_manifest: str
    valid_manifest: str
    # JSON with the global feature mean and std ("mean", "std"), from the training set.
    stats: str
    # Credit for the training data, copied into the checkpoint (licences such as CC BY ask it).
    attribution: str = ""
    # Read, speed-perturb and featurise each training batch when it is needed, in this many
    # background processes (asr.train.data), instead of holding every utterance's features in
    # memory (asr.train.data). Needed for large corpora (960 h of LibriSpeech are ~110 GB of
    # features per speed factor); the manifest must give durations. 0: in memory.
    loader_workers: int = 0
    # Hold in-memory features as float16 (half the memory: 40 h at three speeds take about 7 GB
    # instead of 14); batches are float32 again.
    half_precision_features: bool = False
    # The CMU Pronouncing Dictionary (cmudict.dict), for the phone targets of a model with an
    # auxiliary phone head (model.aux_phone_layer); see asr.phones.
    cmudict: str = ""
    # About this share of the training utterances appear joined to the next utterance of the
    # same speaker, as one example, instead of alone (asr.train.concat): pieces cut from a long
    # recording start and end mid-speech. In-memory features only (loader_workers = 0).
    join_share: float = 0.0
    # A joined pair lasts at most this long (seconds, unperturbed).
    join_max_seconds: float = 16.0


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up, then cosine decay to ``min_lr_ratio * peak_lr``.

    The schedule counts global batches (see :mod:`asr.train.state`): with one process a batch is
    an optimizer step; with W processes a step moves the schedule W batches on.
    """

    peak_lr: float = 1.5e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 500
    min_lr_ratio: float = 0.05
    # LSTMs with CTC produce rare exploding gradients; clipping the global norm tames them.
    clip_grad_norm: float = 5.0


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig
    exp_dir: str = "exp"
    epochs: int = 40
    # Padded frames per batch (longest utterance x batch size): ~100 s of audio.
    max_batch_frames: int = 10_000
    seed: int = 1234
    # Speeds applied to training audio, one chosen at random per utterance and epoch.
    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    num_threads: int = 1
    # Also save a resumable checkpoint every this many steps inside an epoch (0: only at ends).
    checkpoint_every_steps: int = 200
    log_every_steps: int = 10
    # A checkpoint directory whose weights start the model (fine-tuning or warm start); its model
    # configuration must equal ``model``. Empty: random initialisation. Ignored when resuming.
    init_from: str = ""
    # Where to train: "auto" (GPU LOCAL_RANK when CUDA is available, else the CPU), "cuda" or "cpu".
    device: str = "auto"
    # Mixed precision on GPUs (float16 autocast with gradient scaling): faster and lighter on
    # GPUs with tensor cores. Ignored, with one log message, on a CPU.
    amp: bool = False
    # Weights-only checkpoints <exp_dir>/epoch-<n> kept (the newest) for `asr average`: the
    # mean of the last few epochs is usually a little better than any one. 0 writes (and
    # deletes) none.
    keep_epoch_checkpoints: int = 5
    # Weight of the auxiliary phone CTC loss against the character loss (model.aux_phone_layer).
    phone_loss_weight: float = 0.3
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        if 1.0 not in self.speed_factors:
            raise ConfigError("speed_factors must include 1.0")
        if self.epochs < 1 or self.max_batch_frames < 1:
            raise ConfigError("epochs and max_batch_frames must be positive")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.model.aux_phone_layer and not self.data.cmudict:
            raise ConfigError("model.aux_phone_layer needs data.cmudict (the CMU Pronouncing Dictionary)")
        if self.phone_loss_weight < 0:
            raise ConfigError(f"phone_loss_weight must be >= 0, got {self.phone_loss_weight}")
        if self.keep_epoch_checkpoints < 0:
            raise ConfigError(f"keep_epoch_checkpoints must be >= 0, got {self.keep_epoch_checkpoints}")
        if not 0.0 <= self.data.join_share < 1.0:
            raise ConfigError(f"data.join_share must be in [0, 1), got {self.data.join_share}")
        if self.data.join_share and self.data.loader_workers:
            raise ConfigError("data.join_share needs in-memory features (data.loader_workers = 0)")
        if self.data.join_max_seconds <= 0:
            raise ConfigError(f"data.join_max_seconds must be positive, got {self.data.join_max_seconds}")

    def resolve_paths(self, base: Path) -> TrainConfig:
        """Make the data and experiment paths absolute, relative to ``base``."""

        def absolute(p: str) -> str:
            return str((base / p).resolve()) if p else p

        data = dataclasses.replace(
            self.data,
            train_manifest=absolute(self.data.train_manifest),
            valid_manifest=absolute(self.data.valid_manifest),
            stats=absolute(self.data.stats),
            cmudict=absolute(self.data.cmudict),
        )
        tokenizer = dataclasses.replace(self.tokenizer, bpe_model=absolute(self.tokenizer.bpe_model))
        return dataclasses.replace(
            self, data=data, tokenizer=tokenizer, exp_dir=absolute(self.exp_dir), init_from=absolute(self.init_from)
        )


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training config (which may extend another, ``base = "other.toml"``: see
    :func:`asr.config.read_layered_toml`); relative paths in it are resolved against its folder."""
    path = Path(path)
    return from_dict(TrainConfig, read_layered_toml(path), str(path)).resolve_paths(path.resolve().parent)
