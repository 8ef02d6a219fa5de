"""``asr dictate``: live transcription from a microphone (or a replayed file) to the terminal.

The partial text of the open segment is redrawn in place on one terminal line; each finalized
segment is printed on its own line (and appended to ``--output`` when given). Ctrl+C, the end
of the input, or the loss of the device stops cleanly: the last segment is flushed first.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from asr.transcript import Segment, Transcript
from streaming.audio_source import DeviceError
from streaming.resample import StreamingResampler
from streaming.stream import Recognizer

logger = logging.getLogger(__name__)

CLEAR_LINE = "\r\x1b[2K"


@dataclass
class DictationReport:
    transcript: Transcript
    overflows: int
    blocks: int
    interrupted: bool  # stopped by Ctrl+C
    device_error: str | None = None  # the device went away mid-dictation: what was said


class Display:
    """Draws the partial on one line and prints finalized segments above it."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live  # redraw partials in place (a terminal); otherwise finalized text only
        self.shown_partial = ""

    def partial(self, text: str) -> None:
        if not self.live or text == self.shown_partial:
            return
        width = shutil.get_terminal_size().columns - 1
        shown = text if len(text) <= width else "…" + text[-(width - 1) :]
        self.out.write(CLEAR_LINE + shown)
        self.out.flush()
        self.shown_partial = text

    def segment(self, segment: Segment) -> None:
        prefix = CLEAR_LINE if self.live else ""
        self.out.write(f"{prefix}{segment.text}\n")
        self.out.flush()
        self.shown_partial = ""


def dictate(
    recognizer: Recognizer,
    source: Iterable[np.ndarray],
    source_rate: int,
    display: Display,
    output: Path | None = None,
) -> DictationReport:
    """Run ``source`` blocks (mono float32 at ``source_rate``) through a stream until it ends or
    Ctrl+C; finalized segments go to ``display`` and, appended, to ``output``."""
    stream = recognizer.create_stream()
    resampler = StreamingResampler(source_rate, recognizer.sample_rate)
    shown = 0
    interrupted = False
    device_error: str | None = None
    sink = open(output, "a", encoding="utf-8") if output else None  # noqa: SIM115 - closed below

    def emit_new_segments() -> None:
        nonlocal shown
        for segment in stream.finalized[shown:]:
            display.segment(segment)
            if sink:
                sink.write(segment.text + "\n")
                sink.flush()
        shown = len(stream.finalized)

    try:
        try:
            for block in source:
                stream.accept_waveform(resampler.accept(block))
                emit_new_segments()
                display.partial(stream.partial)
        except KeyboardInterrupt:
            interrupted = True
        except DeviceError as exc:  # the device went away: keep what was heard
            device_error = str(exc)
            logger.error("%s; finishing the segment under way", exc)
        stream.accept_waveform(resampler.flush())
        transcript = stream.finish()
        emit_new_segments()
    finally:
        if sink:
            sink.close()
    stats = getattr(source, "stats", None)
    overflows = stats.overflows if stats else 0
    if overflows:
        logger.warning("the input overflowed %d times (audio was lost; the machine fell behind)", overflows)
    return DictationReport(transcript, overflows, stats.blocks if stats else 0, interrupted, device_error)


def live_terminal() -> bool:
    return sys.stdout.isatty()
