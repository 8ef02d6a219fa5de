"""``WS /v1/stream``: live recognition of audio a client sends as it is spoken.

The protocol, all JSON text messages except the audio:

1. client: ``{"sample_rate": 16000, "format": "pcm16"}`` (or ``"float32"``), optionally with
   the endpointing of ``asr dictate``: ``silence_after_speech``, ``silence_without_speech``,
   ``max_segment`` (seconds); server: ``{"type": "ready", "sample_rate": 16000}``.
2. client: binary frames of little-endian mono samples at its rate, any length up to the
   message limit; server: ``{"type": "partial", "text"}`` when the open segment's text changes,
   ``{"type": "final", "text", "start", "end", "words"}`` for each segment that closes.
3. client: ``{"type": "end"}``; server: the last finals, ``{"type": "done", "text",
   "duration"}``, and closes (1000).

Errors are ``{"type": "error", "message"}`` followed by a close: 1008 for a bad first message,
1007 for a bad audio frame, 1009 for a message over the limit, 1013 when every stream slot is
taken. A client that leaves mid-segment is simply forgotten: its open segment is never sent,
and nothing of it outlives the connection. Each stream is a :class:`streaming.Stream` fed what
:class:`streaming.resample.StreamingResampler` makes of the client's rate, so its segments are
exactly what a :class:`streaming.Recognizer` gives for the same audio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.audio import float_samples
from asr.errors import ASRError
from streaming.endpoint import EndpointConfig
from streaming.resample import StreamingResampler
from streaming.stream import Recognizer, RecognizerConfig, Stream

logger = logging.getLogger(__name__)

FORMATS = {"pcm16": np.dtype("<i2"), "float32": np.dtype("<f4")}
"""Sample formats a client may declare, as little-endian dtypes."""
ENDPOINT_FIELDS = ("silence_after_speech", "silence_without_speech", "max_segment")
MIN_RATE, MAX_RATE = 8_000, 192_000  # telephone to studio rates, in Hz
MAX_START_BYTES = 4096  # the first message is a small JSON object
START_TIMEOUT_SECONDS = 10.0  # a client that never says what it sends gives its slot back
IDLE_TIMEOUT_SECONDS = 120.0
MAX_RECOGNIZERS = 8  # recognizers kept per distinct endpointing (each keeps idle decoders)

CLOSE_NORMAL, CLOSE_BAD_DATA, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_LATER = 1000, 1007, 1008, 1009, 1013


class StreamRefused(Exception):
    """The client broke the protocol; ``code`` is the WebSocket close code to send."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class StreamStart:
    sample_rate: int
    dtype: np.dtype
    endpoint: EndpointConfig


def parse_start(text: str) -> StreamStart:
    """The first message. Raises :class:`StreamRefused` (1008) naming what is wrong."""
    try:
        start = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StreamRefused(f"first message is not JSON ({exc.msg})", CLOSE_POLICY) from None
    if not isinstance(start, dict):
        raise StreamRefused("first message must be a JSON object", CLOSE_POLICY)
    unknown = sorted(set(start) - {"type", "sample_rate", "format", *ENDPOINT_FIELDS})
    rate, fmt = start.get("sample_rate"), start.get("format", "pcm16")
    if unknown:
        raise StreamRefused(f"unknown field(s) in the first message: {', '.join(unknown)}", CLOSE_POLICY)
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise StreamRefused(f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}, got {rate!r}", CLOSE_POLICY)
    if fmt not in FORMATS:
        raise StreamRefused(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", CLOSE_POLICY)
    endpoint = {name: start[name] for name in ENDPOINT_FIELDS if name in start}
    for name, value in endpoint.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < float("inf"):
            raise StreamRefused(f"{name} must be a positive number of seconds, got {value!r}", CLOSE_POLICY)
    return StreamStart(rate, FORMATS[fmt], EndpointConfig(**endpoint))


def frame_samples(data: bytes, dtype: np.dtype) -> np.ndarray:
    """A binary frame as ``(T,)`` float32. Raises :class:`StreamRefused` (1007)."""
    if len(data) % dtype.itemsize:
        raise StreamRefused(f"a frame of {len(data)} bytes is not whole {dtype.itemsize}-byte samples", CLOSE_BAD_DATA)
    samples = float_samples(np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("=")), "<frame>")
    if not np.isfinite(samples).all():
        raise StreamRefused("a frame holds NaN or infinite samples", CLOSE_BAD_DATA)
    return samples


def segment_message(segment) -> dict:
    words = [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence} for w in segment.words]
    return {"type": "final", "text": segment.text, "start": segment.start, "end": segment.end, "words": words}


class StreamHub:
    """The live-stream side of the server: one recognizer per endpointing, and the slot count."""

    def __init__(self, recognizer: Recognizer, max_streams: int, max_message_bytes: int) -> None:
        self.base = recognizer
        self.max_streams = max_streams
        self.max_message_bytes = max_message_bytes
        self.active = 0
        self._recognizers: dict[EndpointConfig, Recognizer] = {recognizer.config.endpoint: recognizer}

    def recognizer(self, endpoint: EndpointConfig) -> Recognizer:
        if endpoint not in self._recognizers:
            if len(self._recognizers) >= MAX_RECOGNIZERS:
                self._recognizers.pop(next(k for k in self._recognizers if k != self.base.config.endpoint))
            config: RecognizerConfig = dataclasses.replace(self.base.config, endpoint=endpoint)
            self._recognizers[endpoint] = Recognizer(self.base.model, config)
        return self._recognizers[endpoint]

    async def serve(self, websocket: WebSocket) -> None:
        """Run one stream to its end; never raises for anything the client does."""
        await websocket.accept()
        if self.active >= self.max_streams:
            await _refuse(websocket, f"all {self.max_streams} stream slots are taken; try again later", CLOSE_TRY_LATER)
            return
        self.active += 1
        session = None
        try:
            start = parse_start(await self._receive_text(websocket, START_TIMEOUT_SECONDS, MAX_START_BYTES))
            session = Session(websocket, self.recognizer(start.endpoint).create_stream(), start)
            await websocket.send_json({"type": "ready", "sample_rate": self.base.sample_rate})
            await self._feed(websocket, session)
        except StreamRefused as exc:
            await _refuse(websocket, str(exc), exc.code)
        except (TimeoutError, WebSocketDisconnect, OSError) as exc:
            logger.info("stream ended without finishing: %s", type(exc).__name__)
        finally:
            self.active -= 1
            if session is not None:
                session.abandon()

    async def _receive_text(self, websocket: WebSocket, timeout: float, limit: int) -> str:
        message = await asyncio.wait_for(websocket.receive(), timeout)
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise StreamRefused("the first message must be JSON text, before any audio", CLOSE_POLICY)
        if len(text) > limit:
            raise StreamRefused(f"the first message is over {limit} bytes", CLOSE_TOO_BIG)
        return text

    async def _feed(self, websocket: WebSocket, session: Session) -> None:
        while True:
            message = await asyncio.wait_for(websocket.receive(), IDLE_TIMEOUT_SECONDS)
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data, text = message.get("bytes"), message.get("text")
            if len(data or text or "") > self.max_message_bytes:
                raise StreamRefused(f"a message is over the limit of {self.max_message_bytes} bytes", CLOSE_TOO_BIG)
            if data is not None:
                await session.accept(frame_samples(data, session.start.dtype))
                continue
            try:
                control = json.loads(text or "")
            except json.JSONDecodeError:
                control = None
            if not isinstance(control, dict) or control.get("type") != "end":
                raise StreamRefused('text messages after the first must be {"type": "end"}', CLOSE_POLICY)
            await session.finish()
            return


async def _refuse(websocket: WebSocket, message: str, code: int) -> None:
    logger.info("stream refused (%d): %s", code, message)
    try:
        await websocket.send_json({"type": "error", "message": message})
        await websocket.close(code)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the client has gone already


class Session:
    """One client's stream: resampling, recognition off the event loop, and what was sent."""

    def __init__(self, websocket: WebSocket, stream: Stream, start: StreamStart) -> None:
        self.websocket = websocket
        self.stream = stream
        self.start = start
        self.resampler = StreamingResampler(start.sample_rate, stream.recognizer.sample_rate)
        self.sent_finals = 0
        self.sent_partial = ""

    async def accept(self, samples: np.ndarray) -> None:
        resampled = self.resampler.accept(samples)
        try:
            await asyncio.to_thread(self.stream.accept_waveform, resampled)
        except ASRError as exc:
            raise StreamRefused(str(exc), CLOSE_BAD_DATA) from exc
        await self._send_new()

    async def finish(self) -> None:
        tail = self.resampler.flush()
        if tail.size:
            await asyncio.to_thread(self.stream.accept_waveform, tail)
        transcript = await asyncio.to_thread(self.stream.finish)
        await self._send_new()
        await self.websocket.send_json({"type": "done", "text": transcript.text, "duration": transcript.duration})
        await self.websocket.close(CLOSE_NORMAL)

    async def _send_new(self) -> None:
        finalized = self.stream.finalized
        for segment in finalized[self.sent_finals :]:
            await self.websocket.send_json(segment_message(segment))
        self.sent_finals = len(finalized)
        partial = self.stream.partial
        if partial != self.sent_partial:
            await self.websocket.send_json({"type": "partial", "text": partial})
            self.sent_partial = partial

    def abandon(self) -> None:
        """Give the stream's decoder back, whatever state the client left it in."""
        if not self.stream.finished:
            self.stream.finish()
