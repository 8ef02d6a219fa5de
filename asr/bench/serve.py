"""The server's throughput: the same files through ``POST /v1/audio/transcriptions``, all at
once, against :meth:`Model.transcribe_batch` on them in the same run.

The server runs in this process (:func:`asr.serve.background.background_server`) and is timed
from the clients' side over real sockets; its model loading is not counted. Both sides read the
files' bytes from memory, so disk speed does not enter either figure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import asr
from asr.audio import audio_duration
from asr.serve.background import background_server
from asr.serve.config import ServeConfig

logger = logging.getLogger(__name__)

CLIENT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class ServeBench:
    requests: int
    audio_seconds: float
    server_seconds: float  # first request sent to last answer received
    batch_seconds: float  # transcribe_batch on the same files
    latency_p50: float
    latency_p95: float
    matches: int  # answers equal to transcribe_batch's text

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.server_seconds

    @property
    def rtf(self) -> float:
        """Compute seconds per audio second through the server (lower is faster)."""
        return self.server_seconds / self.audio_seconds

    @property
    def throughput_ratio(self) -> float:
        """The server's throughput over transcribe_batch's (1.0: as fast)."""
        return self.batch_seconds / self.server_seconds


async def _post_all(url: str, named: Sequence[tuple[str, bytes]]) -> tuple[list[str], list[float], float]:
    import httpx

    async def post(client, name: str, content: bytes) -> tuple[str, float]:
        started = time.perf_counter()
        response = await client.post(
            f"{url}/v1/audio/transcriptions", data={"model": "default"}, files={"file": (name, content)}
        )
        response.raise_for_status()
        return response.json()["text"], time.perf_counter() - started

    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(post(client, name, content) for name, content in named))
        elapsed = time.perf_counter() - started
    return [text for text, _ in results], [seconds for _, seconds in results], elapsed


def bench_serve(paths: Sequence[Path], config: ServeConfig | None = None) -> ServeBench:
    """Time ``paths`` through a server of ``config`` (default :class:`ServeConfig`'s) and through
    ``transcribe_batch``.

    Raises:
        httpx.HTTPStatusError: the server refused a file (one ``transcribe_batch`` can read).
        AudioError: a file cannot be read.
    """
    config = config or ServeConfig()
    named = [(Path(p).name, Path(p).read_bytes()) for p in paths]
    model = asr.load_model(config.model, threads=config.threads)
    started = time.perf_counter()
    expected = [t.text for t in model.transcribe_batch(list(paths))]
    batch_seconds = time.perf_counter() - started
    with background_server(config) as server:
        texts, latencies, server_seconds = asyncio.run(_post_all(server.url, named))
    result = ServeBench(
        requests=len(named), audio_seconds=sum(audio_duration(p) for p in paths), server_seconds=server_seconds,
        batch_seconds=batch_seconds, latency_p50=float(np.percentile(latencies, 50)),
        latency_p95=float(np.percentile(latencies, 95)), matches=sum(a == b for a, b in zip(texts, expected)),
    )  # fmt: skip
    logger.info("serve: %d requests, %.1f req/s, ratio %.2f", result.requests, result.requests_per_second,
                result.throughput_ratio)  # fmt: skip
    return result
