"""Uploaded audio and form fields, checked before anything reaches the model.

An upload is decoded strictly: where ``asr transcribe`` keeps the audio before damage with a
warning, the server answers 400, so that a client never gets the text of half a file as if it
were the whole. The bytes go through :func:`asr.audio_decode.open_audio`, which spools them to
a temporary file (deleted on close) for decoders that seek; nothing is written anywhere else.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

from asr.api import TranscribeOptions
from asr.audio import resample, validate_waveform
from asr.audio_decode import READ_BLOCK_FRAMES, DecodeError, open_audio
from asr.decoding.registry import DECODERS
from asr.errors import AudioError, ConfigError

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
"""OpenAI's ``response_format`` values."""
GRANULARITIES = ("word", "segment")
"""OpenAI's ``timestamp_granularities[]`` values."""
# The bundled models speak English; OpenAI's clients send ISO-639-1 codes.
ENGLISH = ("en", "english")
# Names any OpenAI client may send for "the server's transcription model".
OPENAI_MODEL_ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")

RIFF_HEADER = struct.Struct("<4sI4s")
CHUNK_HEADER = struct.Struct("<4sI")


class UploadError(ValueError):
    """A request the server refuses with 400; the message says why."""


def _wav_shortfall(data: bytes) -> int:
    """Bytes a RIFF/WAVE file's ``data`` chunk declares beyond the end of ``data`` (0 if whole or
    not a WAV): libsndfile reads a cut-short WAV without complaint, so the header is checked."""
    if len(data) < RIFF_HEADER.size:
        return 0
    riff, _, wave = RIFF_HEADER.unpack_from(data)
    if riff != b"RIFF" or wave != b"WAVE":
        return 0
    offset = RIFF_HEADER.size
    while offset + CHUNK_HEADER.size <= len(data):
        chunk, size = CHUNK_HEADER.unpack_from(data, offset)
        offset += CHUNK_HEADER.size
        if chunk == b"data":
            return max(0, offset + size - len(data))
        offset += size + (size & 1)  # chunks are padded to even sizes
    return 0


def decode_upload(data: bytes, filename: str, sample_rate: int, min_samples: int) -> np.ndarray:
    """The ``(T,)`` float32 waveform at ``sample_rate`` of an uploaded file's bytes.

    Raises:
        UploadError: empty, not audio, truncated or damaged part-way, silent of samples, or
            shorter than ``min_samples``; the message names ``filename``.
    """
    name = filename or "upload"
    if not data:
        raise UploadError(f"{name}: the file is empty")
    missing = _wav_shortfall(data)
    if missing:
        raise UploadError(f"{name}: truncated WAV: its header declares {missing} more bytes of audio than were sent")
    try:
        with open_audio(io.BytesIO(data), name) as reader:
            blocks = []
            while len(block := reader.read(READ_BLOCK_FRAMES)):
                blocks.append(block)
            rate = reader.samplerate
        waveform = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
        waveform = validate_waveform(waveform, name, 1)
        return validate_waveform(resample(waveform, rate, sample_rate), name, min_samples)
    except DecodeError as exc:
        raise UploadError(f"{name}: damaged or truncated audio ({exc.reason})") from exc
    except AudioError as exc:
        raise UploadError(str(exc)) from exc


@dataclass(frozen=True)
class TranscriptionForm:
    """The fields of a ``POST /v1/audio/transcriptions`` that shape the answer."""

    response_format: str
    granularities: tuple[str, ...]
    options: TranscribeOptions


def _number(fields: dict[str, str], name: str, kind: type, minimum: float | None = None):
    text = fields.get(name)
    if text is None or text == "":
        return None
    try:
        value = kind(text)
    except ValueError:
        raise UploadError(f"{name}: {text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not np.isfinite(value) or (minimum is not None and value < minimum):
        raise UploadError(
            f"{name}: {text!r} is out of range" + (f" (at least {minimum})" if minimum is not None else "")
        )
    return value


def _flag(fields: dict[str, str], name: str) -> bool | None:
    text = fields.get(name)
    if text is None or text == "":
        return None
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise UploadError(f"{name}: {text!r} is not true or false")


def _decode_fields(fields: dict[str, str]) -> dict:
    """The toolkit's own decoding fields as :class:`TranscribeOptions` keywords. A client names
    no LM or lexicon path: it may only turn the model's own LM off or reweight it."""
    keywords: dict = {}
    decoder = fields.get("decoder") or None
    if decoder is not None and decoder not in DECODERS:
        raise UploadError(f"decoder: {decoder!r} is not one of {', '.join(DECODERS)}")
    for name, kind, minimum in (
        ("beam_size", int, 1), ("beam_threshold", float, 0.0), ("nbest", int, 1),
        ("lm_weight", float, None), ("word_score", float, None),
    ):  # fmt: skip
        value = _number(fields, name, kind, minimum)
        if value is not None:
            keywords[name] = value
    use_lm = _flag(fields, "use_lm")
    if use_lm is not None:
        keywords["use_lm"] = use_lm
    if keywords and decoder is None:  # as on the command line: a beam field implies beam search
        decoder = next(n for n, entry in DECODERS.items() if entry.uses_beam)
    if keywords and not DECODERS[decoder].uses_beam:
        raise UploadError(f"{', '.join(sorted(keywords))}: beam search fields, but decoder {decoder} searches no beam")
    return keywords | ({"decoder": decoder} if decoder else {})


def parse_form(fields: dict[str, str], granularities: list[str], served_models: tuple[str, ...]) -> TranscriptionForm:
    """Check the form's fields (OpenAI's and the toolkit's own).

    Raises:
        UploadError: an unknown model, format, granularity, language or decoder field.
    """
    model = fields.get("model") or ""
    if model not in served_models and model not in OPENAI_MODEL_ALIASES:
        raise UploadError(f"model: {model!r} is not served here; models: {', '.join(served_models)}")
    response_format = fields.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise UploadError(f"response_format: {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}")
    language = (fields.get("language") or "en").lower()
    if language not in ENGLISH:
        raise UploadError(f"language: {language!r} is not supported; the models here recognise English (en)")
    unknown = sorted(set(granularities) - set(GRANULARITIES))
    if unknown:
        raise UploadError(f"timestamp_granularities[]: {', '.join(unknown)} not one of {', '.join(GRANULARITIES)}")
    if granularities and response_format != "verbose_json":
        raise UploadError("timestamp_granularities[] needs response_format verbose_json (as OpenAI's API does)")
    word_times = "word" in granularities or response_format in ("srt", "vtt")
    try:
        options = TranscribeOptions(word_timestamps=word_times, **_decode_fields(fields))
    except ConfigError as exc:
        raise UploadError(str(exc)) from exc
    return TranscriptionForm(response_format, tuple(granularities) or ("segment",), options)
