"""Writing a :class:`Transcript` as text, JSON, SubRip (SRT), WebVTT or TSV.

Subtitles are cut from the word timings into cues of readable size, as whisper and the
broadcasters' guidelines do: at most two lines of :attr:`CueConfig.max_line_chars` characters,
at most :attr:`CueConfig.max_duration` seconds, and a new cue at every pause longer than
:attr:`CueConfig.max_gap`. Cue times never go backwards and never overlap.

Several inputs on one stream (``asr transcribe`` printing to stdout) are told apart in each
format's own way (:func:`render_named`): JSON Lines, one object per input naming it; a TSV table
with an ``input`` column; one WebVTT document per input, naming it in a ``NOTE`` comment; one SRT
document per input after a ``==> NAME <==`` line (SubRip has no comments), as ``head`` and
``tail`` separate files. Live dictation writes each finalized segment as it comes
(:func:`segment_line`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from asr.transcript import Segment, Transcript, Word

FORMATS = ("txt", "json", "srt", "vtt", "tsv")
"""Output formats, each written to ``<stem>.<format>``."""

LIVE_FORMATS = ("txt", "json")
"""Formats of live dictation, one finalized segment per line."""

MILLISECONDS_PER_SECOND = 1000


@dataclass(frozen=True)
class CueConfig:
    """How words are grouped into subtitle cues."""

    # 42 characters per line, two lines per cue: the common broadcast limits.
    max_line_chars: int = 42
    max_lines: int = 2
    max_duration: float = 7.0  # seconds
    max_gap: float = 0.8  # seconds of silence that end a cue


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float  # seconds
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def wrap(words: Sequence[str], width: int) -> list[str]:
    """Greedy line filling: as many words per line as fit in ``width`` characters."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _fits(words: Sequence[Word], config: CueConfig) -> bool:
    lines = wrap([w.word for w in words], config.max_line_chars)
    return len(lines) <= config.max_lines and words[-1].end - words[0].start <= config.max_duration


def subtitle_cues(transcript: Transcript, config: CueConfig = CueConfig()) -> list[Cue]:
    """Group the transcript's words into cues; without word times, one cue per segment."""
    groups: list[list[Word]] = []
    for word in transcript.words:
        current = groups[-1] if groups else None
        if current and word.start - current[-1].end <= config.max_gap and _fits([*current, word], config):
            current.append(word)
        else:
            groups.append([word])
    cues: list[Cue] = []
    if groups:
        spans = [(g[0].start, g[-1].end, [w.word for w in g]) for g in groups]
    else:
        spans = [(s.start, s.end, s.text.split()) for s in transcript.segments if s.text]
    previous_end = 0.0
    for start, end, words in spans:
        start = max(start, previous_end)
        end = max(end, start)
        cues.append(Cue(start, end, tuple(wrap(words, config.max_line_chars))))
        previous_end = end
    return cues


def timestamp(seconds: float, decimal_marker: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, ``decimal_marker=","``) or ``HH:MM:SS.mmm`` (WebVTT)."""
    total_ms = max(0, round(seconds * MILLISECONDS_PER_SECOND))
    hours, rest = divmod(total_ms, 3600 * MILLISECONDS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * MILLISECONDS_PER_SECOND)
    secs, ms = divmod(rest, MILLISECONDS_PER_SECOND)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def to_srt(transcript: Transcript, config: CueConfig = CueConfig()) -> str:
    blocks = [
        f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n" + "\n".join(c.lines) + "\n"
        for i, c in enumerate(subtitle_cues(transcript, config), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript, config: CueConfig = CueConfig()) -> str:
    blocks = [
        f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n" + "\n".join(c.lines) + "\n"
        for c in subtitle_cues(transcript, config)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_tsv(transcript: Transcript, config: CueConfig = CueConfig()) -> str:
    """``start``, ``end`` (integer milliseconds) and ``text`` per cue, as whisper writes them."""
    rows = ["start\tend\ttext"]
    for cue in subtitle_cues(transcript, config):
        start, end = (round(t * MILLISECONDS_PER_SECOND) for t in (cue.start, cue.end))
        rows.append(f"{start}\t{end}\t{cue.text}")
    return "\n".join(rows) + "\n"


def render(transcript: Transcript, fmt: str) -> str:
    """The transcript in output format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "txt":
        return transcript.text + "\n"
    if fmt == "json":
        return json.dumps(transcript.to_dict(), indent=2) + "\n"
    if fmt == "srt":
        return to_srt(transcript)
    if fmt == "vtt":
        return to_vtt(transcript)
    if fmt == "tsv":
        return to_tsv(transcript)
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")


def json_line(transcript: Transcript, name: str) -> str:
    """One JSON Lines record: ``{"input": name, ...}`` and the transcript's JSON form."""
    return json.dumps({"input": name, **transcript.to_dict()}) + "\n"


def _one_line(name: str) -> str:
    """``name`` made safe for a one-line header: no line breaks, no cue arrow."""
    return " ".join(name.split()).replace("-->", "->")


def render_named(transcript: Transcript, fmt: str, name: str, first: bool) -> str:
    """The transcript of input ``name`` in format ``fmt``, as one of several on one stream
    (``first``: the stream's first; see the module docstring)."""
    if fmt == "json":
        return json_line(transcript, name)
    if fmt == "txt":
        return f"{name}: {render(transcript, 'txt')}"
    if fmt == "tsv":
        header, *rows = render(transcript, "tsv").splitlines()
        return (f"input\t{header}\n" if first else "") + "".join(f"{_one_line(name)}\t{row}\n" for row in rows)
    separator = "" if first else "\n"
    if fmt == "vtt":
        cues = render(transcript, "vtt").removeprefix("WEBVTT\n\n")
        return f"{separator}WEBVTT\n\nNOTE {_one_line(name)}\n\n{cues}"
    if fmt == "srt":
        return f"{separator}==> {_one_line(name)} <==\n{render(transcript, 'srt')}"
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")


def segment_line(segment: Segment, fmt: str) -> str:
    """A finalized live segment as one line: its text (``txt``) or a JSON Lines record
    ``{"start", "end", "text", "words"}`` (``json``; seconds since the dictation began)."""
    if fmt == "txt":
        return segment.text + "\n"
    if fmt == "json":
        words = [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence} for w in segment.words]
        return json.dumps({"start": segment.start, "end": segment.end, "text": segment.text, "words": words}) + "\n"
    raise ValueError(f"unknown live output format {fmt!r}; choose from {', '.join(LIVE_FORMATS)}")
