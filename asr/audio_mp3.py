"""Three things libsndfile's MP3 decoder (libmpg123) leaves to its caller.

**Delay.** An MP3 decodes with silence in front of the audio: the encoder's delay (576 samples
from LAME, the encoder behind libsndfile, ffmpeg, sox and lame itself) and the synthesis
filterbank's delay (529 samples, every decoder). LAME records both, with the padding at the
end, in a Xing/Info tag in the first frame, and libmpg123 trims them when it finds one
("gapless" decoding). A file without that tag (a low-bitrate MP3, whose first frame has no
room for it, or any MP3 written to a pipe, where the encoder cannot go back to fill it in)
decodes 1105 samples late: 69 ms at 16 kHz, every word time shifted by it. :class:`Mp3Start` says how many samples
to drop; the length then exceeds the original's by the encoder's unrecorded padding, less than
one MP3 frame (36 ms at 16 kHz, 26 ms at 44.1 kHz), at the end where it moves no word.

**Frame-aligned reads.** With libsndfile 1.2, a read that ends inside an MP3 frame, or any seek
(which soundfile's ``read()`` does to learn the position), makes libmpg123 decode again from an
earlier frame; at low bitrates the bit reservoir it then needs reaches back further than it
went, and it prints ``part2_3_length (1088) too large for available bit count (760)`` for a
healthy file. Reads whose ends fall on the decoder's frame boundaries print nothing.

**Messages.** What libmpg123 still reports (a stream cut mid-way, damaged frames) it prints with
``fprintf`` on the process's standard error, past Python's ``sys.stderr`` and ``logging``.
:class:`DecoderMessages` catches it by pointing file descriptor 2 at a temporary file around
each call into the decoder, and logs one warning naming the file instead.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# LAME's encoder delay and the MPEG synthesis filterbank's delay (libmpg123's GAPLESS_DELAY).
ENCODER_DELAY = 576
DECODER_DELAY = 529
# How far into a file the first frame is looked for (libmpg123 gives up after 64 KiB of junk).
HEADER_SEARCH_BYTES = 65536
# The decoder's lines kept per file (a long damaged file may print thousands; the count is kept).
MAX_KEPT_LINES = 10

# Layer III bitrates in kbit/s by index, and sample rates by index, per MPEG version.
_BITRATES = {
    "1": (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    "2": (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_TAGS = (b"Xing", b"Info")

# What libmpg123 writes: "[src/libmpg123/layer3.c:INT123_do_layer3():1774] error: ...", and
# "Note: Illegal Audio-MPEG-Header ..." / "Note: Trying to resync..." when it resynchronises.
_DECODER_LINE = re.compile(r"mpg123|^Note: ")
_DECODER_PREFIX = re.compile(r"^\[[^\]]*\]\s*(?:error|warning|note):\s*", re.IGNORECASE)

# File descriptor 2 belongs to the whole process: two threads redirecting it at once would each
# restore the other's temporary file, so every redirection in the process takes this one lock
# (MP3 blocks decoded by several threads of one process are decoded one at a time).
_STDERR_LOCK = threading.Lock()


def _layer3_frame(data: bytes, at: int) -> tuple[int, int, int] | None:
    """``(length in bytes, side information bytes, samples)`` of a Layer III frame header at ``at``."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[at + 1] >> 3) & 3, (data[at + 1] >> 1) & 3
    bitrate_index, rate_index = data[at + 2] >> 4, (data[at + 2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1, mono = version == 3, data[at + 3] >> 6 == 3
    bitrate = _BITRATES["1" if mpeg1 else "2"][bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    padding = (data[at + 2] >> 1) & 1
    length = (144 if mpeg1 else 72) * bitrate // rate + padding
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    return length, side_info, 1152 if mpeg1 else 576


def _first_frame(data: bytes) -> tuple[int, int, int] | None:
    """``(offset, side information bytes, samples)`` of the first Layer III frame (one whose successor
    header follows where its length says), past an ID3v2 tag; None if there is none."""
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
        start = 10 + size + (10 if data[5] & 0x10 else 0)  # header, tag, optional footer
    for at in range(start, min(len(data), start + HEADER_SEARCH_BYTES) - 3):
        frame = _layer3_frame(data, at)
        if frame is not None and (at + frame[0] + 4 > len(data) or _layer3_frame(data, at + frame[0])):
            return at, frame[1], frame[2]
    return None


def maybe_mpeg(head: bytes) -> bool:
    """Whether a file starting with ``head`` may be MPEG audio (an ID3v2 tag or a frame sync
    first, which is what libsndfile looks for): only then can opening it wake libmpg123."""
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


@dataclass(frozen=True)
class Mp3Start:
    """How an MP3 stream starts, as its first frame tells.

    Attributes:
        frame_samples: samples per frame (1152 for MPEG-1 Layer III, 576 for MPEG-2 and 2.5).
        decoder_trims: samples libmpg123 drops from the front itself (the delay a LAME tag
            records, plus :data:`DECODER_DELAY`): where the decoded output starts in the stream.
        untrimmed: samples of delay left in the decoded output, for the caller to drop:
            ``ENCODER_DELAY + DECODER_DELAY`` for a stream without a Xing/Info tag (nothing
            recorded the delay, so LAME's is assumed), else 0.
    """

    frame_samples: int
    decoder_trims: int
    untrimmed: int


def mp3_start(head: bytes) -> Mp3Start | None:
    """How the MP3 whose first bytes are ``head`` starts; None if no Layer III frame is found.

    Args:
        head: the file's first bytes (at least :data:`HEADER_SEARCH_BYTES` of them, or all).
    """
    frame = _first_frame(head)
    if frame is None:
        return None
    at, side_info, frame_samples = frame
    tag = at + 4 + side_info  # the tag sits after the frame header and side information
    if head[tag : tag + 4] not in _TAGS:
        return Mp3Start(frame_samples, 0, ENCODER_DELAY + DECODER_DELAY)
    flags = int.from_bytes(head[tag + 4 : tag + 8], "big")
    # Frame count, byte count, 100-byte seek table and quality follow if their flags are set.
    lame = tag + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    if lame + 24 > len(head) or head[lame] == 0:  # no LAME extension: no delay recorded
        return Mp3Start(frame_samples, 0, 0)
    # 12 bits of encoder delay at byte 21 of the extension (then 12 bits of padding).
    delay = head[lame + 21] << 4 | head[lame + 22] >> 4
    return Mp3Start(frame_samples, delay + DECODER_DELAY, 0)


class DecoderMessages:
    """What C decoders print on file descriptor 2 while reading one file, kept for one warning.

    Use :meth:`captured` around every call into the decoder and :meth:`close` when done with the
    file. Lines that are not the decoder's (another thread's output during the call) are passed
    on to standard error as they come.
    """

    def __init__(self, name: str):
        self.name = name
        self.count = 0  # the decoder's lines so far
        self.lines: list[str] = []  # the first MAX_KEPT_LINES of them, their source prefix cut
        self._spool: int | None = None  # descriptor of the temporary file fd 2 points at

    @contextmanager
    def captured(self) -> Iterator[None]:
        """Point file descriptor 2 at a temporary file for the duration of the block."""
        with _STDERR_LOCK:
            sys.stderr.flush()  # Python's own pending output goes where it was meant to
            if self._spool is None:
                self._spool = _new_spool()
            start = os.lseek(self._spool, 0, os.SEEK_END)
            saved = os.dup(2)
            os.dup2(self._spool, 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                self._sort(start)

    def _sort(self, start: int) -> None:
        size = os.lseek(self._spool, 0, os.SEEK_END)
        if size == start:
            return
        text = os.pread(self._spool, size - start, start).decode("utf-8", "replace")
        for line in text.splitlines(keepends=True):
            if _DECODER_LINE.search(line):
                self.count += 1
                if len(self.lines) < MAX_KEPT_LINES:
                    self.lines.append(_DECODER_PREFIX.sub("", line.strip()))
            else:
                os.write(2, line.encode())

    def close(self) -> None:
        """Log one warning if the decoder said anything, and free the temporary file."""
        if self.count:
            logger.warning(
                "%s: the MP3 decoder met damage and decoded past it (%d message(s); the first: %s)",
                self.name, self.count, self.lines[0],
            )  # fmt: skip
            self.count, self.lines = 0, []
        if self._spool is not None:
            os.close(self._spool)
            self._spool = None


def _new_spool() -> int:
    """A descriptor of its own onto an anonymous temporary file; the caller closes it."""
    with tempfile.TemporaryFile(buffering=0) as f:
        return os.dup(f.fileno())
