"""Streaming measurements: per-chunk compute time, real-time factor, finalization latency and
memory growth over a long stream.

- **Chunk time**: wall time of each ``accept_waveform`` of a 100 ms chunk (one thread), p50/p95.
- **Finalization latency**: for every word, the audio time at which it first appeared in the
  committed prefix or a finalized segment, minus the time its last letter was spoken (the end
  of its CTC span in the final result). Real recordings, fed in 100 ms chunks.
- **Memory growth**: resident memory after the first minute of a long stream versus at its end.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from streaming.stream import Recognizer

CHUNK_SECONDS = 0.1
WARMUP_SECONDS = 60.0


@dataclass(frozen=True)
class StreamingBench:
    chunks: int
    chunk_p50_ms: float
    chunk_p95_ms: float
    rtf: float
    latency_p50_ms: float
    latency_p95_ms: float
    words: int

    def report(self) -> str:
        return (
            f"streaming: {self.chunks} chunks of {1000 * CHUNK_SECONDS:.0f} ms: compute p50 {self.chunk_p50_ms:.2f} ms, "
            f"p95 {self.chunk_p95_ms:.2f} ms; RTF {self.rtf:.4f}; finalization latency over {self.words} words: "
            f"median {self.latency_p50_ms:.0f} ms, p95 {self.latency_p95_ms:.0f} ms"
        )


def bench_streaming(recognizer: Recognizer, waveforms: Sequence[np.ndarray], threads: int = 1) -> StreamingBench:
    """Feed each ``(T,)`` waveform in 100 ms chunks through its own stream and time it."""
    torch.set_num_threads(threads)
    rate = recognizer.sample_rate
    chunk = int(CHUNK_SECONDS * rate)
    times, latencies = [], []
    audio_seconds = 0.0
    for waveform in waveforms:
        stream = recognizer.create_stream()
        first_seen: dict[int, float] = {}  # word index in the session -> audio time it was committed
        fed = 0
        for start in range(0, len(waveform), chunk):
            piece = waveform[start : start + chunk]
            t0 = time.perf_counter()
            stream.accept_waveform(piece)
            times.append(time.perf_counter() - t0)
            fed += len(piece)
            committed = sum(len(s.words) for s in stream.finalized) + len(stream.committed.split())
            for index in range(len(first_seen), committed):
                first_seen[index] = fed / rate
        transcript = stream.finish()
        audio_seconds += len(waveform) / rate
        for index, word in enumerate(transcript.words):
            seen = first_seen.get(index, len(waveform) / rate)  # flushed only at the end
            latencies.append(seen - word.end)
    times_ms = 1000 * np.array(times)
    latency_ms = 1000 * np.array(latencies) if latencies else np.zeros(1)
    return StreamingBench(
        chunks=len(times),
        chunk_p50_ms=float(np.percentile(times_ms, 50)),
        chunk_p95_ms=float(np.percentile(times_ms, 95)),
        rtf=float(times_ms.sum() / 1000 / audio_seconds),
        latency_p50_ms=float(np.percentile(latency_ms, 50)),
        latency_p95_ms=float(np.percentile(latency_ms, 95)),
        words=len(latencies),
    )


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB (from /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def memory_growth(recognizer: Recognizer, waveform: np.ndarray, total_seconds: float) -> tuple[float, float]:
    """Feed ``waveform`` repeated for ``total_seconds`` in 100 ms chunks through one stream.

    Returns:
        Resident memory (MB) after the first minute and at the end.
    """
    rate = recognizer.sample_rate
    chunk = int(CHUNK_SECONDS * rate)
    stream = recognizer.create_stream()
    fed, after_warmup = 0, None
    while fed < total_seconds * rate:
        for start in range(0, len(waveform), chunk):
            stream.accept_waveform(waveform[start : start + chunk])
            fed += min(chunk, len(waveform) - start)
            if after_warmup is None and fed >= WARMUP_SECONDS * rate:
                after_warmup = current_rss_mb()
    stream.finish()
    return after_warmup or current_rss_mb(), current_rss_mb()
