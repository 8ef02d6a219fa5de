"""Where live audio comes from: a microphone (PortAudio through sounddevice) or a file replay.

Both yield mono float32 blocks at their own rate; the dictation loop resamples them. The
microphone callback only copies each block into a queue (it runs on PortAudio's thread and must
never block); overflows it reports are counted, never fatal. sounddevice is imported only here,
only when a microphone is opened, so ``import streaming`` works without PortAudio.

A machine that cannot keep up with real time must not queue audio without bound: the text would
fall further and further behind the speaker, and a Ctrl+C would wait for all of it. The queue
holds at most ``max_backlog`` seconds; past that the oldest block is dropped and counted in
:attr:`SourceStats.dropped_seconds` (a realtime file replay drops the same way). A
:class:`StopRequest` (set by Ctrl+C) ends a source: it stops capturing and yields only what it
had already captured.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from asr.audio_decode import open_audio
from asr.errors import ASRError

logger = logging.getLogger(__name__)

PORTAUDIO_PACKAGE = "libportaudio2"
BLOCK_SECONDS = 0.1  # 100 ms blocks: short enough for live partials, long enough to be cheap
# How often a source waiting for audio looks at its StopRequest: a Ctrl+C is seen this soon.
POLL_SECONDS = 0.1
# Audio waiting longer than this to be recognized is dropped, oldest first: the text stays at most
# this far behind the speaker. Room for a hiccup (a first chunk, a busy moment) of a machine that
# keeps up on average.
MAX_BACKLOG_SECONDS = 2.0
# A live device delivers a block every BLOCK_SECONDS; none for this long means it went away
# (unplugged, or its sound server died) even if PortAudio still calls the stream active.
DEVICE_SILENT_SECONDS = 5.0


class DeviceError(ASRError):
    """The audio device cannot be used: PortAudio missing, no such device, or it went away."""


def import_sounddevice() -> ModuleType:
    """sounddevice, or a :class:`DeviceError` naming the system package that provides PortAudio."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DeviceError(
            f"PortAudio is not installed, so no microphone can be opened ({exc}); "
            f"install it with: apt-get install {PORTAUDIO_PACKAGE}"
        ) from exc
    return sounddevice


def list_devices() -> str:
    """The capture devices PortAudio sees, one per line (``index: name (rate Hz, channels)``)."""
    sd = import_sounddevice()
    lines = []
    for index, device in enumerate(sd.query_devices()):
        if device["max_input_channels"] > 0:
            lines.append(
                f"{index}: {device['name']} ({device['default_samplerate']:.0f} Hz, "
                f"{device['max_input_channels']} channels)"
            )
    return "\n".join(lines) if lines else "no capture devices found"


@dataclass
class SourceStats:
    overflows: int = 0  # blocks PortAudio flagged: it lost audio before we saw it
    blocks: int = 0  # blocks yielded
    dropped_seconds: float = 0.0  # audio dropped because recognition fell behind real time


class StopRequest:
    """Asks a live source and the dictation loop to stop; :meth:`set` is safe in a signal
    handler, and the time it was first set is kept (the dictation finishes within a grace
    period of it)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.at: float | None = None  # time.monotonic() when first set

    def set(self) -> None:
        if self.at is None:
            self.at = time.monotonic()
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def overdue(self, grace_seconds: float) -> bool:
        """Whether it was set more than ``grace_seconds`` ago."""
        return self.at is not None and time.monotonic() - self.at > grace_seconds


def _backlog_blocks(max_backlog: float) -> int:
    if not max_backlog > 0:
        raise ValueError(f"max_backlog must be a positive number of seconds, got {max_backlog}")
    return max(1, round(max_backlog / BLOCK_SECONDS))


class Microphone:
    """Blocks from a PortAudio capture device at its native rate, mixed to mono; at most
    ``max_backlog`` seconds wait (see the module docstring). Iterate once."""

    def __init__(
        self, device: int | str | None = None, stop: StopRequest | None = None, max_backlog: float = MAX_BACKLOG_SECONDS
    ) -> None:
        capacity = _backlog_blocks(max_backlog)
        self.sd = import_sounddevice()
        try:
            info = self.sd.query_devices(device, kind="input")
        except (ValueError, self.sd.PortAudioError) as exc:
            raise DeviceError(f"no capture device {device!r}: {exc} (see asr dictate --list-devices)") from exc
        self.device = device
        self.name = info["name"]
        self.sample_rate = int(info["default_samplerate"])
        self.channels = max(1, min(2, int(info["max_input_channels"])))
        self.blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=capacity)
        self.stop = stop or StopRequest()
        self.stats = SourceStats()
        self.stream = None

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        if status.input_overflow:
            self.stats.overflows += 1
        block = indata.mean(axis=1, dtype=np.float32)
        while True:  # never blocks: a full queue gives up its oldest block
            try:
                self.blocks.put_nowait(block)
                return
            except queue.Full:
                try:
                    oldest = self.blocks.get_nowait()
                except queue.Empty:  # the reader took it meanwhile
                    continue
                self.stats.dropped_seconds += len(oldest) / self.sample_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        self._open()
        try:
            yield from self._captured()
        finally:
            self._close()
        while True:  # stopped: what was captured before the stop, no more
            try:
                block = self.blocks.get_nowait()
            except queue.Empty:
                return
            self.stats.blocks += 1
            yield block

    def _open(self) -> None:
        try:
            self.stream = self.sd.InputStream(
                device=self.device, samplerate=self.sample_rate, channels=self.channels, dtype="float32",
                blocksize=int(BLOCK_SECONDS * self.sample_rate), callback=self._callback,
            )  # fmt: skip
            self.stream.start()
        except self.sd.PortAudioError as exc:
            raise DeviceError(f"cannot open capture device {self.name!r}: {exc}") from exc
        logger.info("recording from %s at %d Hz", self.name, self.sample_rate)

    def _captured(self) -> Iterator[np.ndarray]:
        """Blocks as they come, until the stop request; a device gone silent raises."""
        last_block = time.monotonic()
        while not self.stop.is_set():
            try:
                block = self.blocks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                silent = time.monotonic() - last_block
                if self.stop.is_set():  # asked to stop: the device stopping too is no error
                    break
                if not self.stream.active or silent > DEVICE_SILENT_SECONDS:
                    raise DeviceError(
                        f"capture device {self.name!r} stopped delivering audio ({silent:.1f} s without any)"
                    ) from None
                continue
            last_block = time.monotonic()
            self.stats.blocks += 1
            yield block

    def _close(self) -> None:
        """Stop and close the stream; a device that is gone may refuse both, which is fine."""
        for action in (self.stream.stop, self.stream.close):
            try:
                action()
            except self.sd.PortAudioError as exc:
                logger.warning("closing capture device %r: %s", self.name, exc)


class FileSource:
    """Blocks of an audio file at its own rate, optionally paced like a live microphone.

    Paced (``realtime``), it is a microphone that happens to read a file: a block is yielded
    once it has been "spoken", a reader more than ``max_backlog`` seconds behind skips ahead
    (counted in :attr:`SourceStats.dropped_seconds`), and a stop yields only what had been
    spoken by then. Not paced, it yields as fast as it is read and a stop ends it at once.
    """

    def __init__(
        self, path: str | Path, realtime: bool = False, stop: StopRequest | None = None,
        max_backlog: float = MAX_BACKLOG_SECONDS,
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self.max_backlog_blocks = _backlog_blocks(max_backlog)
        with open_audio(self.path) as reader:  # the rate now, and a clear error before any replay
            self.sample_rate = reader.samplerate
        self.realtime = realtime
        self.stop = stop or StopRequest()
        self.stats = SourceStats()

    def __iter__(self) -> Iterator[np.ndarray]:
        block = int(BLOCK_SECONDS * self.sample_rate)
        # Any format asr.audio_decode.open_audio reads (M4A, WebM, ... through FFmpeg),
        # in mono blocks; a block is short only at the real end, whatever the header said.
        with open_audio(self.path) as audio:
            frames = audio.frames if audio.frames is not None else math.inf  # the replay's end, if known
            position = 0  # samples read or skipped
            start = time.monotonic()
            while True:
                if self.realtime:
                    skip = self._wait_until_spoken(start, position, position + block, frames)
                    if skip is None:
                        return
                    position += len(audio.read(skip)) if skip else 0
                if not self.realtime and self.stop.is_set():
                    return
                data = audio.read(block)
                position += len(data)
                if len(data) == 0:
                    return
                self.stats.blocks += 1
                yield data

    def _wait_until_spoken(self, start: float, position: int, end: int, frames: float) -> int | None:
        """Wait until the file's first ``end`` samples (of ``frames``) have been spoken (replayed
        from ``start``); the samples after ``position`` that a reader this late could no longer
        hold are to be skipped: how many, or None once stopped before the wait ended."""
        capacity = self.max_backlog_blocks * round(BLOCK_SECONDS * self.sample_rate)
        end = min(end, frames)
        skip = 0
        while True:
            now = self.stop.at if self.stop.is_set() else time.monotonic()
            spoken = min(round((now - start) * self.sample_rate), frames)
            late = spoken - capacity - (position + skip)
            if late > 0:  # a microphone's queue would have dropped these
                skip += late
                self.stats.dropped_seconds += late / self.sample_rate
                end = min(end + late, frames)
            if spoken >= end:
                return int(skip)
            if self.stop.is_set():
                return None
            time.sleep(min(POLL_SECONDS, (end - spoken) / self.sample_rate))
