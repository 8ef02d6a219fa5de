"""``WS /v1/stream`` through a real ``websockets`` client, against ``streaming.Recognizer``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

import asr
from asr.audio import SAMPLE_RATE, load_audio
from asr.serve.config import ServeConfig
from streaming.endpoint import EndpointConfig
from streaming.resample import StreamingResampler
from streaming.stream import Recognizer, RecognizerConfig
from tests.serve_server import running_server

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402

KEY = "stream-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_STREAMS = 2
MESSAGE_LIMIT = 64 * 1024
PCM16_SCALE = 32767


def speech(shared_data: Path) -> np.ndarray:
    """Two real utterances with a pause between them: at least two segments."""
    first = load_audio(shared_data / "ljspeech" / "wavs" / "LJ001-0003.opus")
    second = load_audio(shared_data / "ljspeech" / "wavs" / "LJ001-0002.opus")
    return np.concatenate([first, np.zeros(SAMPLE_RATE * 2, np.float32), second]).astype(np.float32)


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * PCM16_SCALE).astype("<i2").tobytes()


def client_chunks(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut into the random messages a client with ``seed`` sends."""
    rng = np.random.default_rng(seed)
    pieces, offset = [], 0
    while offset < len(data):
        size = int(rng.integers(1, 8000)) * 2
        pieces.append(data[offset : offset + size])
        offset += size
    return pieces


def reference(
    samples: np.ndarray, rate: int, endpoint: EndpointConfig | None = None, seed: int | None = None
) -> list[dict]:
    """The segments ``streaming.Recognizer`` gives for ``samples`` (int16-rounded, as sent),
    resampled from ``rate`` in the client's chunks (``seed``; None: at once). Resampling in
    other chunks rounds differently, which the int8 network may hear."""
    recognizer = Recognizer(asr.load_model("streaming"), RecognizerConfig(endpoint=endpoint or EndpointConfig()))
    stream = recognizer.create_stream()
    resampler = StreamingResampler(rate, SAMPLE_RATE)
    data = pcm16(samples)
    for piece in [data] if seed is None else client_chunks(data, seed):
        stream.accept_waveform(resampler.accept(np.frombuffer(piece, "<i2").astype(np.float32) / 32768))
    stream.accept_waveform(resampler.flush())
    stream.finish()
    return [{"text": s.text, "start": s.start, "end": s.end} for s in stream.finalized]


async def stream_audio(url: str, samples: np.ndarray, rate: int, seed: int, start: dict | None = None) -> list[dict]:
    """Send ``samples`` in random chunks; the server's messages until it closes."""
    messages = []
    async with connect(f"{url}/v1/stream", additional_headers=AUTH, max_size=None) as ws:
        await ws.send(json.dumps({"sample_rate": rate, "format": "pcm16", **(start or {})}))
        assert json.loads(await ws.recv())["type"] == "ready"

        async def read() -> None:
            async for message in ws:
                messages.append(json.loads(message))

        reader = asyncio.create_task(read())
        for piece in client_chunks(pcm16(samples), seed):
            await ws.send(piece)
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(reader, 120)
    return messages


def finals(messages: list[dict]) -> list[dict]:
    return [{k: m[k] for k in ("text", "start", "end")} for m in messages if m["type"] == "final"]


@pytest.fixture(scope="module")
def server():
    with running_server(ServeConfig(api_key=KEY, max_streams=MAX_STREAMS, max_message_bytes=MESSAGE_LIMIT)) as s:
        yield s


@pytest.mark.parametrize("seed", [0, 1])
def test_stream_gives_what_the_recognizer_gives(server, shared_data, seed: int) -> None:
    audio = speech(shared_data)
    messages = asyncio.run(stream_audio(server.ws_url, audio, SAMPLE_RATE, seed))
    expected = reference(audio, SAMPLE_RATE)
    assert len(expected) >= 2 and finals(messages) == expected
    assert messages[-1] == {"type": "done", "text": " ".join(s["text"] for s in expected), "duration": pytest.approx(
        len(audio) / SAMPLE_RATE, abs=1e-3)}  # fmt: skip
    assert any(m["type"] == "partial" and m["text"] for m in messages)


def test_other_rates_and_endpointing(server, shared_data) -> None:
    rate = 8000
    audio = asr.audio.resample(speech(shared_data), SAMPLE_RATE, rate)
    endpoint = {"silence_after_speech": 0.5, "max_segment": 8.0}
    messages = asyncio.run(stream_audio(server.ws_url, audio, rate, 3, endpoint))
    assert finals(messages) == reference(audio, rate, EndpointConfig(**endpoint), seed=3)


async def _refused(url: str, first, headers=AUTH) -> tuple[int, dict | None]:
    """Open a stream, send ``first`` (a str, bytes or a list of messages); the close code and error."""
    async with connect(f"{url}/v1/stream", additional_headers=headers, max_size=None) as ws:
        error = None
        try:
            for message in first if isinstance(first, list) else [first]:
                await ws.send(message)
            async for message in ws:
                if json.loads(message)["type"] == "error":
                    error = json.loads(message)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, error


START = json.dumps({"sample_rate": SAMPLE_RATE, "format": "pcm16"})


@pytest.mark.parametrize(
    "first, code",
    [
        ("not json", 1008),
        (json.dumps([1, 2]), 1008),
        (json.dumps({"sample_rate": "fast"}), 1008),
        (json.dumps({"sample_rate": 16000, "format": "mp3"}), 1008),
        (json.dumps({"sample_rate": 16000, "max_segment": -1}), 1008),
        (json.dumps({"sample_rate": 16000, "volume": 11}), 1008),
        (b"\x00\x01" * 100, 1008),  # audio before saying what it is
        ([START, b"\x00\x01\x02"], 1007),  # half a sample
        ([json.dumps({"sample_rate": 16000, "format": "float32"}), np.full(100, np.nan, "<f4").tobytes()], 1007),
        ([START, json.dumps({"type": "pause"})], 1008),
        ([START, bytes(MESSAGE_LIMIT * 2)], 1009),
        ("x" * 10_000, 1009),
    ],
)
def test_bad_messages_are_refused_and_the_server_stays_up(server, first, code: int) -> None:
    close_code, error = asyncio.run(_refused(server.ws_url, first))
    assert close_code == code
    assert code == 1009 or error["message"]  # an over-long message is cut off by the protocol itself
    assert server.healthy(AUTH)


def test_no_key_no_stream(server) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(_refused(server.ws_url, START, headers={}))
    assert refused.value.response.status_code == 401
    assert server.healthy(AUTH)


async def _hold_all_slots_then_one_more(url: str) -> tuple[int, dict | None]:
    held = [await connect(f"{url}/v1/stream", additional_headers=AUTH) for _ in range(MAX_STREAMS)]
    for ws in held:
        await ws.send(START)
        await ws.recv()
    try:
        refused = await connect(f"{url}/v1/stream", additional_headers=AUTH)
        error = json.loads(await refused.recv())  # refused before it says anything
        with pytest.raises(websockets.ConnectionClosed):
            await refused.recv()
        return refused.close_code, error
    finally:
        for ws in held:
            await ws.close()


def test_streams_over_the_limit_are_refused_cleanly(server) -> None:
    code, error = asyncio.run(_hold_all_slots_then_one_more(server.ws_url))
    assert code == 1013 and "slots" in error["message"]
    code, _ = asyncio.run(_refused(server.ws_url, [START, json.dumps({"type": "end"})]))
    assert code == 1000  # the slots came back


async def _leave_mid_segment(url: str, audio: np.ndarray) -> list[dict]:
    messages = []
    ws = await connect(f"{url}/v1/stream", additional_headers=AUTH)
    await ws.send(START)
    await ws.recv()
    await ws.send(pcm16(audio[: SAMPLE_RATE * 2]))
    await asyncio.sleep(0.5)
    ws.transport.abort()  # no close frame: the connection just drops
    return messages


def test_a_client_leaving_mid_segment_changes_nothing_for_others(server, shared_data) -> None:
    audio = speech(shared_data)

    async def both() -> list[dict]:
        other = asyncio.create_task(stream_audio(server.ws_url, audio, SAMPLE_RATE, 5))
        await _leave_mid_segment(server.ws_url, audio)
        return await other

    assert finals(asyncio.run(both())) == reference(audio, SAMPLE_RATE)
    assert server.healthy(AUTH)
