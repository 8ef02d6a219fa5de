"""Long-running streams: memory stays flat and results stay identical however the audio is cut,
over minutes in the default suite and over a full hour behind the ``slow`` marker; several
streams of one recognizer in parallel threads give the results each gives alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import asr
from asr.audio import load_audio
from asr.bench.streaming import current_rss_mb
from streaming.stream import Recognizer
from tests.test_streaming import random_streaming_model

RATE = 16_000
WARMUP_SECONDS = 30.0
# Resident memory may grow by at most this much after the warm-up (allocator noise; the
# bundled model measured +1.3 MB over an hour).
MAX_GROWTH_MB = 10.0


def run(recognizer: Recognizer, clip: np.ndarray, seconds: float, chunk_sizes: list[int]) -> tuple[tuple, float]:
    """Feed ``clip`` looped for ``seconds`` through one stream, cycling through ``chunk_sizes``;
    returns ``(segments as (text, start, end), resident memory growth in MB after the warm-up)``."""
    stream = recognizer.create_stream()
    audio_samples = int(seconds * RATE)
    fed, index, after_warmup = 0, 0, None
    while fed < audio_samples:
        offset = fed % len(clip)
        size = min(chunk_sizes[index % len(chunk_sizes)], len(clip) - offset, audio_samples - fed)
        stream.accept_waveform(clip[offset : offset + size])
        fed += size
        index += 1
        if after_warmup is None and fed >= WARMUP_SECONDS * RATE:
            after_warmup = current_rss_mb()
    segments = tuple((s.text, s.start, s.end) for s in stream.finish().segments)
    return segments, current_rss_mb() - after_warmup


def soak(recognizer: Recognizer, clip: np.ndarray, seconds: float, min_segments: int) -> None:
    rng = np.random.default_rng(0)
    steady, growth = run(recognizer, clip, seconds, [RATE // 10])  # 100 ms, as a microphone gives
    assert growth <= MAX_GROWTH_MB
    assert len(steady) >= min_segments  # the endpointer keeps cutting segments
    ragged, _ = run(recognizer, clip, seconds, [int(n) for n in rng.integers(1, RATE, size=97)])
    assert ragged == steady


@pytest.fixture
def clip(speechlike) -> np.ndarray:
    """Speech-like audio and a second of silence, so that each repetition ends a segment."""
    return np.concatenate([speechlike, np.zeros(RATE, dtype=np.float32)])


def test_minutes_of_streaming_keep_memory_flat_and_results_identical(tmp_path, speechlike, clip):
    # A random model hears no pauses: its segments end at the maximum length.
    recognizer = Recognizer(random_streaming_model(tmp_path, speechlike, asr.tokenizer.CharTokenizer()))
    soak(recognizer, clip, 180.0, min_segments=int(180 / recognizer.config.endpoint.max_segment))


def test_parallel_streams_give_what_each_gives_alone(tmp_path, speechlike, clip):
    recognizer = Recognizer(random_streaming_model(tmp_path, speechlike, asr.tokenizer.CharTokenizer()))
    alone, _ = run(recognizer, clip, 60.0, [RATE // 10])
    results: dict[int, tuple] = {}

    def worker(i: int) -> None:
        results[i], _ = run(recognizer, clip, 60.0, [RATE // 10 + 37 * i, 800 + i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(4)] == [alone] * 4 and alone
    assert torch.backends.mkldnn.enabled  # the streams' kernel switch is restored once all are done


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two hours of audio streamed at about 0.05 real-time factor
def test_an_hour_of_the_bundled_streaming_model(shared_data):
    """The full-length soak of issue 8: one hour of real speech through the bundled model."""
    utterance = load_audio(shared_data / "timit_sample" / "dr1-fvmh0" / "sa1.flac")
    clip = np.concatenate([utterance, np.zeros(RATE, dtype=np.float32)])
    # Each repetition of the utterance is followed by a pause that should end a segment.
    soak(Recognizer(asr.load_model("streaming")), clip, 3600.0, min_segments=int(3600 * RATE / len(clip)) // 2)
