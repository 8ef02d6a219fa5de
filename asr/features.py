"""Log-mel features and their global normalisation.

Frames are computed without centring or per-utterance statistics, so frame ``i`` depends only
on samples ``[i * hop, i * hop + window)``. That is what lets a stream compute the same frames
from audio cut into arbitrary pieces (see :class:`IncrementalFeatures`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchaudio

from asr.audio import SAMPLE_RATE

MILLISECONDS_PER_SECOND = 1000


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes log-mel frames.

    The 25 ms window and 10 ms hop are the conventions of nearly every ASR system (Kaldi,
    ESPnet, icefall); 80 mel bins is what whisper and icefall use.
    """

    sample_rate: int = SAMPLE_RATE
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 80
    f_min: float = 20.0
    # Leave a guard band below Nyquist, where resampled audio has no energy.
    f_max: float = 7600.0
    # Floor on mel power before the log: keeps digital silence finite (log(1e-6) = -13.8).
    log_floor: float = 1e-6

    @property
    def window_samples(self) -> int:
        """Samples in one analysis window (400 at 16 kHz)."""
        return round(self.sample_rate * self.window_ms / MILLISECONDS_PER_SECOND)

    @property
    def hop_samples(self) -> int:
        """Samples between the starts of consecutive frames (160 at 16 kHz)."""
        return round(self.sample_rate * self.hop_ms / MILLISECONDS_PER_SECOND)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_samples

    def num_frames(self, num_samples: int) -> int:
        """Frames computed from ``num_samples`` samples (0 if shorter than one window)."""
        if num_samples < self.window_samples:
            return 0
        return 1 + (num_samples - self.window_samples) // self.hop_samples

    def to_dict(self) -> dict:
        return asdict(self)


class LogMel(torch.nn.Module):
    """Un-normalised log-mel frames of a waveform.

    Input ``(T_samples,)`` or ``(N, T_samples)`` float32; output ``(T_frames, n_mels)`` or
    ``(N, T_frames, n_mels)`` with ``T_frames = config.num_frames(T_samples)``.
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.window_samples,
            win_length=config.window_samples,
            hop_length=config.hop_samples,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            power=2.0,
            center=False,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        power = self.mel(waveform)  # (..., n_mels, T_frames)
        return torch.log(power.clamp_min(self.config.log_floor)).transpose(-1, -2)


@dataclass(frozen=True)
class Normalizer:
    """Global mean and standard deviation per mel bin, computed on a training set."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """Normalise ``(..., n_mels)`` features."""
        mean = torch.tensor(self.mean, dtype=feats.dtype)
        std = torch.tensor(self.std, dtype=feats.dtype)
        return (feats - mean) / std

    @classmethod
    def identity(cls, n_mels: int) -> Normalizer:
        return cls(mean=(0.0,) * n_mels, std=(1.0,) * n_mels)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        return cls(mean=tuple(float(x) for x in data["mean"]), std=tuple(float(x) for x in data["std"]))


class StatsAccumulator:
    """Running per-bin sums for the global mean and standard deviation (in float64)."""

    def __init__(self, n_mels: int) -> None:
        self.count = 0
        self.sum = np.zeros(n_mels, dtype=np.float64)
        self.sum_sq = np.zeros(n_mels, dtype=np.float64)

    def add(self, feats: torch.Tensor) -> None:
        """Add ``(T_frames, n_mels)`` frames."""
        values = feats.double().numpy()
        self.count += values.shape[0]
        self.sum += values.sum(axis=0)
        self.sum_sq += (values**2).sum(axis=0)

    def result(self, min_std: float = 1e-3) -> Normalizer:
        if self.count == 0:
            raise ValueError("no frames were accumulated")
        mean = self.sum / self.count
        var = np.maximum(self.sum_sq / self.count - mean**2, min_std**2)
        return Normalizer(mean=tuple(mean.tolist()), std=tuple(np.sqrt(var).tolist()))


class FeatureExtractor:
    """Waveform to normalised log-mel frames: what the model consumes."""

    def __init__(self, config: FeatureConfig, normalizer: Normalizer) -> None:
        self.config = config
        self.normalizer = normalizer
        self.logmel = LogMel(config)

    def __call__(self, waveform: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(T_samples,)`` waveform -> ``(T_frames, n_mels)`` normalised features."""
        samples = torch.as_tensor(waveform, dtype=torch.float32)
        with torch.no_grad():
            return self.normalizer(self.logmel(samples))


class IncrementalFeatures:
    """Computes the same frames as :class:`FeatureExtractor` from audio fed in pieces.

    Samples that do not yet fill a whole window are kept; once a frame is emitted, the samples
    before its successor's start are dropped. The buffer never holds more than one window plus
    the latest piece.
    """

    def __init__(self, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        self.buffer = np.zeros(0, dtype=np.float32)

    def accept(self, samples: np.ndarray) -> torch.Tensor:
        """Add ``(T_samples,)`` samples; return the ``(T_new_frames, n_mels)`` frames now complete."""
        config = self.extractor.config
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        frames = config.num_frames(self.buffer.size)
        if frames == 0:
            return torch.zeros(0, config.n_mels)
        used = (frames - 1) * config.hop_samples + config.window_samples
        out = self.extractor(self.buffer[:used])
        self.buffer = self.buffer[frames * config.hop_samples :]
        return out
