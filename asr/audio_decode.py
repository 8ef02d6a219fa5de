"""Decoding audio files block by block: libsndfile first, FFmpeg (PyAV) for everything else.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis, OGG/Opus and MP3 exactly and fast; it stays
the first choice. What it cannot open (M4A/AAC, MP4 and MOV audio tracks, WebM/Opus, Matroska,
WMA, AC-3, ...) is opened with PyAV, whose wheels carry FFmpeg. Both give the same
:class:`AudioReader`: mono float32 blocks at the file's own rate, so that long files never need
to be in memory whole.

Alignment: libsndfile trims MP3 delay where the file records it, and :mod:`asr.audio_mp3` trims
it where it does not. FFmpeg trims AAC priming and Opus pre-skip where the container records
them (an MP4/MOV edit list, WebM's codec delay, Ogg's pre-skip); the end of an MP4/MOV track is
cut where its recorded duration says. What records no priming keeps it in front: a raw ADTS
``.aac`` file or an MP4 without an edit list (fragmented, written to a pipe) starts late by
the encoder's priming (1024 samples from FFmpeg's AAC encoder). FFmpeg's WMA decoder starts one
frame early (512 samples at 16 kHz) on what FFmpeg's WMA encoder writes.

Standard input (``-``) and other streams are copied block by block to a temporary file first
(deleted when the reader closes): decoders need to seek, and a pipe cannot.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from asr.audio_mp3 import HEADER_SEARCH_BYTES, DecoderMessages, maybe_mpeg, mp3_start
from asr.errors import AudioError
from asr.files import read_error_message

logger = logging.getLogger(__name__)

STDIN = "-"
"""The name that stands for standard input."""
STDIN_NAME = "<stdin>"
"""How standard input is named in messages."""
STREAM_NAME = "<stream>"
"""How another stream is named in messages, unless given a name."""

# Frames decoded at a time: what a file damaged part-way loses at most, beyond the damage.
READ_BLOCK_FRAMES = 4096
# libsndfile's frame count for a file whose header does not record its length.
SF_COUNT_MAX = 2**63 - 1
# Bytes copied at a time from a pipe into the temporary file.
SPOOL_BYTES = 1 << 20
# Decoded audio past an MP4/MOV track's recorded end that is taken for the encoder's padding and
# dropped (AAC pads less than two 1024-sample frames); more means the recorded end is wrong.
MAX_END_PADDING_SECONDS = 0.25


class DecodeError(AudioError):
    """The decoder failed part-way through a file; ``reason`` is the decoder's own words."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: not a readable audio file ({reason})")
        self.reason = reason


class UnknownLength(RuntimeError):
    """libsndfile opened a file whose header does not say how long it is."""


class AudioReader(ABC):
    """An open audio file read in blocks; a context manager that closes the file.

    Attributes:
        name: how the file is named in messages.
        samplerate: the file's rate in Hz.
        channels: the file's channels (blocks are mixed down to mono).
        frames: frames in the file as its header gives them (exact for what libsndfile reads,
            except an MP3 without a Xing tag; an estimate from the container for the rest), or
            None if the header does not say. Reading goes on to the real end either way.
    """

    name: str
    samplerate: int
    channels: int
    frames: int | None

    def __init__(self) -> None:
        self._pending: list[np.ndarray] = []  # decoded blocks not yet returned, in order
        self._pending_frames = 0
        self._ended = False

    @abstractmethod
    def _decode(self) -> np.ndarray | None:
        """The next decoded ``(n,)`` float32 mono block (any n), or None at the end."""

    def read(self, frames: int) -> np.ndarray:
        """The next ``frames`` samples as ``(n,)`` float32, the channels averaged; ``n < frames``
        only at the end of the file. Raises :class:`DecodeError` if the decoder fails."""
        while self._pending_frames < frames and not self._ended:
            block = self._decode()
            if block is None:
                self._ended = True
            elif len(block):
                self._pending.append(block)
                self._pending_frames += len(block)
        data = np.concatenate(self._pending) if self._pending else np.zeros(0, dtype=np.float32)
        out, rest = data[:frames], data[frames:]
        self._pending, self._pending_frames = ([rest] if len(rest) else []), len(rest)
        return out

    @abstractmethod
    def close(self) -> None:
        """Close the file; a reader closed twice stays closed."""

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class SoundfileReader(AudioReader):
    """What libsndfile reads; an MP3 read in whole frames, its delay trimmed and libmpg123's
    messages caught (see :mod:`asr.audio_mp3`)."""

    def __init__(self, file: BinaryIO, name: str):
        super().__init__()
        self.name, self._file = name, file
        self._messages = DecoderMessages(name)
        head = os.pread(file.fileno(), HEADER_SEARCH_BYTES, 0)  # leaves the file's position alone
        try:
            if maybe_mpeg(head):
                with self._messages.captured():
                    self._sound = soundfile.SoundFile(file)
            else:
                self._sound = soundfile.SoundFile(file)
        except BaseException:
            self._messages.close()
            raise
        self.samplerate, self.channels = self._sound.samplerate, self._sound.channels
        if self._sound.frames >= SF_COUNT_MAX and self._sound.format != "MP3":
            self._sound.close()  # a FLAC written to a pipe: libsndfile fails at its end; FFmpeg does not
            self._messages.close()
            raise UnknownLength("its header does not record its length")
        start = mp3_start(head) if self._sound.format == "MP3" else None
        self._mp3 = start is not None
        # Where the decoder is in the stream, in samples, and the frame length reads end on.
        self._position = start.decoder_trims if start else 0
        self._frame = start.frame_samples if start else 1
        self._skip = min(start.untrimmed, self._sound.frames) if start else 0
        self.frames = self._sound.frames - self._skip

    def _decode(self) -> np.ndarray | None:
        size = READ_BLOCK_FRAMES - (self._position + READ_BLOCK_FRAMES) % self._frame  # ends on a frame
        if not self._mp3:  # the length is exact: reading past it fails for a WAV written to a pipe
            size = min(size, self._sound.frames - self._position)
            if size <= 0:
                return None
        # Into a buffer of our own: given none, soundfile's read() asks for the position first
        # (a seek) and stops at the header's length, only an estimate for an MP3 without a tag.
        out = np.empty((size, self.channels), dtype=np.float32)  # (n, channels)
        try:
            if self._mp3:
                with self._messages.captured():
                    block = self._sound.read(out=out)
            else:
                block = self._sound.read(out=out)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise DecodeError(self.name, _reason(exc)) from exc
        self._position += len(block)
        if not len(block):
            return None
        # (n, channels) -> (n,): average the channels; then drop what is left of the delay.
        mono = block.mean(axis=1, dtype=np.float32)[self._skip :]
        self._skip = max(0, self._skip - len(block))
        return mono

    def close(self) -> None:
        if not self._sound.closed:
            self._sound.close()
            self._file.close()
        self._messages.close()


class AVReader(AudioReader):
    """The best audio stream of anything FFmpeg opens, through PyAV."""

    def __init__(self, file: BinaryIO, name: str):
        import av  # imported here: only files libsndfile cannot read pay for loading FFmpeg

        super().__init__()
        self.name, self._file = name, file
        # FFmpeg opens the file by its path ("file:" so that no part of it is taken for another
        # protocol): given a Python file object, PyAV prints the tracebacks of failed seeks.
        self._container = av.open(f"file:{file.name}", mode="r")
        try:
            self._stream = stream = _audio_stream(self._container, name)
        except DecodeError:
            self._container.close()
            raise
        self.samplerate, self.channels = stream.codec_context.sample_rate, stream.codec_context.channels
        self.frames = _frames_from_header(self._container, stream, self.samplerate)
        # The recorded end of an MP4/MOV track (its edit list's duration), in samples.
        mov = self._container.format.name.startswith("mov")
        self._blocks = self._decoded_blocks(self.frames if mov and stream.duration else None)

    def _decode(self) -> np.ndarray | None:
        import av

        try:
            return next(self._blocks, None)
        except (av.error.FFmpegError, ValueError) as exc:
            raise DecodeError(self.name, _reason(exc)) from exc

    def _decoded_blocks(self, end: int | None) -> Iterator[np.ndarray]:
        """Mono blocks in order; what lies past ``end`` (samples) is dropped if it is short
        enough to be the encoder's padding."""
        emitted, tail = 0, []
        padding_limit = int(MAX_END_PADDING_SECONDS * self.samplerate)
        for packet in self._container.demux(self._stream):  # ends with a packet that flushes
            for frame in packet.decode():
                if frame.sample_rate != self.samplerate:
                    raise ValueError(f"the sample rate changes from {self.samplerate} to {frame.sample_rate} Hz")
                block = _mono(frame)
                if end is not None and emitted + len(block) > end:
                    keep = max(0, end - emitted)
                    tail.append(block[keep:])
                    block = block[:keep]
                    if sum(len(t) for t in tail) > padding_limit:  # not padding: the end was wrong
                        block, tail, end = np.concatenate([block, *tail]), [], None
                if len(block):
                    emitted += len(block)
                    yield block

    def close(self) -> None:
        self._container.close()
        self._file.close()


def _audio_stream(container, name: str):
    """The best audio stream of ``container`` (the file ``name``) that FFmpeg can decode.

    Raises:
        DecodeError: none, no decoder for it (a damaged header can name a codec that does not
            exist: PyAV then gives the stream no codec context), or no rate or channels.
    """
    stream = container.streams.best("audio")
    if stream is None:
        raise DecodeError(name, "it has no audio track")
    codec = stream.codec_context
    if codec is None:
        raise DecodeError(name, "FFmpeg has no decoder for its audio")
    if not codec.sample_rate or codec.sample_rate < 0 or not codec.channels or codec.channels < 0:
        raise DecodeError(name, f"its audio has {codec.sample_rate} Hz and {codec.channels} channels")
    return stream


def _frames_from_header(container, stream, rate: int) -> int | None:
    """Frames of ``stream`` as the container records them (stream, then container duration)."""
    if stream.duration and stream.time_base:
        return round(stream.duration * stream.time_base * rate)
    if container.duration:
        return round(container.duration * rate / 1_000_000)  # AV_TIME_BASE: microseconds
    return None


def _mono(frame) -> np.ndarray:
    """An ``av.AudioFrame`` as ``(n,)`` float32 in [-1, 1], the channels averaged."""
    data = frame.to_ndarray()  # planar: (channels, n); packed: (1, n * channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, frame.layout.nb_channels).T  # (n * channels,) -> (channels, n)
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128) / 128
    elif np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    return data.mean(axis=0, dtype=np.float32)


def _reason(exc: Exception) -> str:
    """A decoder's own words for ``exc`` (libsndfile's error string, FFmpeg's without the error
    number and file name), without a trailing full stop."""
    words = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc)
    return str(words).rstrip(".")


def _open_path(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")  # opened here, so that the OS's reason for a refusal is kept
    except OSError as exc:
        message = read_error_message(
            path, exc, "cannot be opened", missing="no such file", directory="is a directory, not an audio file",
            denied="permission denied: the file cannot be read",
        )  # fmt: skip
        raise AudioError(message) from exc


def spool(stream: BinaryIO, name: str) -> BinaryIO:
    """``stream`` (a pipe, standard input, a socket) copied into a temporary file, block by
    block, and rewound; the file is deleted when closed. Raises :class:`AudioError` for a
    terminal or an empty stream."""
    if stream.isatty():
        raise AudioError(f"{name}: is a terminal, not audio; pipe audio into it (ffmpeg -i IN -f wav - | ...)")
    copy = tempfile.NamedTemporaryFile(prefix="asr-stdin-")  # a path, for FFmpeg
    try:
        shutil.copyfileobj(stream, copy, SPOOL_BYTES)
    except OSError as exc:
        copy.close()
        raise AudioError(f"{name}: reading failed ({exc.strerror or exc})") from exc
    if copy.tell() == 0:
        copy.close()
        raise AudioError(f"{name}: not a readable audio file (nothing came in: the stream is empty)")
    copy.seek(0)
    return copy


def open_audio(source: str | os.PathLike | BinaryIO, name: str | None = None) -> AudioReader:
    """Open an audio file for reading in blocks.

    Args:
        source: a path; ``"-"`` for standard input; or a binary stream (read to its end first).
            A file literally named ``-`` is ``./-``.
        name: how messages name the file (default: the path, ``<stdin>`` or ``<stream>``).

    Returns:
        An :class:`AudioReader`, to be closed (it is a context manager).

    Raises:
        AudioError: the file is missing, unreadable, or neither libsndfile nor FFmpeg decodes it.
            The message is one line that names the file.
    """
    if hasattr(source, "read"):
        name = name or STREAM_NAME
        file = spool(source, name)
    elif os.fspath(source) == STDIN:
        name = name or STDIN_NAME
        file = spool(sys.stdin.buffer, name)
    else:
        name = name or str(Path(source))
        file = _open_path(Path(source))
    try:
        return _decoder(file, name)
    except BaseException:
        file.close()
        raise


def _decoder(file: BinaryIO, name: str) -> AudioReader:
    try:
        return SoundfileReader(file, name)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        libsndfile = _reason(exc)
    except OSError as exc:  # the disk or the network share failed mid-read
        raise AudioError(f"{name}: reading failed ({exc.strerror or exc})") from exc
    import av

    try:
        return AVReader(file, name)
    except DecodeError:
        raise
    except (av.error.FFmpegError, ValueError, TypeError) as exc:
        raise AudioError(
            f"{name}: not a readable audio file (libsndfile: {libsndfile}; FFmpeg: {_reason(exc)})"
        ) from exc
    except OSError as exc:
        raise AudioError(f"{name}: reading failed ({exc.strerror or exc})") from exc


def read_all(reader: AudioReader) -> np.ndarray:
    """The rest of ``reader`` as ``(T,)`` float32; a file damaged or cut short part-way gives the
    audio before the damage, with a warning (as ffmpeg does)."""
    blocks: list[np.ndarray] = []
    while True:
        try:
            block = reader.read(READ_BLOCK_FRAMES)
        except DecodeError as exc:
            if not blocks:
                raise
            decoded = sum(len(b) for b in blocks) / reader.samplerate
            logger.warning(
                "%s: damaged or truncated after %.2f s (%s); using the audio before that", reader.name, decoded,
                exc.reason,
            )  # fmt: skip
            break
        except OSError as exc:
            raise AudioError(f"{reader.name}: reading failed ({exc.strerror or exc})") from exc
        if len(block):
            blocks.append(block)
        if len(block) < READ_BLOCK_FRAMES:
            break
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
