"""Energy voice activity detection, with Kaldi's ``compute-vad`` rule and defaults, and the
absolute silence floor that keeps silence from being decoded into text.

A frame is voiced when its log energy exceeds ``energy_threshold + energy_mean_scale * mean``,
the mean taken over the recording's frames; energies are sums of squares of 16-bit-scale
samples over 25 ms frames every 10 ms, as Kaldi's MFCC ``raw_energy``. The threshold follows
the recording's own level, so it needs no calibration for gain. With Kaldi's defaults it is
permissive: only frames far below the speech level, such as pauses in clean recordings, are
unvoiced. That relative rule finds pauses; it cannot tell a silent recording from speech
(digital silence or steady low noise is "voiced" against its own mean), so a second, absolute
rule says which frames are *audible* (reach :attr:`EnergyVadConfig.silence_dbfs`): a greedy
decoder otherwise prints a letter (``I``, ``B``) for silence. Offline, a piece with no audible frame decodes to nothing (:func:`is_silent`); live,
the model cannot emit for audio it has not heard, so each output frame is judged by the audio
before it (:class:`LiveAudibility`). The frames are those of the features (25 ms every 10 ms),
so output frame ``k`` of a model stacking ``S`` frames covers frames ``k*S .. k*S + S - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

INT16_SCALE = 32768.0


@dataclass(frozen=True)
class EnergyVadConfig:
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    # Kaldi's compute-vad defaults (--vad-energy-threshold, --vad-energy-mean-scale).
    energy_threshold: float = 5.0
    energy_mean_scale: float = 0.5
    # A frame quieter than this (mean square, dB re full scale) is silence at any recording
    # level. Measured on 100 utterances of each set in ../shared/data: the quietest utterance
    # peaks at -35 dBFS (TIMIT; the others at -28 to -23), pauses sit at -55 to -70 dBFS, and
    # the bundled models recognise nothing in speech 20 dB below its usual level. -45 dBFS
    # leaves 10 dB below the quietest real speech.
    silence_dbfs: float = -45.0
    # Live output frames this long after the last audible frame decode to blank. Wider than the
    # lag of the unidirectional model's emissions behind the audio (a few hundred ms), so that
    # no letter of real speech falls outside it.
    speech_margin_seconds: float = 1.0


def _frame_energy(waveform: np.ndarray, sample_rate: int, config: EnergyVadConfig) -> tuple[np.ndarray, int]:
    """``(F,)`` sums of squares of the 16-bit-scale frames of ``(T,)`` audio, and the frame length."""
    frame = max(1, round(config.frame_seconds * sample_rate))
    hop = max(1, round(config.hop_seconds * sample_rate))
    if waveform.size < frame:
        return np.zeros(0), frame
    count = 1 + (waveform.size - frame) // hop
    scaled = waveform.astype(np.float64) * INT16_SCALE
    windows = np.lib.stride_tricks.sliding_window_view(scaled, frame)[::hop][:count]  # (F, frame)
    return np.sum(windows**2, axis=1), frame


def voiced_frames(waveform: np.ndarray, sample_rate: int, config: EnergyVadConfig = EnergyVadConfig()) -> np.ndarray:
    """``(F,)`` booleans: is frame ``i``, starting at ``i * hop_seconds``, voiced?

    Args:
        waveform: ``(T,)`` float audio in [-1, 1].
    """
    energy, _ = _frame_energy(waveform, sample_rate, config)
    if energy.size == 0:
        return np.zeros(0, dtype=bool)
    log_energy = np.log(np.maximum(energy, np.finfo(np.float64).tiny))
    return log_energy > config.energy_threshold + config.energy_mean_scale * log_energy.mean()


def audible_frames(waveform: np.ndarray, sample_rate: int, config: EnergyVadConfig = EnergyVadConfig()) -> np.ndarray:
    """``(F,)`` booleans: does frame ``i`` reach ``silence_dbfs``, whatever the rest of the audio?

    Args:
        waveform: ``(T,)`` float audio in [-1, 1].
    """
    energy, frame = _frame_energy(waveform, sample_rate, config)
    floor = frame * INT16_SCALE**2 * 10 ** (config.silence_dbfs / 10)
    return energy >= floor


def near_audible(
    audible: np.ndarray, stack: int, first: int, count: int, margin: int, causal: bool, base: int = 0
) -> np.ndarray:
    """``(count,)`` booleans: does output frame ``first + i`` lie within ``margin`` frames of an
    audible one? It covers frames ``k*stack .. k*stack + stack - 1`` of ``audible`` (``(F,)``,
    frame ``base + j`` at index ``j``); ``causal`` looks only back (a live stream cannot wait)."""
    counts = np.concatenate([[0], np.cumsum(audible, dtype=np.int64)])  # (F + 1,)
    k = np.arange(first, first + count)
    lo = np.clip(k * stack - margin - base, 0, audible.size)
    hi = np.clip(k * stack + stack + (0 if causal else margin) - base, 0, audible.size)
    return counts[hi] > counts[lo]


def blank_silence(log_probs: torch.Tensor, keep: np.ndarray, blank_id: int) -> torch.Tensor:
    """``(T', V)`` log-probabilities with the frames where ``keep`` (``(T',)``) is False made
    certain blanks (a large finite penalty, which every decoder and the aligner accept)."""
    drop = torch.from_numpy(~keep[: log_probs.shape[0]])
    if not drop.any():
        return log_probs
    silent = torch.full_like(log_probs[0], -1e4)
    silent[blank_id] = 0.0
    return torch.where(drop.unsqueeze(-1), silent, log_probs)


def is_silent(waveform: np.ndarray, sample_rate: int, config: EnergyVadConfig = EnergyVadConfig()) -> bool:
    """Whether no frame of ``(T,)`` audio is audible: a piece a bidirectional model decodes to
    nothing. Such a model cannot be judged frame by frame: it may place a letter of real speech
    seconds away from it (the ``H`` of the bundled sample's first word, after two seconds of
    silence put before it, comes out on the file's first frame)."""
    return not audible_frames(waveform, sample_rate, config).any()


class LiveAudibility:
    """:func:`audible_frames` over audio that comes in chunks of any size, for a live stream:
    the same frames however the audio is cut, and only the few needed kept."""

    def __init__(self, sample_rate: int, stack: int, config: EnergyVadConfig = EnergyVadConfig()) -> None:
        self.sample_rate, self.stack, self.config = sample_rate, stack, config
        self.hop = max(1, round(config.hop_seconds * sample_rate))
        self.margin = round(config.speech_margin_seconds / config.hop_seconds)
        self.buffer = np.zeros(0, dtype=np.float32)  # samples from frame ``base + len(flags)`` on
        self.flags = np.zeros(0, dtype=bool)  # (F_kept,) audible frames from ``base`` on
        self.base = 0

    def accept(self, samples: np.ndarray) -> None:
        """Take ``(T,)`` more samples."""
        self.buffer = np.concatenate([self.buffer, samples])
        new = audible_frames(self.buffer, self.sample_rate, self.config)
        self.flags = np.concatenate([self.flags, new])
        self.buffer = self.buffer[new.size * self.hop :]

    def keep(self, first: int, count: int) -> np.ndarray:
        """``(count,)`` booleans for output frames ``first ..``: heard audible audio within the
        margin before their end; frames no later output needs are then forgotten."""
        kept = near_audible(self.flags, self.stack, first, count, self.margin, causal=True, base=self.base)
        drop = max(0, (first + count) * self.stack - self.margin - self.base)
        self.flags, self.base = self.flags[drop:], self.base + min(drop, self.flags.size)
        return kept
