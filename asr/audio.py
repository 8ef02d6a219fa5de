"""Reading audio into the mono float32 waveform the model expects.

Files are read with soundfile (WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3), mixed down to mono by
averaging channels and resampled with torchaudio's band-limited sinc resampler. A file cut
short or damaged part-way gives the audio before the damage, with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from asr.errors import AudioError
from asr.files import read_error_message

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""The rate every model in the toolkit consumes, in Hz."""

AudioInput = str | os.PathLike | np.ndarray | torch.Tensor

# Frames decoded at a time: what a file damaged part-way loses at most, beyond the damage.
READ_BLOCK_FRAMES = 4096


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


def _read_blocks(sound: soundfile.SoundFile, path: Path) -> np.ndarray:
    """All of ``sound`` as ``(T, channels)`` float32; a file damaged or cut short part-way
    gives the audio before the damage, with a warning (as ffmpeg does)."""
    blocks: list[np.ndarray] = []
    try:
        for block in sound.blocks(READ_BLOCK_FRAMES, dtype="float32", always_2d=True):
            blocks.append(block)
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        if not blocks:
            raise
        decoded = sum(len(b) for b in blocks) / sound.samplerate
        logger.warning("%s: damaged or truncated after %.2f s (%s); using the audio before that", path, decoded, exc)
    if not blocks:
        return np.zeros((0, sound.channels), dtype=np.float32)
    return np.concatenate(blocks)


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    try:
        f = open(path, "rb")  # opened here, so that the OS's reason for a refusal is kept
    except OSError as exc:
        message = read_error_message(
            path, exc, "cannot be opened", missing="no such file", directory="is a directory, not an audio file",
            denied="permission denied: the file cannot be read",
        )  # fmt: skip
        raise AudioError(message) from exc
    try:
        with f, soundfile.SoundFile(f) as sound:
            data, rate = _read_blocks(sound, path), sound.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)  # libsndfile's own words
        raise AudioError(f"{path}: not a readable audio file ({reason})") from exc
    except OSError as exc:  # the disk or the network share failed mid-read
        raise AudioError(f"{path}: reading failed ({exc.strerror or exc})") from exc
    # (T, channels) -> (T,): average the channels.
    return data.mean(axis=1, dtype=np.float32), rate


def validate_waveform(waveform: np.ndarray, name: str, min_samples: int) -> np.ndarray:
    """Return ``(T,)`` ``waveform`` unchanged, or raise :class:`AudioError` naming ``name``."""
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
        audio: a path to an audio file, or a waveform already at ``sample_rate`` as a NumPy
            array or tensor of shape ``(T,)`` (or ``(T, channels)`` for arrays, mixed down).
        sample_rate: the rate to return, in Hz.
        min_samples: the fewest samples accepted (the length of one feature window).

    Returns:
        ``(T,)`` float32 waveform at ``sample_rate``.

    Raises:
        AudioError: the file is missing or not audio, or the audio is empty, shorter than
            ``min_samples`` or holds NaN/Inf. The message names the file.
    """
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    if isinstance(audio, np.ndarray):
        name = f"<array of shape {tuple(audio.shape)}>"
        waveform = audio.astype(np.float32, copy=False)
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=1, dtype=np.float32)
        return validate_waveform(waveform, name, min_samples)
    path = Path(audio)
    waveform, rate = _read_file(path)
    waveform = validate_waveform(waveform, str(path), 1)
    waveform = resample(waveform, rate, sample_rate)
    return validate_waveform(waveform, str(path), min_samples)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds, read from its header only.

    Raises:
        AudioError: the file is missing or not audio.
    """
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc)  # libsndfile's own words
        raise AudioError(f"{path}: not a readable audio file ({reason})") from exc
    return float(info.frames) / float(info.samplerate)
