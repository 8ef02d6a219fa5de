"""Training-time augmentation: speed perturbation, SpecAugment, and waveform degradations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.audio import resample


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

    def __post_init__(self) -> None:
        if not 0.0 <= self.frequency_warp < 1.0 - self.frequency_warp_cutoff:
            raise ValueError(
                f"frequency_warp must be in [0, {1.0 - self.frequency_warp_cutoff:g}) so the warp stays "
                f"monotonic, got {self.frequency_warp}"
            )


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


class SpecAugment(torch.nn.Module):
    """Warp and mask ``(N, T, F)`` features independently per utterance, filling masks with 0
    (the mean)."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        self.config = config
        self.freq = torchaudio.transforms.FrequencyMasking(config.freq_mask_width, iid_masks=True)
        self.time = torchaudio.transforms.TimeMasking(
            config.time_mask_width, iid_masks=True, p=config.time_mask_max_ratio
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
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
