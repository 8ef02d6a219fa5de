"""Streaming measurements: per-chunk compute time, real-time factor, finalization latency and
memory growth over a long stream.

- **Chunk time**: wall time of each ``accept_waveform`` of a 100 ms chunk (one thread), p50/p95.
- **Finalization latency**: for every word, the time at which it first appeared in the
  committed prefix or a finalized segment, minus the time it ended in the audio: by the
  hand-labelled word ends where a recording has them (TIMIT's ``.wrd``), and by the end of the
  word's CTC span in the final result for every word. Real recordings, fed in 100 ms chunks.
- **Memory growth**: resident memory after the first minute of a long stream versus at its end.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asr.api import Model
from asr.bench.latency import ReferenceWord, match_words
from asr.metrics import error_rates
from asr.threads import torch_threads
from asr.transcript import Transcript
from streaming.stream import Recognizer, RecognizerConfig

CHUNK_SECONDS = 0.1
WARMUP_SECONDS = 60.0


@dataclass(frozen=True)
class StreamingBench:
    chunks: int
    chunk_p50_ms: float
    chunk_p95_ms: float
    rtf: float
    latency_p50_ms: float  # against the model's own word ends (CTC spans), every word
    latency_p95_ms: float
    words: int
    labelled_latency_p50_ms: float | None = None  # against hand-labelled word ends, matched words
    labelled_latency_p95_ms: float | None = None
    labelled_words: int = 0
    wer: float | None = None  # of the finished streams' text, where reference texts were given
    cer: float | None = None

    def report(self) -> str:
        lines = [
            f"streaming: {self.chunks} chunks of {1000 * CHUNK_SECONDS:.0f} ms: compute p50 {self.chunk_p50_ms:.2f} ms, "
            f"p95 {self.chunk_p95_ms:.2f} ms; RTF {self.rtf:.4f}",
            f"finalization latency after the model's word ends ({self.words} words): "
            f"median {self.latency_p50_ms:.0f} ms, p95 {self.latency_p95_ms:.0f} ms",
        ]
        if self.wer is not None:
            lines.append(f"accuracy of the streamed text: WER {100 * self.wer:.2f}%, CER {100 * self.cer:.2f}%")
        if self.labelled_words:
            lines.append(
                f"finalization latency after hand-labelled word ends ({self.labelled_words} matched words): "
                f"median {self.labelled_latency_p50_ms:.0f} ms, p95 {self.labelled_latency_p95_ms:.0f} ms"
            )
        return "\n".join(lines)


def bench_streaming(
    recognizer: Recognizer,
    waveforms: Sequence[np.ndarray],
    threads: int = 1,
    references: Sequence[tuple[ReferenceWord, ...] | None] | None = None,
    texts: Sequence[str] | None = None,
) -> StreamingBench:
    """Feed each ``(T,)`` waveform in 100 ms chunks through its own stream, as if live, and time it.

    A word's finalization time is when the chunk after which it first stood whole in the
    committed text arrived (its audio time) plus the compute that chunk took. Words still open
    at the end of a recording count as committed when it ends (``finish``, as at the end of
    ``asr dictate --input``).

    Args:
        references: per waveform, its hand-labelled word ends (or ``None``); recognised words
            are matched to them by minimum-edit alignment (hits and substitutions).
        texts: per waveform, its normalised reference transcript, to score the streamed text.
    """
    rate = recognizer.sample_rate
    chunk = int(CHUNK_SECONDS * rate)
    references = references or [None] * len(waveforms)
    times, latencies, labelled, hypotheses = [], [], [], []
    audio_seconds = 0.0
    for waveform, reference in zip(waveforms, references):
        with torch_threads(threads):  # over the recognizer's own setting
            chunk_times, transcript, shown = _stream_one(recognizer, waveform, chunk)
        times += chunk_times
        hypotheses.append(transcript.text)
        words = transcript.words
        committed_at = [_first_shown(shown, index, word.word, len(waveform) / rate) for index, word in enumerate(words)]
        audio_seconds += len(waveform) / rate
        latencies += [seen - word.end for seen, word in zip(committed_at, words)]
        if reference:
            pairs = match_words([r.word for r in reference], [w.word for w in words])
            labelled += [committed_at[h] - reference[r].end for r, h in pairs]
    times_ms = 1000 * np.array(times)
    latency_ms = 1000 * np.array(latencies) if latencies else np.zeros(1)
    labelled_ms = 1000 * np.array(labelled) if labelled else None
    accuracy = error_rates(texts, hypotheses) if texts else None
    return StreamingBench(
        chunks=len(times),
        chunk_p50_ms=float(np.percentile(times_ms, 50)),
        chunk_p95_ms=float(np.percentile(times_ms, 95)),
        rtf=float(times_ms.sum() / 1000 / audio_seconds),
        latency_p50_ms=float(np.percentile(latency_ms, 50)),
        latency_p95_ms=float(np.percentile(latency_ms, 95)),
        words=len(latencies),
        labelled_latency_p50_ms=None if labelled_ms is None else float(np.percentile(labelled_ms, 50)),
        labelled_latency_p95_ms=None if labelled_ms is None else float(np.percentile(labelled_ms, 95)),
        labelled_words=len(labelled),
        wer=None if accuracy is None else accuracy.wer,
        cer=None if accuracy is None else accuracy.cer,
    )


def bench_precisions(
    model: Model,
    waveforms: Sequence[np.ndarray],
    repeats: int = 1,
    references: Sequence[tuple[ReferenceWord, ...] | None] | None = None,
    texts: Sequence[str] | None = None,
) -> tuple[StreamingBench, StreamingBench]:
    """Stream ``waveforms`` (each ``(T,)``) as live streams run them (int8) and in float32, in
    turn for ``repeats`` passes so that a busy spell slows both alike (``references`` and
    ``texts`` as for :func:`bench_streaming`).

    Returns:
        The int8 and the float32 pass with the lowest chunk compute p95.
    """
    recognizers = (
        Recognizer(model, RecognizerConfig(quantize="int8")),
        Recognizer(model, RecognizerConfig(quantize=None)),
    )
    best: list[StreamingBench | None] = [None, None]
    for _ in range(repeats):
        for index, recognizer in enumerate(recognizers):
            result = bench_streaming(recognizer, waveforms, 1, references, texts)
            if best[index] is None or result.chunk_p95_ms < best[index].chunk_p95_ms:
                best[index] = result
    return best[0], best[1]


def _stream_one(
    recognizer: Recognizer, waveform: np.ndarray, chunk: int
) -> tuple[list[float], Transcript, list[tuple[float, list[str]]]]:
    """Stream one ``(T,)`` waveform in chunks of ``chunk`` samples.

    Returns:
        The compute seconds of each chunk, the finished transcript, and ``(time, committed words
        of the session)`` at each change of the committed text (time: the audio fed so far plus
        the chunk's compute).
    """
    stream = recognizer.create_stream()
    times: list[float] = []
    shown: list[tuple[float, list[str]]] = []
    fed = 0
    for start in range(0, len(waveform), chunk):
        piece = waveform[start : start + chunk]
        t0 = time.perf_counter()
        stream.accept_waveform(piece)
        elapsed = time.perf_counter() - t0
        times.append(elapsed)
        fed += len(piece)
        committed = [w.word for s in stream.finalized for w in s.words] + stream.committed.split()
        if not shown or committed != shown[-1][1]:
            shown.append((fed / recognizer.sample_rate + elapsed, committed))
    return times, stream.finish(), shown


def _first_shown(shown: list[tuple[float, list[str]]], index: int, word: str, end: float) -> float:
    """When the session's ``index``-th word was first committed whole (else ``end``)."""
    for at, committed in shown:
        if len(committed) > index and committed[index] == word:
            return at
    return end


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
