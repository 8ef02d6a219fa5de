"""Audio of any length: cut at quiet points into pieces the model decodes one at a time.

Files are read block by block at their own rate; each piece is cut at the quietest moment (the
lowest smoothed frame energy, an energy VAD) in the second half of a ``max_seconds`` window, then
mixed to mono and resampled on its own. Memory stays proportional to ``max_seconds``, not to the
file: an hour of 48 kHz stereo needs no more than one window of it at a time. Audio no longer
than ``max_seconds`` is one piece, decoded exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from asr.audio import AudioInput, load_audio, resample, validate_waveform
from asr.errors import AudioError


@dataclass(frozen=True)
class SplitConfig:
    """Where long audio is cut."""

    # Longest piece decoded at once. A bidirectional LSTM sees the whole piece, so longer pieces
    # give it more context; 30 s keeps each forward pass small.
    max_seconds: float = 30.0
    # The cut is searched for in the last (1 - min_fraction) of each window.
    min_fraction: float = 0.5
    # Energy frames for finding quiet moments, and the smoothing over them.
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    smooth_seconds: float = 0.2


@dataclass(frozen=True)
class Piece:
    """One piece of a long recording, at the model's rate."""

    start: float  # seconds from the start of the recording
    waveform: np.ndarray  # (T,) float32


def quietest_point(waveform: np.ndarray, lo: int, hi: int, rate: int, config: SplitConfig) -> int:
    """Sample index in ``[lo, hi)`` of ``(T,)`` audio where the smoothed energy is lowest."""
    frame, hop = max(1, int(config.frame_seconds * rate)), max(1, int(config.hop_seconds * rate))
    region = waveform[lo:hi]
    if len(region) < frame:
        return hi
    count = 1 + (len(region) - frame) // hop
    starts = np.arange(count) * hop
    power = np.array([np.mean(region[s : s + frame] ** 2) for s in starts])  # (count,)
    width = max(1, int(config.smooth_seconds / config.hop_seconds))
    smoothed = np.convolve(power, np.ones(width) / width, mode="same")
    best = int(np.argmin(smoothed))
    return lo + int(starts[best]) + frame // 2


def cut_points(waveform: np.ndarray, rate: int, config: SplitConfig) -> list[int]:
    """Sample indices where ``(T,)`` audio is cut into pieces of at most ``max_seconds``."""
    max_len = int(config.max_seconds * rate)
    cuts, start = [], 0
    while len(waveform) - start > max_len:
        cut = quietest_point(waveform, start + int(config.min_fraction * max_len), start + max_len, rate, config)
        cuts.append(cut)
        start = cut
    return cuts


def pieces(
    audio: AudioInput, sample_rate: int, min_samples: int, config: SplitConfig = SplitConfig()
) -> Iterator[Piece]:
    """The audio as pieces of at most ``config.max_seconds``, at ``sample_rate``.

    Raises:
        AudioError: as :func:`asr.audio.load_audio`, naming the file.
    """
    if not isinstance(audio, str | os.PathLike):
        waveform = load_audio(audio, sample_rate, min_samples)
        bounds = [0, *cut_points(waveform, sample_rate, config), len(waveform)]
        for a, b in zip(bounds, bounds[1:]):
            yield Piece(a / sample_rate, waveform[a:b])
        return
    path = Path(audio)
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        info = None  # load_audio gives the precise error
    if info is None or info.frames <= config.max_seconds * info.samplerate:
        yield Piece(0.0, load_audio(path, sample_rate, min_samples))
        return
    yield from _file_pieces(path, info.samplerate, sample_rate, min_samples, config)


def batch_pieces(items: Iterable[tuple[int, Piece]], max_padded_samples: float) -> Iterator[list[tuple[int, Piece]]]:
    """``(audio index, piece)`` pairs gathered, in order, into batches whose padded length
    (longest piece x pieces) stays within ``max_padded_samples``; a piece longer than that is a
    batch of its own. Lazy: a batch is read from ``items`` only as far as it needs."""
    batch: list[tuple[int, Piece]] = []
    longest = 0  # samples of the batch's longest piece
    for item in items:
        size = item[1].waveform.size
        if batch and max(longest, size) * (len(batch) + 1) > max_padded_samples:
            yield batch
            batch, longest = [], 0
        batch.append(item)
        longest = max(longest, size)
    if batch:
        yield batch


def _file_pieces(
    path: Path, native_rate: int, sample_rate: int, min_samples: int, config: SplitConfig
) -> Iterator[Piece]:
    max_len = int(config.max_seconds * native_rate)
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # native samples before the buffer's start
    try:
        with soundfile.SoundFile(str(path)) as f:
            while True:
                block = f.read(max_len - len(buffer), dtype="float32", always_2d=True)
                buffer = np.concatenate([buffer, block.mean(axis=1, dtype=np.float32)])
                at_end = len(block) == 0 or f.tell() >= f.frames
                if at_end and len(buffer) <= max_len:
                    cut = len(buffer)
                else:
                    lo = int(config.min_fraction * max_len)
                    cut = quietest_point(buffer, lo, min(max_len, len(buffer)), native_rate, config)
                piece = validate_waveform(buffer[:cut], str(path), 1)
                piece = resample(piece, native_rate, sample_rate)
                if len(piece) >= min_samples:
                    yield Piece(offset / native_rate, piece)
                offset += cut
                buffer = buffer[cut:]
                if at_end and not len(buffer):
                    return
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: could not read past {offset / native_rate:.1f} s ({exc})") from exc
