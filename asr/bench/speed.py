"""Transcription speed: seconds of audio per second of compute, excluding start-up; and
recognisers side by side (ours and peers such as pocketsphinx) on the same audio."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from asr.api import Model
from asr.metrics import error_rates
from asr.threads import torch_threads

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchResult:
    files: int
    audio_seconds: float
    transcribe_seconds: float  # features, network and decoding
    threads: int

    @property
    def x_real_time(self) -> float:
        """How many times faster than real time transcription runs (audio / compute)."""
        return self.audio_seconds / self.transcribe_seconds

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per audio second (lower is faster)."""
        return self.transcribe_seconds / self.audio_seconds


def bench_transcribe(
    model: Model,
    waveforms: Sequence[np.ndarray],
    threads: int = 1,
    repeats: int = 1,
    batch_seconds: float | None = None,
    **decode_options,
) -> BenchResult:
    """Time ``model.transcribe(waveform, **decode_options)`` over ``(T,)`` waveforms at the
    model's rate (with ``batch_seconds``, ``model.transcribe_batch`` of them all instead): what a
    user waits for once the model is loaded and the files read. One warm-up call on the first
    waveform, then the fastest of ``repeats`` passes counts. The model computes on ``threads``
    threads whatever its own setting (an outer :func:`torch_threads` block holds)."""

    def one_pass() -> None:
        if batch_seconds is not None:
            model.transcribe_batch(waveforms, batch_seconds=batch_seconds, **decode_options)
            return
        for waveform in waveforms:
            model.transcribe(waveform, **decode_options)

    with torch_threads(threads):
        model.transcribe(waveforms[0], **decode_options)  # warm-up: first-call allocations
        # The fastest pass is the one least disturbed by other work on the machine.
        transcribe_seconds = min(_seconds(one_pass) for _ in range(repeats))
    audio_seconds = sum(w.size for w in waveforms) / model.sample_rate
    return BenchResult(len(waveforms), audio_seconds, transcribe_seconds, threads)


def _seconds(call: Callable[[], None]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@dataclass(frozen=True)
class SystemScore:
    """One recogniser on one set: accuracy and speed (compute seconds per audio second)."""

    name: str
    wer: float
    cer: float
    rtf: float


def compare_systems(
    systems: Sequence[tuple[str, Callable[[np.ndarray], str]]],
    waveforms: Sequence[np.ndarray],
    texts: Sequence[str],
    sample_rate: int,
    threads: int = 1,
) -> list[SystemScore]:
    """Run each ``(name, transcribe)`` over the same ``(T,)`` waveforms, in one process.

    ``transcribe`` maps a waveform to normalised text; one warm-up call each is not timed.
    """
    audio_seconds = sum(w.size for w in waveforms) / sample_rate
    scores = []
    for name, transcribe in systems:
        with torch_threads(threads):  # over each model's own setting: every system on ``threads``
            transcribe(waveforms[0])
            start = time.perf_counter()
            hypotheses = [transcribe(w) for w in waveforms]
            seconds = time.perf_counter() - start
        rates = error_rates(texts, hypotheses)
        scores.append(SystemScore(name, rates.wer, rates.cer, seconds / audio_seconds))
        logger.info("%s: WER %.2f%%, RTF %.4f", name, 100 * rates.wer, seconds / audio_seconds)
    return scores


def scores_table(scores: Sequence[SystemScore]) -> str:
    rows = ["| system | WER % | CER % | RTF |", "|---|---|---|---|"]
    rows += [f"| {s.name} | {100 * s.wer:.2f} | {100 * s.cer:.2f} | {s.rtf:.4f} |" for s in scores]
    return "\n".join(rows)
