"""Training-time augmentation: speed perturbation, SpecAugment, and waveform degradations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.audio import resample
from asr.features import Normalizer

# A gain of 1 dB multiplies power by 10 ** 0.1, so adds ln(10) / 10 to a natural-log power.
LOG_POWER_PER_DB = math.log(10.0) / 10.0


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment (Park et al. 2019) masks, scaled down for short read utterances."""

    freq_masks: int = 2
    # Widest frequency mask in mel bins; the LibriSpeech "LD" policy uses 27 of 80.
    freq_mask_width: int = 27
    time_masks: int = 2
    # Widest time mask in frames (0.4 s): utterances here are only 2-5 s long.
    time_mask_width: int = 40
    # No time mask covers more than this fraction of an utterance.
    time_mask_max_ratio: float = 0.2
    # Vocal tract length perturbation (Jaitly and Hinton 2013) on the mel axis: each utterance's
    # spectrum is stretched by a factor drawn from [1 - warp, 1 + warp]; 0 turns it off. A factor
    # above 1 moves formants up, as a shorter (a child's) vocal tract would.
    frequency_warp: float = 0.0
    # The warp is linear below this fraction of the mel axis, then bends to keep the top bin fixed.
    frequency_warp_cutoff: float = 0.8
    # Level perturbation: each utterance is made louder or quieter by a gain drawn from
    # [-gain_db, gain_db] dB, applied to its log-mel features (see shift_level), so that a model
    # does not learn its training sets' recording levels; 0 turns it off.
    gain_db: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.frequency_warp < 1.0 - self.frequency_warp_cutoff:
            raise ValueError(
                f"frequency_warp must be in [0, {1.0 - self.frequency_warp_cutoff:g}) so the warp stays "
                f"monotonic, got {self.frequency_warp}"
            )
        if not 0.0 <= self.gain_db < math.inf:
            raise ValueError(f"gain_db must be finite and >= 0, got {self.gain_db}")


def warp_frequencies(features: torch.Tensor, factors: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Stretch each utterance's mel axis by its factor, interpolating linearly between bins.

    Args:
        features: ``(N, T, F)``.
        factors: ``(N,)`` warp factors near 1; output bin ``j`` reads input position ``j / factor``
            below ``cutoff * (F - 1)``, and above it a straight line up to the fixed top bin.
        cutoff: fraction of the mel axis where the linear warp ends.

    Returns:
        ``(N, T, F)`` warped features.
    """
    n, t, f = features.shape
    top = f - 1
    bins = torch.arange(f, dtype=features.dtype, device=features.device).unsqueeze(0)  # (1, F)
    alpha = factors.to(features.dtype).unsqueeze(1)  # (N, 1)
    knee = cutoff * top
    upper = knee / alpha + (bins - knee) * (top - knee / alpha) / (top - knee)
    source = torch.where(bins <= knee, bins / alpha, upper).clamp(0, top)  # (N, F)
    low = source.floor().clamp(max=top - 1)
    frac = (source - low).unsqueeze(1)  # (N, 1, F)
    index = low.long().unsqueeze(1).expand(n, t, f)
    below = features.gather(2, index)
    above = features.gather(2, index + 1)
    return below + (above - below) * frac


def shift_level(
    features: torch.Tensor, gain_db: torch.Tensor, normalizer: Normalizer, log_floor: float
) -> torch.Tensor:
    """Normalised log-mel features of each utterance's audio played ``gain_db`` louder.

    Scaling audio by a gain adds a constant to its log mel power; bins at the extractor's floor
    (digital silence) stay there, and no bin falls below it. Power below the floor is lost, so
    a floored bin stays floored where the louder audio itself might rise above the floor.

    Args:
        features: ``(N, T, F)`` features normalised by ``normalizer``.
        gain_db: ``(N,)`` gains in dB (negative: quieter).
        normalizer: the features' per-bin mean and standard deviation.
        log_floor: the extractor's floor on mel power (``FeatureConfig.log_floor``).

    Returns:
        ``(N, T, F)`` normalised features.
    """
    mean = torch.tensor(normalizer.mean, dtype=features.dtype, device=features.device)
    std = torch.tensor(normalizer.std, dtype=features.dtype, device=features.device)
    floor = math.log(log_floor)
    log_power = features * std + mean
    shifted = (log_power + gain_db.to(features.dtype)[:, None, None] * LOG_POWER_PER_DB).clamp_min(floor)
    at_floor = log_power <= floor + 1e-3
    return (torch.where(at_floor, log_power, shifted) - mean) / std


class SpecAugment(torch.nn.Module):
    """Warp and mask ``(N, T, F)`` features independently per utterance, filling masks with 0
    (the mean); with ``config.gain_db``, first move each utterance's level (which needs the
    features' ``normalizer`` and ``log_floor``)."""

    def __init__(self, config: SpecAugmentConfig, normalizer: Normalizer | None = None, log_floor: float = 0.0) -> None:
        super().__init__()
        if config.gain_db > 0 and normalizer is None:
            raise ValueError("SpecAugment with gain_db needs the features' normalizer")
        self.config = config
        self.normalizer = normalizer
        self.log_floor = log_floor
        self.freq = torchaudio.transforms.FrequencyMasking(config.freq_mask_width, iid_masks=True)
        self.time = torchaudio.transforms.TimeMasking(
            config.time_mask_width, iid_masks=True, p=config.time_mask_max_ratio
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.config.gain_db > 0 and self.normalizer is not None:
            gains = (torch.rand(features.size(0), device=features.device) * 2 - 1) * self.config.gain_db
            features = shift_level(features, gains, self.normalizer, self.log_floor)
        warp = self.config.frequency_warp
        if warp > 0:
            factors = 1.0 + (torch.rand(features.size(0), device=features.device) * 2 - 1) * warp
            features = warp_frequencies(features, factors, self.config.frequency_warp_cutoff)
        x = features.transpose(1, 2).unsqueeze(1)  # (N, T, F) -> (N, 1, F, T)
        for _ in range(self.config.freq_masks):
            x = self.freq(x)
        for _ in range(self.config.time_masks):
            x = self.time(x)
        return x.squeeze(1).transpose(1, 2)  # (N, 1, F, T) -> (N, T, F)


def speed_perturb(waveform: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``(T,)`` audio ``factor`` times faster (pitch moves too, as in Kaldi's recipes).

    Resampling from ``sample_rate`` to ``sample_rate / factor`` and reading the result at
    ``sample_rate`` shortens the audio by ``factor``.
    """
    if factor == 1.0:
        return waveform
    return resample(waveform, round(sample_rate * factor), sample_rate)


# Waveform degradations. Each takes ``(T,)`` float32 audio and a NumPy generator and returns new
# ``(T,)`` float32 audio; the recipes use them to make clean synthetic speech sound recorded.


def colored_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``(num_samples,)`` unit-power noise with a ``1 / f**exponent`` power spectrum.

    ``exponent`` 0 is white, 1 pink, 2 brown noise.
    """
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0  # leave the DC bin unscaled instead of dividing by zero
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(waveform: np.ndarray, snr_db: float, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Add colored noise (see :func:`colored_noise`) at ``snr_db`` below the speech power."""
    power = float(np.mean(waveform.astype(np.float64) ** 2))
    noise = colored_noise(len(waveform), exponent, rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return (waveform + noise).astype(np.float32)


def synthetic_rir(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response ``(L,)``: a direct path, then exponentially decaying noise.

    ``rt60`` is the time in seconds for the reverberant tail to decay by 60 dB.
    """
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    decay_60db = np.log(1000.0)  # amplitude falls by 10**3 = 60 dB over rt60
    rir = rng.standard_normal(len(t)) * np.exp(-decay_60db * t / rt60)
    rir[0] = np.abs(rir).max() * 4  # the direct path dominates the tail
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(waveform: np.ndarray, rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with :func:`synthetic_rir`; the result keeps the input's length and peak level."""
    rir = torch.from_numpy(synthetic_rir(rt60, sample_rate, rng))
    wet = torchaudio.functional.fftconvolve(torch.from_numpy(waveform), rir)[: len(waveform)].numpy()
    peak = np.abs(wet).max()
    return (wet * (np.abs(waveform).max() / peak) if peak > 0 else wet).astype(np.float32)


def band_limit(waveform: np.ndarray, sample_rate: int, narrow_rate: int = 8000) -> np.ndarray:
    """Telephone-like audio: resample down to ``narrow_rate`` and back, keeping the length."""
    narrow = resample(waveform, sample_rate, narrow_rate)
    wide = resample(narrow, narrow_rate, sample_rate)
    out = np.zeros_like(waveform)
    n = min(len(out), len(wide))
    out[:n] = wide[:n]
    return out
