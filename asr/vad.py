"""Energy voice activity detection, with Kaldi's ``compute-vad`` rule and defaults.

A frame is voiced when its log energy exceeds ``energy_threshold + energy_mean_scale * mean``,
the mean taken over the recording's frames; energies are sums of squares of 16-bit-scale
samples over 25 ms frames every 10 ms, as Kaldi's MFCC ``raw_energy``. The threshold follows
the recording's own level, so it needs no calibration for gain. With Kaldi's defaults it is
permissive: only frames far below the speech level, such as pauses in clean recordings, are
unvoiced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT16_SCALE = 32768.0


@dataclass(frozen=True)
class EnergyVadConfig:
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    # Kaldi's compute-vad defaults (--vad-energy-threshold, --vad-energy-mean-scale).
    energy_threshold: float = 5.0
    energy_mean_scale: float = 0.5


def voiced_frames(waveform: np.ndarray, sample_rate: int, config: EnergyVadConfig = EnergyVadConfig()) -> np.ndarray:
    """``(F,)`` booleans: is frame ``i``, starting at ``i * hop_seconds``, voiced?

    Args:
        waveform: ``(T,)`` float audio in [-1, 1].
    """
    frame = max(1, round(config.frame_seconds * sample_rate))
    hop = max(1, round(config.hop_seconds * sample_rate))
    if waveform.size < frame:
        return np.zeros(0, dtype=bool)
    count = 1 + (waveform.size - frame) // hop
    scaled = waveform.astype(np.float64) * INT16_SCALE
    windows = np.lib.stride_tricks.sliding_window_view(scaled, frame)[::hop][:count]  # (F, frame)
    log_energy = np.log(np.maximum(np.sum(windows**2, axis=1), np.finfo(np.float64).tiny))
    return log_energy > config.energy_threshold + config.energy_mean_scale * log_energy.mean()
