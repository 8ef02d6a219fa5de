"""A :class:`Transcript` in the shapes OpenAI's ``/v1/audio/transcriptions`` answers with.

``json`` is ``{"text"}``; ``verbose_json`` adds the task, language, duration, the segments and,
when ``timestamp_granularities[]`` asks for them, the words; ``srt`` and ``vtt`` are
:mod:`asr.formats`' subtitles; ``text`` is the bare text.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from asr.formats import to_srt, to_vtt
from asr.transcript import Transcript

LANGUAGE = "english"
SUBTITLE_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}


def verbose(transcript: Transcript, granularities: tuple[str, ...]) -> dict:
    """OpenAI's ``verbose_json`` object (fields that describe Whisper's sampling left out)."""
    body: dict = {
        "task": "transcribe",
        "language": LANGUAGE,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if "segment" in granularities:
        body["segments"] = [
            {"id": i, "start": s.start, "end": s.end, "text": s.text} for i, s in enumerate(transcript.segments)
        ]
    if "word" in granularities:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]
    return body


def render_response(transcript: Transcript, response_format: str, granularities: tuple[str, ...]) -> Response:
    """The HTTP response for ``response_format`` (one of :data:`asr.serve.uploads.RESPONSE_FORMATS`)."""
    if response_format == "json":
        return JSONResponse({"text": transcript.text})
    if response_format == "verbose_json":
        return JSONResponse(verbose(transcript, granularities))
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "srt":
        return Response(to_srt(transcript), media_type=SUBTITLE_TYPES["srt"])
    if response_format == "vtt":
        return Response(to_vtt(transcript), media_type=SUBTITLE_TYPES["vtt"])
    raise ValueError(f"unknown response format {response_format!r}")
