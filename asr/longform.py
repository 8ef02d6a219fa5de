"""Audio of any length: cut at pauses into pieces the model decodes one at a time.

Audio no longer than ``max_seconds`` is one piece, decoded exactly as it is. Longer audio is cut
at pauses that the energy VAD (:func:`asr.vad.voiced_frames`) finds in each ``max_seconds``
window: at the middle of the first pause of at least ``pause_seconds`` once a piece holds
``min_seconds``, so that pieces are about one sentence each, like the utterances the model was
trained on (the last piece is cut only if at least ``min_seconds`` follow); a window without
such a pause is cut at its quietest moment (the lowest smoothed frame energy) in its second half. Files are read block by block at their own rate, each piece
mixed to mono and resampled on its own: memory stays proportional to ``max_seconds``, not to the
file (an hour of 48 kHz stereo needs no more than one window of it at a time).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.audio import STDIN, AudioInput, audio_info, load_audio, open_audio, resample, validate_waveform
from asr.audio_decode import DecodeError
from asr.errors import AudioError
from asr.longform_config import SplitConfig
from asr.vad import EnergyVadConfig, voiced_frames

DEFAULT_SPLIT = SplitConfig()


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
    # The mean over the frames that exist: zero padding would make the edges look quietest.
    smoothed = np.convolve(power, np.ones(width), mode="same") / np.convolve(
        np.ones_like(power), np.ones(width), mode="same"
    )
    best = int(np.argmin(smoothed))
    return lo + int(starts[best]) + frame // 2


def first_pause(window: np.ndarray, rate: int, config: SplitConfig, before: int) -> int | None:
    """Sample index, less than ``before``, of the middle of the first pause of ``(T,)`` audio that
    ends past ``min_seconds`` and lasts ``pause_seconds``, or None."""
    vad = EnergyVadConfig(config.frame_seconds, config.hop_seconds, energy_threshold=config.pause_energy_threshold)
    voiced = voiced_frames(window, rate, vad)  # (F,)
    hop = max(1, round(config.hop_seconds * rate))
    edges = np.flatnonzero(np.diff(np.concatenate([[1], voiced.astype(np.int8), [1]])))  # run bounds
    for start, end in zip(edges[::2], edges[1::2]):  # unvoiced frames [start, end)
        long_enough = (end - start) * config.hop_seconds >= config.pause_seconds
        if long_enough and end * config.hop_seconds >= config.min_seconds:
            middle = max((start + end) // 2 * hop, round(config.min_seconds * rate))
            if middle < before:
                return middle
    return None


def next_cut(window: np.ndarray, rate: int, config: SplitConfig, more: bool) -> int | None:
    """Where the first piece of ``(T,)`` audio ends (a sample index): at its first pause
    (:func:`first_pause`) within ``max_seconds``; without one, at the quietest moment of the
    window's second half if ``more`` audio follows it, else None (the rest is one piece)."""
    max_len = int(config.max_seconds * rate)
    window = window[:max_len]
    # The last piece is cut only where what follows is a piece worth decoding on its own.
    before = len(window) if more else len(window) - round(config.min_seconds * rate)
    cut = first_pause(window, rate, config, before)
    if cut is None and more:
        cut = quietest_point(window, int(config.min_fraction * max_len), len(window), rate, config)
    return cut


def cut_points(waveform: np.ndarray, rate: int, config: SplitConfig) -> list[int]:
    """Sample indices where ``(T,)`` audio is cut into pieces of at most ``max_seconds``."""
    max_len = int(config.max_seconds * rate)
    if len(waveform) <= max_len:
        return []
    cuts, start = [], 0
    while (cut := next_cut(waveform[start:], rate, config, len(waveform) - start > max_len)) is not None:
        start += cut
        cuts.append(start)
    return cuts


def pieces(
    audio: AudioInput, sample_rate: int, min_samples: int, config: SplitConfig = DEFAULT_SPLIT
) -> Iterator[Piece]:
    """The audio as pieces of at most ``config.max_seconds``, at ``sample_rate``. Arrays, streams
    and standard input are read whole; a file longer than a piece by its header (or of unknown
    length) is read block by block.

    Raises:
        AudioError: as :func:`asr.audio.load_audio`, naming the file.
    """
    if not isinstance(audio, str | os.PathLike) or os.fspath(audio) == STDIN:
        waveform = load_audio(audio, sample_rate, min_samples)
        bounds = [0, *cut_points(waveform, sample_rate, config), len(waveform)]
        for a, b in zip(bounds, bounds[1:]):
            yield Piece(a / sample_rate, waveform[a:b])
        return
    path = Path(audio)
    try:
        info = audio_info(path)
    except AudioError:
        info = None  # load_audio gives the precise error
    if info is None or (info.frames is not None and info.frames <= config.max_seconds * info.samplerate):
        yield Piece(0.0, load_audio(path, sample_rate, min_samples))
        return
    yield from _file_pieces(path, sample_rate, min_samples, config)


def indexed_pieces(
    audios: Sequence[AudioInput], sample_rate: int, min_samples: int, config: SplitConfig, errors: dict[int, AudioError]
) -> Iterator[tuple[int, Piece]]:
    """``(index, piece)`` for the pieces of each of ``audios`` in turn. An audio that cannot be
    read or used stops there, its :class:`AudioError` put in ``errors[index]``; the rest go on."""
    for index, audio in enumerate(audios):
        try:
            for piece in pieces(audio, sample_rate, min_samples, config):
                yield index, piece
        except AudioError as exc:
            errors[index] = exc


def total_seconds(audios: Sequence[AudioInput], sample_rate: int) -> float | None:
    """Seconds of all of ``audios`` from arrays' lengths and files' headers (an unreadable file
    counts 0), or None where a length is not known before reading (standard input, streams)."""
    total = 0.0
    for audio in audios:
        if isinstance(audio, np.ndarray | torch.Tensor):
            total += audio.shape[0] / sample_rate if audio.ndim else 0.0
        elif not isinstance(audio, str | os.PathLike) or os.fspath(audio) == STDIN:
            return None
        else:
            try:
                seconds = audio_info(audio).duration
            except AudioError:
                seconds = 0.0
            if seconds is None:
                return None
            total += seconds
    return round(total, 2)


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


def _file_pieces(path: Path, sample_rate: int, min_samples: int, config: SplitConfig) -> Iterator[Piece]:
    """The pieces of a long file, read block by block (:func:`asr.audio_decode.open_audio`) at its
    own rate: a window of ``max_seconds`` and one sample more, which says whether more follows."""
    offset = 0  # native samples before the buffer's start
    with open_audio(path) as reader:
        rate, max_len = reader.samplerate, int(config.max_seconds * reader.samplerate)
        buffer = np.zeros(0, dtype=np.float32)
        yielded = False
        while True:
            try:
                buffer = np.concatenate([buffer, reader.read(max_len + 1 - len(buffer))])
            except DecodeError as exc:
                raise AudioError(f"{path}: could not read past {offset / rate:.1f} s ({exc.reason})") from exc
            except OSError as exc:
                raise AudioError(f"{path}: reading failed ({exc.strerror or exc})") from exc
            more = len(buffer) > max_len
            cut = next_cut(buffer, rate, config, more)
            cut = len(buffer) if cut is None else cut
            piece = resample(validate_waveform(buffer[:cut], str(path), 1), rate, sample_rate)
            if len(piece) >= min_samples:
                yielded = True
                yield Piece(offset / rate, piece)
            offset += cut
            buffer = buffer[cut:]
            if not more and not len(buffer):
                break
    if not yielded:  # a file of unknown length turned out shorter than one feature window
        raise AudioError(f"{path}: audio is shorter than one feature frame ({min_samples} samples)")
