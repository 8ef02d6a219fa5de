"""``asr dictate``: live transcription from a microphone (or a replayed file) to the terminal.

The partial text of the open segment is redrawn in place on one terminal line; each finalized
segment is printed on its own line (and appended to ``--output`` when given), as its text
(``txt``) or as a JSON Lines record with its start and end (``json``,
:func:`asr.formats.segment_line`). Ctrl+C, the end of the input, or the loss of the device stops
cleanly: the last segment is flushed first.

Stopping is prompt whatever the load. A dictation that falls behind real time drops its oldest
audio instead of queueing it (:mod:`streaming.audio_source`), so at most a couple of seconds
wait. Ctrl+C sets a :class:`~streaming.audio_source.StopRequest` rather than raising wherever the
main thread happens to be (:func:`stop_on_interrupt`): the block under way is finished, what
was captured before the Ctrl+C is recognized for up to :data:`STOP_GRACE_SECONDS`, the rest is
dropped and counted, and the open segment is closed. A second Ctrl+C raises
``KeyboardInterrupt``, and the open segment is still closed.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from asr.formats import segment_line
from asr.threads import torch_threads
from asr.transcript import Segment, Transcript
from streaming.audio_source import DeviceError, StopRequest
from streaming.resample import StreamingResampler
from streaming.stream import Recognizer

logger = logging.getLogger(__name__)

CLEAR_LINE = "\r\x1b[2K"
# After Ctrl+C, audio captured before it is still recognized for this long; what is left then
# is dropped, so that the command ends within a second or two even on a machine that fell behind.
STOP_GRACE_SECONDS = 1.0


@dataclass
class DictationReport:
    transcript: Transcript
    overflows: int
    blocks: int
    interrupted: bool  # stopped by Ctrl+C
    device_error: str | None = None  # the device went away mid-dictation: what was said
    # Audio never recognized: dropped because recognition fell behind real time, or left over
    # when the stop's grace period ran out.
    dropped_seconds: float = 0.0


class Display:
    """Draws the partial on one line and prints finalized segments above it, in ``fmt``
    (:data:`asr.formats.LIVE_FORMATS`); partials are drawn only for ``txt``."""

    def __init__(self, out: TextIO, live: bool, fmt: str = "txt") -> None:
        self.out = out
        self.fmt = fmt
        # Redraw partials in place (a terminal, text); otherwise finalized segments only.
        self.live = live and fmt == "txt"
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
        self.out.write(prefix + segment_line(segment, self.fmt))
        self.out.flush()
        self.shown_partial = ""


@contextlib.contextmanager
def stop_on_interrupt(stop: StopRequest) -> Iterator[StopRequest]:
    """Within the block, Ctrl+C (SIGINT) sets ``stop`` instead of raising ``KeyboardInterrupt``;
    a second one raises it. Installed even where SIGINT was ignored (a job started in the
    background of a script inherits that), because SIGINT is how a dictation is ended. Outside
    the main thread, where no handler can be installed, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def interrupted(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def dictate(
    recognizer: Recognizer,
    source: Iterable[np.ndarray],
    source_rate: int,
    display: Display,
    output: Path | None = None,
    stop: StopRequest | None = None,
) -> DictationReport:
    """Run ``source`` blocks (mono float32 at ``source_rate``) through a stream until it ends,
    ``stop`` is set (give the source the same one) or Ctrl+C; finalized segments go to
    ``display`` and, appended in the display's format, to ``output``."""
    stream = recognizer.create_stream()
    resampler = StreamingResampler(source_rate, recognizer.sample_rate)
    stats = getattr(source, "stats", None)
    shown = 0
    late_seconds = 0.0  # captured before the stop, but not recognized within the grace period
    interrupted = False
    device_error: str | None = None
    sink = open(output, "a", encoding="utf-8") if output else None  # noqa: SIM115 - closed below

    def emit_new_segments() -> None:
        nonlocal shown
        for segment in stream.finalized[shown:]:
            display.segment(segment)
            if sink:
                sink.write(segment_line(segment, display.fmt))
                sink.flush()
        shown = len(stream.finalized)

    try:
        try:
            warned = False
            for block in source:
                if stop is not None and stop.overdue(STOP_GRACE_SECONDS):
                    late_seconds += len(block) / source_rate
                    continue
                with torch_threads(recognizer.config.threads):  # the resampler's convolution too
                    stream.accept_waveform(resampler.accept(block))
                emit_new_segments()
                display.partial(stream.partial)
                if stats and stats.dropped_seconds and not warned:
                    logger.warning("recognition fell behind real time: dropping the oldest audio to catch up")
                    warned = True
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
    return _report(transcript, stats, interrupted or (stop is not None and stop.is_set()), device_error, late_seconds)


def _report(transcript, stats, interrupted: bool, device_error: str | None, late_seconds: float) -> DictationReport:
    overflows = stats.overflows if stats else 0
    if overflows:
        logger.warning("the input overflowed %d times (audio was lost; the machine fell behind)", overflows)
    dropped = (stats.dropped_seconds if stats else 0.0) + late_seconds
    if dropped:
        logger.warning("%.1f s of audio could not be recognized in time and was dropped", dropped)
    return DictationReport(transcript, overflows, stats.blocks if stats else 0, interrupted, device_error, dropped)


def live_terminal() -> bool:
    return sys.stdout.isatty()
