"""Reading audio into the mono float32 waveform the model expects.

Files are read with soundfile (WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3) or, for what libsndfile
cannot open (M4A/AAC, MP4 and MOV audio tracks, WebM/Opus, WMA, ...), with FFmpeg through PyAV
(:mod:`asr.audio_decode`); ``-`` reads standard input. Audio is mixed down to mono by averaging
channels and resampled with torchaudio's band-limited sinc resampler. A file cut short or
damaged part-way gives the audio before the damage, with a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import torch
import torchaudio.functional as AF

from asr.audio_decode import READ_BLOCK_FRAMES, STDIN, STDIN_NAME, AudioReader, open_audio, read_all
from asr.errors import AudioError

SAMPLE_RATE = 16_000
"""The rate every model in the toolkit consumes, in Hz."""

AudioInput = str | os.PathLike | BinaryIO | np.ndarray | torch.Tensor

__all__ = [
    "READ_BLOCK_FRAMES", "SAMPLE_RATE", "STDIN", "STDIN_NAME", "AudioInfo", "AudioInput", "AudioReader",
    "audio_duration", "audio_info", "load_audio", "open_audio", "resample", "validate_waveform",
]  # fmt: skip


def resample(waveform: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a mono waveform.

    Args:
        waveform: ``(T,)`` float32 samples at ``orig_rate``.
        orig_rate: rate of ``waveform`` in Hz.
        new_rate: wanted rate in Hz.

    Returns:
        ``(T * new_rate / orig_rate,)`` float32 samples.
    """
    if orig_rate == new_rate:
        return waveform
    out = AF.resample(torch.from_numpy(waveform), orig_rate, new_rate)
    return out.numpy().astype(np.float32, copy=False)


# Integer PCM as float in [-1, 1): signed samples over 2^(bits - 1), unsigned 8-bit (WAV's)
# centred on 128 first. Wider or other integer types have no common audio meaning and are refused.
PCM_SCALES = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int8): 2.0**7}
PCM_UINT8_CENTRE = 128


def float_samples(samples: np.ndarray, name: str) -> np.ndarray:
    """``samples`` (any shape) as float32: floats cast, integer PCM scaled (int16 by 1/32768,
    int32 by 1/2^31, int8 by 1/128, uint8 centred on 128 and scaled by 1/128).

    Raises:
        AudioError: another dtype (int64, uint16, bool, complex, object, ...), naming ``name``.
    """
    dtype = samples.dtype
    if dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if dtype in PCM_SCALES:
        return (samples.astype(np.float32) / np.float32(PCM_SCALES[dtype])).astype(np.float32, copy=False)
    if dtype == np.uint8:
        return (samples.astype(np.float32) - PCM_UINT8_CENTRE) / np.float32(PCM_UINT8_CENTRE)
    raise AudioError(
        f"{name}: samples of dtype {dtype} have no known scale; pass float samples in [-1, 1] "
        "or int16/int32/int8/uint8 PCM"
    )


def validate_waveform(waveform: np.ndarray, name: str, min_samples: int) -> np.ndarray:
    """``(T,)`` ``waveform`` as float32 (integer PCM scaled by :func:`float_samples`), or raise
    :class:`AudioError` naming ``name``."""
    waveform = float_samples(np.asarray(waveform), name)
    if waveform.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    if waveform.size == 0:
        raise AudioError(f"{name}: audio is empty")
    if waveform.size < min_samples:
        raise AudioError(
            f"{name}: audio is {waveform.size} samples long, shorter than one feature frame ({min_samples} samples)"
        )
    if not np.isfinite(waveform).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return waveform


def load_audio(audio: AudioInput, sample_rate: int = SAMPLE_RATE, min_samples: int = 1) -> np.ndarray:
    """Load audio as a mono float32 waveform at ``sample_rate``.

    Args:
        audio: a path to an audio file in any format libsndfile or FFmpeg reads; ``"-"`` for
            standard input (``ffmpeg -i talk.m4a -f wav - | ...``; a file named ``-`` is ``./-``);
            a binary stream, read to its end; or a waveform already at ``sample_rate`` as a NumPy
            array or tensor of shape ``(T,)`` (or ``(T, channels)`` for arrays, mixed down):
            float samples, or integer PCM scaled as :func:`float_samples` does.
        sample_rate: the rate to return, in Hz.
        min_samples: the fewest samples accepted (the length of one feature window).

    Returns:
        ``(T,)`` float32 waveform at ``sample_rate``.

    Raises:
        AudioError: the file is missing or not audio, or the audio is empty, shorter than
            ``min_samples`` or holds NaN/Inf. The message names the file (``<stdin>`` for
            standard input, ``<stream>`` for another stream).
    """
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    if isinstance(audio, np.ndarray):
        name = f"<array of shape {tuple(audio.shape)}>"
        waveform = float_samples(audio, name)  # integer PCM scaled, before channels are mixed
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=1, dtype=np.float32)
        return validate_waveform(waveform, name, min_samples)
    with open_audio(audio) as reader:
        waveform, rate, name = read_all(reader), reader.samplerate, reader.name
    waveform = validate_waveform(waveform, name, 1)
    waveform = resample(waveform, rate, sample_rate)
    return validate_waveform(waveform, name, min_samples)


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says about it."""

    samplerate: int  # Hz
    channels: int
    frames: int | None  # exact for what libsndfile reads; the container's estimate otherwise

    @property
    def duration(self) -> float | None:
        """Seconds, or None if the header does not record the length."""
        return None if self.frames is None else self.frames / self.samplerate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Rate, channels and length of an audio file, from its header (as :func:`load_audio` would
    decode it: an MP3's untrimmed delay is not counted).

    Raises:
        AudioError: the file is missing or not audio, or ``path`` is ``"-"`` (standard input
            can be read once only: load it instead).
    """
    if os.fspath(path) == STDIN:
        raise AudioError(f"{STDIN_NAME}: its length is not known before it is read; load it instead")
    with open_audio(path) as reader:
        return AudioInfo(reader.samplerate, reader.channels, reader.frames)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds, read from its header (decoded to the end where the
    header does not record it).

    Raises:
        AudioError: the file is missing or not audio.
    """
    info = audio_info(path)
    if info.duration is not None:
        return info.duration
    with open_audio(path) as reader:
        return len(read_all(reader)) / reader.samplerate
