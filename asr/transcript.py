"""The result of transcribing one piece of audio."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float  # seconds
    confidence: float  # 0..1


@dataclass(frozen=True)
class Alternative:
    """One of the n best hypotheses of a segment, with its decoder score (higher is better)."""

    text: str
    score: float


@dataclass(frozen=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    # The n best hypotheses, best first, when more than one was asked for.
    nbest: tuple[Alternative, ...] = ()


@dataclass(frozen=True)
class Transcript:
    text: str
    duration: float  # seconds of audio
    words: tuple[Word, ...] = ()
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    # Why this audio could not be transcribed (the message names it), in the results of
    # Model.transcribe_batch, which goes on past it; None for every audio that was transcribed.
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Transcript:
        """The result for an audio that could not be read or used: no text, and ``error``."""
        return cls(text="", duration=0.0, error=error)

    @classmethod
    def from_segments(cls, segments: Sequence[Segment], duration: float) -> Transcript:
        """The transcript of ``duration`` seconds of audio made of ``segments``, in order."""
        return cls(
            text=" ".join(s.text for s in segments),
            duration=duration,
            words=tuple(w for s in segments for w in s.words),
            segments=tuple(segments),
        )

    def to_dict(self) -> dict:
        """The JSON form written by ``asr transcribe --output-format json``."""
        return {
            "text": self.text,
            "duration": round(self.duration, 3),
            "words": [asdict(w) for w in self.words],
            "segments": [
                {"text": s.text, "start": s.start, "end": s.end, "words": [asdict(w) for w in s.words]}
                | ({"nbest": [asdict(a) for a in s.nbest]} if s.nbest else {})
                for s in self.segments
            ],
        } | ({"error": self.error} if self.error is not None else {})
