"""Where live audio comes from: a microphone (PortAudio through sounddevice) or a file replay.

Both yield mono float32 blocks at their own rate; the dictation loop resamples them. The
microphone callback only copies each block into a queue (it runs on PortAudio's thread and must
never block); overflows it reports are counted, never fatal. sounddevice is imported only here,
only when a microphone is opened, so ``import streaming`` works without PortAudio.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile

from asr.errors import ASRError, AudioError

logger = logging.getLogger(__name__)

PORTAUDIO_PACKAGE = "libportaudio2"
BLOCK_SECONDS = 0.1  # 100 ms blocks: short enough for live partials, long enough to be cheap
QUEUE_TIMEOUT_SECONDS = 0.5
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
    overflows: int = 0
    blocks: int = 0


class Microphone:
    """Blocks from a PortAudio capture device at its native rate, mixed to mono."""

    def __init__(self, device: int | str | None = None) -> None:
        self.sd = import_sounddevice()
        try:
            info = self.sd.query_devices(device, kind="input")
        except (ValueError, self.sd.PortAudioError) as exc:
            raise DeviceError(f"no capture device {device!r}: {exc} (see asr dictate --list-devices)") from exc
        self.device = device
        self.name = info["name"]
        self.sample_rate = int(info["default_samplerate"])
        self.channels = max(1, min(2, int(info["max_input_channels"])))
        self.blocks: queue.Queue[np.ndarray] = queue.Queue()
        self.stats = SourceStats()
        self.stream = None

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        if status.input_overflow:
            self.stats.overflows += 1
        self.blocks.put(indata.mean(axis=1, dtype=np.float32))

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            self.stream = self.sd.InputStream(
                device=self.device, samplerate=self.sample_rate, channels=self.channels, dtype="float32",
                blocksize=int(BLOCK_SECONDS * self.sample_rate), callback=self._callback,
            )  # fmt: skip
            self.stream.start()
        except self.sd.PortAudioError as exc:
            raise DeviceError(f"cannot open capture device {self.name!r}: {exc}") from exc
        logger.info("recording from %s at %d Hz", self.name, self.sample_rate)
        last_block = time.monotonic()
        try:
            while True:
                try:
                    block = self.blocks.get(timeout=QUEUE_TIMEOUT_SECONDS)
                except queue.Empty:
                    silent = time.monotonic() - last_block
                    if not self.stream.active or silent > DEVICE_SILENT_SECONDS:
                        raise DeviceError(
                            f"capture device {self.name!r} stopped delivering audio ({silent:.1f} s without any)"
                        ) from None
                    continue
                last_block = time.monotonic()
                self.stats.blocks += 1
                yield block
        finally:
            self._close()

    def _close(self) -> None:
        """Stop and close the stream; a device that is gone may refuse both, which is fine."""
        for action in (self.stream.stop, self.stream.close):
            try:
                action()
            except self.sd.PortAudioError as exc:
                logger.warning("closing capture device %r: %s", self.name, exc)


class FileSource:
    """Blocks of an audio file at its own rate, optionally paced like a live microphone."""

    def __init__(self, path: str | Path, realtime: bool = False) -> None:
        self.path = Path(path)
        try:
            info = soundfile.info(str(self.path))
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(f"{self.path}: not a readable audio file ({exc})") from exc
        self.sample_rate = int(info.samplerate)
        self.realtime = realtime
        self.stats = SourceStats()

    def __iter__(self) -> Iterator[np.ndarray]:
        block = int(BLOCK_SECONDS * self.sample_rate)
        start = time.monotonic()
        played = 0
        for data in soundfile.blocks(str(self.path), blocksize=block, dtype="float32", always_2d=True):
            played += len(data)
            if self.realtime:  # a microphone delivers a block once it has been spoken
                delay = start + played / self.sample_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.stats.blocks += 1
            yield data.mean(axis=1, dtype=np.float32)
