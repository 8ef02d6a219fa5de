"""Training-time augmentation: speed perturbation and SpecAugment."""

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


class SpecAugment(torch.nn.Module):
    """Mask ``(N, T, F)`` features independently per utterance, filling with 0 (the mean)."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        self.config = config
        self.freq = torchaudio.transforms.FrequencyMasking(config.freq_mask_width, iid_masks=True)
        self.time = torchaudio.transforms.TimeMasking(
            config.time_mask_width, iid_masks=True, p=config.time_mask_max_ratio
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
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
