"""Load on a real ``asr serve``: 32 file requests and 8 live streams at once, all correct.

Reports p50/p95 latency and the server's throughput against ``transcribe_batch`` on the same
files in the same run (the issue's floor: at least 0.7 of it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import asr
from asr.audio import SAMPLE_RATE
from asr.serve.config import ServeConfig
from tests.serve_server import running_server
from tests.test_serve_stream import finals, reference, speech, stream_audio

logger = logging.getLogger(__name__)

FILE_REQUESTS = 32
STREAMS = 8
MIN_THROUGHPUT_RATIO = 0.7  # of transcribe_batch's, on the same files

pytestmark = pytest.mark.slow


def _files(shared_data: Path) -> list[Path]:
    paths = sorted((shared_data / "ljspeech" / "wavs").glob("*.opus"))[:FILE_REQUESTS]
    if len(paths) < FILE_REQUESTS:
        pytest.skip(f"needs {FILE_REQUESTS} LJSpeech files under {shared_data}")
    return paths


async def _post(client: httpx.AsyncClient, url: str, path: Path) -> tuple[str, float]:
    started = time.perf_counter()
    response = await client.post(
        f"{url}/v1/audio/transcriptions", data={"model": "default"}, files={"file": (path.name, path.read_bytes())}
    )
    response.raise_for_status()
    return response.json()["text"], time.perf_counter() - started


async def _load(server, files: list[Path], audio: np.ndarray):
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        posts = asyncio.gather(*(_post(client, server.url, p) for p in files))
        streams = asyncio.gather(*(stream_audio(server.ws_url, audio, SAMPLE_RATE, seed) for seed in range(STREAMS)))
        results, messages = await asyncio.gather(posts, streams)
        return results, messages, time.perf_counter() - started


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def test_concurrent_files_and_streams_are_all_correct(shared_data, capsys) -> None:
    files = _files(shared_data)
    model = asr.load_model("default")
    started = time.perf_counter()
    expected = [t.text for t in model.transcribe_batch(files)]
    batch_seconds = time.perf_counter() - started
    audio = speech(shared_data)
    segments = reference(audio, SAMPLE_RATE)
    with running_server(ServeConfig()) as server:
        files_alone = asyncio.run(_load_files_only(server, files))
        results, messages, _ = asyncio.run(_load(server, files, audio))
        assert server.healthy()
    assert [text for text, _ in results] == expected
    assert all(finals(m) == segments for m in messages)
    latencies = [seconds for _, seconds in results]
    ratio = batch_seconds / files_alone
    with capsys.disabled():
        print(
            f"\n{FILE_REQUESTS} files + {STREAMS} streams: file latency p50 {_percentile(latencies, 50):.2f} s, "
            f"p95 {_percentile(latencies, 95):.2f} s; files alone through the server {files_alone:.2f} s "
            f"against transcribe_batch {batch_seconds:.2f} s (throughput ratio {ratio:.2f})"
        )
    assert ratio >= MIN_THROUGHPUT_RATIO


async def _load_files_only(server, files: list[Path]) -> float:
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        await asyncio.gather(*(_post(client, server.url, p) for p in files))
        return time.perf_counter() - started


def test_the_serve_benchmark_reports_what_it_measured(shared_data) -> None:
    from asr.bench.serve import bench_serve

    result = bench_serve(_files(shared_data)[:8])
    assert result.requests == 8 and result.matches == 8
    assert result.requests_per_second > 0 and 0 < result.latency_p50 <= result.latency_p95
