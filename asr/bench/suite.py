"""``asr bench``: every speed figure of the toolkit next to its reference, in one run.

Sections (each can be run alone):

- **offline**: ``Model.transcribe`` in times faster than real time, greedy, beam, and beam with
  an LM, on one thread and on all cores; pocketsphinx on the same audio when installed.
- **compute**: the inference forward pass against the bare LSTM stack; GFLOP/s against a matmul.
- **streaming**: 100 ms chunks through a ``Stream``: compute p50/p95, real-time factor,
  finalization latency and memory growth over a long stream.
- **features**: log-mel throughput against librosa computing the same features.
- **training**: the training step against the bare LSTM's forward+backward; two Gloo processes
  against one.
- **quantization**: dynamic int8 against float32: transcription speed, and WER on the given set.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.api import DEFAULT_BATCH_SECONDS, Model, load_model
from asr.audio import audio_duration, load_audio, resample
from asr.bench.report import SECTIONS, Figure
from asr.bench.speed import bench_transcribe
from asr.errors import ASRError
from asr.manifest import Utterance
from asr.metrics import error_rates
from asr.text import normalize_text
from asr.threads import torch_threads

logger = logging.getLogger(__name__)

RTF_FLOOR_X_REAL_TIME = 100.0  # RTF ≤ 0.01 on one thread
PEER_SPEED_FLOOR = 20.0  # times pocketsphinx's speed
QUANTIZED_SPEED_FLOOR = 1.5
QUANTIZED_WER_CEILING_PERCENT = 3.0  # relative change
STREAMING_INT8_CEILING = 1.0  # live streams default to int8: it must not be the slower
SERVE_THROUGHPUT_FLOOR = 0.7  # the server's files per second over transcribe_batch's (issue 20)
FORWARD_SECONDS = 20.0  # the length of one utterance in the compute section
FEATURE_FRAMES_PER_SECOND = 100
Audio = tuple[np.ndarray, ...]  # the speed subset's waveforms, read once


@dataclass(frozen=True)
class SuiteConfig:
    sections: tuple[str, ...] = SECTIONS
    seconds: float = 60.0  # at most this much audio for the speed figures (the first files)
    repeats: int = 3  # timed passes; the fastest counts (see asr.bench.report.best_seconds)
    training_steps: int = 8
    soak_seconds: float = 300.0  # one stream this long for memory growth (over a minute)
    all_threads: int = os.cpu_count() or 1

    def __post_init__(self) -> None:
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise ASRError(f"unknown bench section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")


@dataclass(frozen=True)
class BenchInputs:
    """The audio to measure on: utterances with transcripts (or empty texts), the speed subset
    of them, and the decoding options for beam search with an LM (if any)."""

    utterances: tuple[Utterance, ...]
    speed_paths: tuple[Path, ...]
    lm_options: dict


def speed_subset(utterances: Sequence[Utterance], seconds: float) -> tuple[Path, ...]:
    """The first utterances, up to ``seconds`` of audio (at least one; lengths from the manifest
    or else the file's header)."""
    chosen, total = [], 0.0
    for utt in utterances:
        if chosen and total >= seconds:
            break
        chosen.append(utt.audio)
        total += utt.duration if utt.duration else audio_duration(utt.audio)
    return tuple(chosen)


@dataclass(frozen=True)
class SuiteResult:
    """What :func:`run_suite` measured, and the sections that stopped with an error."""

    figures: list[Figure]
    failed: dict[str, str]  # section -> its one-line error


def run_suite(model_name: str | None, inputs: BenchInputs, config: SuiteConfig) -> SuiteResult:
    """Every figure of ``config.sections``, in order. A section that stops with an
    :class:`ASRError` is logged and named in the result; the sections after it still run."""
    model = load_model(model_name)
    audio = tuple(load_audio(p, model.sample_rate) for p in inputs.speed_paths)  # read once, for every section
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    for section in config.sections:
        logger.info("bench: %s", section)
        try:
            figures += SECTION_RUNNERS[section](model, inputs, audio, config)
        except ASRError as exc:
            logger.error("bench: section %s stopped: %s", section, exc)
            failed[section] = str(exc)
    return SuiteResult(figures, failed)


def _offline(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    decoders = [("greedy", {"decoder": "greedy"}), ("beam", {"decoder": "beam", "use_lm": False})]
    if model.lm is not None or inputs.lm_options.get("lm"):
        decoders.append(("beam + LM", {"decoder": "beam", **inputs.lm_options}))
    else:
        logger.info("bench: no LM (give --lm, or a model with its own): beam + LM is left out")
    figures = []
    for name, options in decoders:
        for threads in sorted({1, config.all_threads}):
            for batched in (False, True):
                result = bench_transcribe(
                    model, audio, threads=threads, repeats=config.repeats,
                    batch_seconds=DEFAULT_BATCH_SECONDS if batched else None, **options,
                )  # fmt: skip
                floor = RTF_FLOOR_X_REAL_TIME if (name == "greedy" and threads == 1 and not batched) else None
                how = "batched" if batched else "file by file"
                figures.append(
                    Figure("offline", f"transcribe, {name}, {how}, {_threads(threads)}", result.x_real_time,
                           "x real time", floor=floor, note=f"RTF {result.rtf:.4f}")
                )  # fmt: skip
    peer = _pocketsphinx_figure(model, audio, figures[0].value)
    return figures + ([peer] if peer else [])


def _pocketsphinx_figure(model: Model, audio: Audio, ours: float) -> Figure | None:
    from asr.bench.peers import PeerUnavailableError, PocketSphinx

    try:
        peer = PocketSphinx()
    except PeerUnavailableError as exc:
        logger.info("bench: %s; the comparison with it is left out", exc)
        return None
    waveforms = _at_rate(audio, model.sample_rate, peer.sample_rate)
    with torch_threads(1):
        start = time.perf_counter()
        for waveform in waveforms:
            peer.transcribe(waveform)
        seconds = time.perf_counter() - start
    audio_seconds = sum(w.size for w in waveforms) / peer.sample_rate
    return Figure("offline", "transcribe, greedy, file by file, 1 thread, against pocketsphinx", ours, "x real time",
                  "pocketsphinx", audio_seconds / seconds, floor=PEER_SPEED_FLOOR)  # fmt: skip


def _at_rate(audio: Audio, rate: int, wanted: int) -> Audio:
    """``audio`` (at ``rate``) at the ``wanted`` rate: resampled only if the rates differ."""
    if rate == wanted:
        return audio
    return tuple(resample(w, rate, wanted) for w in audio)


def _compute(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    from asr.bench.compute import bench_forward

    with torch_threads(1):
        return bench_forward(model.network, int(FORWARD_SECONDS * FEATURE_FRAMES_PER_SECOND), config.repeats)


def _streaming(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    from asr.bench.latency import boundaries_beside
    from asr.bench.streaming import bench_precisions, memory_growth
    from streaming.stream import Recognizer

    streaming_model = load_model("streaming")
    waveforms = _at_rate(audio, model.sample_rate, streaming_model.sample_rate)
    labels = [boundaries_beside(p) for p in inputs.speed_paths]
    result, fp32 = bench_precisions(streaming_model, waveforms, config.repeats, labels)
    before, after = memory_growth(Recognizer(streaming_model), np.concatenate(waveforms), config.soak_seconds)
    chunk = "bundled streaming model, int8 as live streams run it, 100 ms chunks, 1 thread"
    return [
        Figure("streaming", "chunk compute p50", result.chunk_p50_ms, "ms", note=chunk),
        Figure("streaming", "chunk compute p95", result.chunk_p95_ms, "ms", note=chunk),
        Figure("streaming", "chunk compute p95, int8", result.chunk_p95_ms, "ms", "float32", fp32.chunk_p95_ms,
               ceiling=STREAMING_INT8_CEILING, note="the default precision against float32, same streams"),
        Figure("streaming", "real time", 1 / result.rtf, "x real time", note=f"RTF {result.rtf:.4f}"),
        Figure("streaming", "finalization latency p50", result.latency_p50_ms, "ms", note="after each word's end"),
        Figure("streaming", "finalization latency p95", result.latency_p95_ms, "ms", note="after each word's end"),
        Figure("streaming", "memory growth", after - before, "MB",
               note=f"one stream of {config.soak_seconds:.0f} s, after its first minute"),
    ]  # fmt: skip


def _features(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    from asr.bench.compute import bench_features

    with torch_threads(1):
        return bench_features(np.concatenate(audio), model.checkpoint.features, config.repeats)


def _training(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    from asr.bench.training import bench_config, bench_gloo, bench_training_step

    speed_paths = set(inputs.speed_paths)
    utterances = [u for u in inputs.utterances if u.audio in speed_paths]
    utterances = [u if u.text else Utterance(u.audio, "a", u.id) for u in utterances]  # any text trains
    with tempfile.TemporaryDirectory(prefix="asr-bench-") as workdir:
        train_config = bench_config(model.checkpoint, utterances, Path(workdir))
        return bench_training_step(train_config, config.training_steps) + bench_gloo(
            train_config, config.training_steps
        )


def _quantization(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    quantized = load_model(model.name, quantize="int8")  # the same checkpoint, quantized
    figures = []
    for batched in (True, False):
        batch_seconds = DEFAULT_BATCH_SECONDS if batched else None
        fp32_speed = int8_speed = 0.0
        for _ in range(config.repeats):  # in turn, so that a busy spell slows both alike
            fp32 = bench_transcribe(model, audio, threads=1, batch_seconds=batch_seconds)
            int8 = bench_transcribe(quantized, audio, threads=1, batch_seconds=batch_seconds)
            fp32_speed, int8_speed = max(fp32_speed, fp32.x_real_time), max(int8_speed, int8.x_real_time)
        how = "batched" if batched else "file by file"
        figures.append(
            Figure("quantization", f"int8 transcribe, greedy, {how}, 1 thread", int8_speed, "x real time",
                   "float32", fp32_speed, floor=QUANTIZED_SPEED_FLOOR if batched else None)
        )  # fmt: skip
    scored = [u for u in inputs.utterances if u.text]
    if scored:
        texts = [normalize_text(u.text) for u in scored]
        waveforms = [load_audio(u.audio, model.sample_rate) for u in scored]
        with torch_threads(config.all_threads):  # over the models' own setting: accuracy, not speed
            wer32 = error_rates(texts, [t.text for t in model.transcribe_batch(waveforms)]).wer
            wer8 = error_rates(texts, [t.text for t in quantized.transcribe_batch(waveforms)]).wer
        change = 100 * abs(wer8 - wer32) / wer32 if wer32 else 0.0
        figures.append(
            Figure("quantization", "int8 WER change, greedy", change, "% relative", ceiling=QUANTIZED_WER_CEILING_PERCENT,
                   note=f"{len(scored)} utterances: WER {100 * wer32:.2f}% float32, {100 * wer8:.2f}% int8")
        )  # fmt: skip
    return figures


def _serve(model: Model, inputs: BenchInputs, audio: Audio, config: SuiteConfig) -> list[Figure]:
    """The speed subset's files posted all at once to ``asr serve``'s file endpoint (in this
    process, over real sockets) against ``transcribe_batch`` on them, the same model, one thread."""
    from asr.bench.serve import bench_serve
    from asr.serve.config import ServeConfig

    result = bench_serve(inputs.speed_paths, ServeConfig(model=model.name or "default", threads=1))
    note = f"{result.requests} files at once, {result.matches} with transcribe_batch's text"
    return [
        Figure("serve", "throughput", result.requests_per_second, "requests/s", reference="transcribe_batch",
               reference_value=result.requests / result.batch_seconds, floor=SERVE_THROUGHPUT_FLOOR, note=note),
        Figure("serve", "real time", 1 / result.rtf, "x real time", note=f"RTF {result.rtf:.4f} through the server"),
        Figure("serve", "latency p50", result.latency_p50, "s", note="request sent to answer received"),
        Figure("serve", "latency p95", result.latency_p95, "s", note="request sent to answer received"),
    ]  # fmt: skip


def _threads(count: int) -> str:
    return f"{count} thread" + ("s" if count > 1 else "")


SECTION_RUNNERS = {
    "offline": _offline, "compute": _compute, "streaming": _streaming,
    "features": _features, "training": _training, "quantization": _quantization, "serve": _serve,
}  # fmt: skip


def bench_context(model_name: str | None, inputs: BenchInputs, config: SuiteConfig) -> dict:
    """What the figures were measured on, for the JSON report."""
    return {
        "model": model_name or "default", "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "utterances": len(inputs.utterances),
        "speed_files": [str(p) for p in inputs.speed_paths], "sections": list(config.sections),
    }  # fmt: skip
