"""``asr serve``'s file endpoint through real clients: OpenAI's own package and raw HTTP."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import asr
from asr.errors import ConfigError
from asr.serve.config import ServeConfig
from tests.serve_server import running_server

openai = pytest.importorskip("openai")

SAMPLE = Path(asr.__file__).parent / "samples" / "sample.wav"
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
UPLOAD_LIMIT_MB = 1.0


def second_file(shared_data: Path) -> Path:
    return shared_data / "ljspeech" / "wavs" / "LJ001-0003.opus"


@pytest.fixture(scope="module")
def server():
    with running_server(ServeConfig(api_key=KEY, max_upload_mb=UPLOAD_LIMIT_MB)) as running:
        yield running


@pytest.fixture(scope="module")
def offline():
    return asr.load_model("default")


def post(server, data: dict | None = None, files=None, headers=AUTH, **kwargs) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/audio/transcriptions", data=data or {"model": "default"}, files=files, headers=headers,
        timeout=60, **kwargs,
    )  # fmt: skip


def sample_file():
    return {"file": ("sample.wav", SAMPLE.read_bytes(), "audio/wav")}


def test_health_and_models(server) -> None:
    assert server.healthy(AUTH)
    models = httpx.get(f"{server.url}/v1/models", headers=AUTH).json()
    assert [m["id"] for m in models["data"]] == ["default", "streaming"]


def test_openai_client_gets_the_text_of_transcribe(server, offline, shared_data) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    for path in (SAMPLE, second_file(shared_data)):
        expected = offline.transcribe(path).text
        with path.open("rb") as audio:
            result = client.audio.transcriptions.create(model="default", file=audio)
        assert result.text == expected and expected
    with SAMPLE.open("rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert text.strip() == offline.transcribe(SAMPLE).text


def test_verbose_json_words_and_segments(server, offline) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    with SAMPLE.open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="default", file=audio, response_format="verbose_json", timestamp_granularities=["word", "segment"],
            language="en",
        )  # fmt: skip
    expected = offline.transcribe(SAMPLE, word_timestamps=True)
    assert result.text == expected.text
    assert [w.word for w in result.words] == [w.word for w in expected.words]
    assert [(w.start, w.end) for w in result.words] == [(w.start, w.end) for w in expected.words]
    assert result.segments[0].start == 0.0 and result.duration == pytest.approx(expected.duration, abs=1e-3)


@pytest.mark.parametrize("fmt, head", [("srt", "1\n00:00:"), ("vtt", "WEBVTT\n\n00:00:")])
def test_subtitles(server, fmt: str, head: str) -> None:
    response = post(server, {"model": "default", "response_format": fmt}, sample_file())
    assert response.status_code == 200 and response.text.startswith(head)


def test_beam_fields_are_the_library_options(server, offline) -> None:
    response = post(server, {"model": "default", "decoder": "beam", "beam_size": "4", "use_lm": "false"}, sample_file())
    assert response.status_code == 200
    assert response.json()["text"] == offline.transcribe(SAMPLE, decoder="beam", beam_size=4, use_lm=False).text


def test_upload_over_the_limit_gets_413(server) -> None:
    big = b"RIFF" + bytes(int(UPLOAD_LIMIT_MB * (1 << 20)) + 1)
    response = post(server, files={"file": ("big.wav", big, "audio/wav")})
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(int(UPLOAD_LIMIT_MB * 4) + 2):
            yield bytes(1 << 18)

    response = httpx.post(
        f"{server.url}/v1/audio/transcriptions", content=chunks(), timeout=60,
        headers=AUTH | {"Content-Type": "multipart/form-data; boundary=x"},
    )  # fmt: skip
    assert response.status_code == 413
    assert server.healthy(AUTH)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.wav", b"", "empty"),
        ("text.wav", b"this is not audio at all" * 50, "not a readable audio file"),
        ("cut.wav", SAMPLE.read_bytes()[: len(SAMPLE.read_bytes()) // 2], "truncated"),
        ("header.wav", SAMPLE.read_bytes()[:30], "not a readable audio file"),
    ],
)
def test_bad_upload_gets_400_saying_why(server, name: str, content: bytes, reason: str) -> None:
    response = post(server, files={"file": (name, content, "audio/wav")})
    assert response.status_code == 400
    assert reason in response.json()["error"]["message"] and name in response.json()["error"]["message"]
    assert post(server, files=sample_file()).status_code == 200  # the next request is served as usual


def test_api_key_is_required(server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        assert post(server, files=sample_file(), headers=headers).status_code == 401
        assert httpx.get(f"{server.url}/health", headers=headers).status_code == 401
        assert httpx.get(f"{server.url}/v1/models", headers=headers).status_code == 401
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError), SAMPLE.open("rb") as audio:
        client.audio.transcriptions.create(model="default", file=audio)


@pytest.mark.parametrize(
    "data",
    [
        {"model": "nope"},
        {"model": "default", "response_format": "xml"},
        {"model": "default", "language": "fr"},
        {"model": "default", "decoder": "viterbi"},
        {"model": "default", "beam_size": "0"},
        {"model": "default", "beam_size": "many"},
        {"model": "default", "decoder": "greedy", "beam_size": "4"},
        {"model": "default", "timestamp_granularities[]": "word"},  # needs verbose_json
        {"model": "default", "response_format": "verbose_json", "timestamp_granularities[]": "phoneme"},
    ],
)
def test_wrong_fields_get_400(server, data: dict) -> None:
    response = post(server, data, sample_file())
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert server.healthy(AUTH)


def test_malformed_requests_never_take_the_server_down(server) -> None:
    attempts = [
        lambda: post(server, files=None),  # no file field
        lambda: httpx.post(f"{server.url}/v1/audio/transcriptions", content=b"garbage", headers=AUTH),
        lambda: httpx.post(
            f"{server.url}/v1/audio/transcriptions",
            content=b"--x\r\nbroken",
            timeout=30,
            headers=AUTH | {"Content-Type": "multipart/form-data; boundary=x"},
        ),  # fmt: skip
        lambda: httpx.get(f"{server.url}/health", headers=AUTH | {"X-Huge": "a" * 200_000}),
        lambda: httpx.post(f"{server.url}/v1/audio/transcriptions", headers=AUTH | {"Content-Length": "-5"}),
        lambda: httpx.get(f"{server.url}/static/../app.py", headers=AUTH),
    ]
    for attempt in attempts:
        try:
            response = attempt()
            assert response.status_code in (400, 404, 413, 422, 431) or response.status_code < 300
        except httpx.HTTPError:
            pass  # the server may drop a request it cannot parse; it must stay up
        assert server.healthy(AUTH)
    _abrupt_upload(server)
    assert server.healthy(AUTH)
    assert post(server, files=sample_file()).status_code == 200


def _abrupt_upload(server) -> None:
    """Half a multipart body, then the connection closed without a word."""
    host, port = server.url.removeprefix("http://").split(":")
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + SAMPLE.read_bytes()[:5000]
    head = (
        f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {len(body) * 4}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.encode() + body)


def test_uploads_leave_nothing_outside_the_temporary_directory(server) -> None:
    before = set(Path.cwd().iterdir())
    temporary = Path(tempfile.gettempdir())
    spooled = {p for p in temporary.iterdir() if p.name.startswith("asr-")}
    response = post(server, files={"file": ("../../escape.wav", io.BytesIO(SAMPLE.read_bytes()), "audio/wav")})
    assert response.status_code == 200
    assert set(Path.cwd().iterdir()) == before
    assert not (Path.cwd().parent / "escape.wav").exists() and not (temporary.parent / "escape.wav").exists()
    assert {p for p in temporary.iterdir() if p.name.startswith("asr-")} <= spooled  # the spool file is gone


def test_the_key_may_come_as_a_query_parameter_for_browsers(server) -> None:
    assert httpx.get(f"{server.url}/", params={"api_key": KEY}).status_code == 200
    assert httpx.get(f"{server.url}/", params={"api_key": "wrong"}).status_code == 401


def test_a_long_file_does_not_hold_a_short_one_back(shared_data) -> None:
    import soundfile

    from asr.audio import SAMPLE_RATE, load_audio

    speech = load_audio(second_file(shared_data))
    long_audio = io.BytesIO()
    # About ten minutes (19 MB, under the 25 MiB limit): seconds of compute on one thread, so the
    # short file, sent 0.3 s later, can only finish first if the long one does not hold it back
    # (two minutes finished first on an idle machine in one CI run).
    repeats = int(600 * SAMPLE_RATE / speech.size)
    soundfile.write(long_audio, np.tile(speech, repeats), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    finished: list[str] = []

    async def send(url: str, name: str, content: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        async with httpx.AsyncClient(timeout=300) as client:
            response = await client.post(
                f"{url}/v1/audio/transcriptions", data={"model": "default"}, files={"file": (name, content)}
            )
        assert response.status_code == 200
        finished.append(name)

    async def both(url: str) -> None:
        await asyncio.gather(
            send(url, "long.wav", long_audio.getvalue(), 0.0), send(url, "short.wav", SAMPLE.read_bytes(), 0.3)
        )

    with running_server(ServeConfig()) as roomy:  # no upload limit of 1 MiB here
        asyncio.run(both(roomy.url))
    assert finished == ["short.wav", "long.wav"]


def test_serve_help_imports_neither_torch_nor_fastapi() -> None:
    code = (
        "import sys; from asr.cli.args import Parser; from asr.cli.serve import add_serve_parser\n"
        "p = Parser(prog='asr'); add_serve_parser(p.add_subparsers(dest='command'))\n"
        "args = p.parse_args(['serve', '--port', '0', '--max-streams', '3'])\n"
        "assert args.host == '127.0.0.1' and args.max_streams == 3\n"
        "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
    for bad in (["--port", "70000"], ["--max-streams", "0"], ["--max-upload-mb", "nan"], ["--threads", "x"]):
        code_bad = code.replace("['serve', '--port', '0', '--max-streams', '3']", repr(["serve", *bad]))
        refused = subprocess.run([sys.executable, "-c", code_bad], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "asr serve: error" in refused.stderr


def test_cmd_serve_listens_on_loopback_only(tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import argparse; from asr.cli.args import Parser; from asr.cli.serve import add_serve_parser\n"
        "p = Parser(prog='asr'); add_serve_parser(p.add_subparsers(dest='command'))\n"
        f"args = p.parse_args(['serve', '--port', '{port}']); args.func(args)"
    )
    server = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("asr serve did not become ready")
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = [line.split()[1] for line in listening if line.split()[3] == "0A"]  # 0A: LISTEN
        ours = [address for address in local if address.endswith(f":{port:04X}")]
        assert ours == ["0100007F:" + f"{port:04X}"]  # 127.0.0.1, little-endian hex
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(("flags", "quantized"), [([], True), (["--stream-quantize", "none"], False)])
def test_live_streams_are_served_int8_unless_told_none(flags, quantized) -> None:
    import torch

    from asr.cli.args import Parser
    from asr.cli.serve import add_serve_parser, serve_config
    from asr.serve.app import load_served
    from streaming.endpoint import EndpointConfig
    from streaming.stream import DEFAULT_STREAM_QUANTIZATION

    assert ServeConfig().stream_quantize == DEFAULT_STREAM_QUANTIZATION  # as asr dictate streams
    parser = Parser(prog="asr")
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", *flags])
    served = load_served(serve_config(args))
    try:
        for recognizer in (served.streams.base, served.streams.recognizer(EndpointConfig(enabled=False))):
            lstm = recognizer.network.forward_layers[0]
            assert isinstance(lstm, torch.ao.nn.quantized.dynamic.LSTM) == quantized
    finally:
        served.batches.close()
    with pytest.raises(ConfigError, match="'int4'"):
        ServeConfig(stream_quantize="int4")
