"""Dictation that falls behind real time catches up by dropping audio, and Ctrl+C ends it within
a bound, on a loaded machine too, saying how much audio it dropped.

A machine that is slower than real time is made on purpose: the dictating process sleeps in
every chunk it recognizes (three times the chunk's length), beside processes spinning on every
core, so the test does not depend on how busy the machine happens to be.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from asr.tokenizer import CharTokenizer
from streaming import Recognizer
from streaming.audio_source import BLOCK_SECONDS, FileSource, StopRequest
from streaming.dictate import STOP_GRACE_SECONDS, Display, dictate
from tests.test_streaming import random_streaming_model

RATE = 16_000
BLOCK = int(RATE * BLOCK_SECONDS)
# From SIGINT to exit: the grace period, the chunk under way (0.3 s here), closing the segment
# and leaving the interpreter, with room for a loaded machine.
EXIT_BOUND_SECONDS = STOP_GRACE_SECONDS + 4.0
STARTUP_TIMEOUT_SECONDS = 120

# Runs `asr dictate` in a process that recognizes three times slower than real time.
SLOW_DICTATE = """
import sys, time
from streaming.stream import Stream
accept = Stream.accept_waveform
def slow(self, samples):
    if self.samples_seen == 0 and len(samples):
        print("recognizing", file=sys.stderr, flush=True)
    time.sleep(3 * len(samples) / 16000)
    accept(self, samples)
Stream.accept_waveform = slow
from asr.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def streaming_model(tmp_path, speechlike):
    return random_streaming_model(tmp_path, speechlike, CharTokenizer())


@pytest.fixture
def long_talk(tmp_path, speechlike) -> str:
    """Twenty seconds of speech-like audio with pauses, as a WAV file."""
    pause = np.zeros(RATE // 2, dtype=np.float32)
    path = tmp_path / "talk.wav"
    soundfile.write(path, np.concatenate([speechlike, pause] * 8), RATE)
    return str(path)


@pytest.fixture
def busy_machine():
    """A process spinning on each core for the duration of the test."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    yield
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def test_a_stalled_reader_drops_the_oldest_audio_instead_of_queueing_it(speechlike, monkeypatch):
    """The device delivers 2 s at once to a reader that has not read any: the queue keeps only
    the newest ``max_backlog`` seconds and counts the rest as dropped."""
    from streaming import audio_source
    from tests.test_dictate_overflow import StandInPortAudio  # skips without sounddevice

    audio = speechlike[: len(speechlike) // BLOCK * BLOCK]
    monkeypatch.setattr(audio_source, "import_sounddevice", lambda: StandInPortAudio(audio, False, paced=False))
    microphone = audio_source.Microphone(max_backlog=0.5)
    iterator = iter(microphone)
    first = next(iterator)  # opens the device; it delivers everything before we read again
    microphone.stream.thread.join()
    assert microphone.blocks.qsize() <= 5
    microphone.stop.set()
    kept = [first, *iterator]
    kept_seconds = sum(len(b) for b in kept) / RATE
    assert microphone.stats.dropped_seconds == pytest.approx(len(audio) / RATE - kept_seconds)
    assert microphone.stats.dropped_seconds >= 1.0
    np.testing.assert_array_equal(np.concatenate(kept[1:]), audio[-len(kept[1:]) * BLOCK :])  # the newest


def test_a_realtime_replay_that_falls_behind_skips_ahead(long_talk):
    """A reader three times slower than real time stays at most ``max_backlog`` behind the
    replayed "speaker", by skipping audio, and the skipped seconds are counted."""
    source = FileSource(long_talk, realtime=True, max_backlog=0.5)
    start, read, lags = time.monotonic(), 0, []
    for block in source:
        read += len(block)
        lags.append(time.monotonic() - start - (read / RATE + source.stats.dropped_seconds))
        time.sleep(3 * BLOCK_SECONDS)
        if time.monotonic() - start > 3.0:
            break
    assert source.stats.dropped_seconds > 1.0
    # The backlog and room for a loaded machine; queueing everything, it would be 2 s by now.
    assert max(lags) < 0.5 + 0.5


def test_a_stop_finishes_the_open_segment_and_counts_what_it_had_no_time_for(streaming_model, speechlike):
    """Blocks captured before the stop but reached only after its grace period are dropped and
    counted; the segment under way is closed, as it is without a stop."""
    stop = StopRequest()
    blocks = [speechlike[i : i + BLOCK] for i in range(0, len(speechlike), BLOCK)]

    def source():
        yield from blocks[:10]
        stop.set()
        stop.at -= STOP_GRACE_SECONDS + 1  # as though recognizing had taken that long since
        yield from blocks[10:]

    report = dictate(Recognizer(streaming_model), source(), RATE, Display(io.StringIO(), live=False), stop=stop)
    assert report.interrupted and report.dropped_seconds == pytest.approx(sum(len(b) for b in blocks[10:]) / RATE)
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(np.concatenate(blocks[:10]))
    assert [s.text for s in report.transcript.segments] == [s.text for s in stream.finish().segments]


def start_slow_dictation(argv: list[str], ignore_sigint: bool) -> subprocess.Popen:
    """``asr dictate argv`` in a process slower than real time, once it recognizes audio."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    # A job started in the background of a shell script inherits SIGINT ignored.
    setup = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_DICTATE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, preexec_fn=setup,
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "recognizing" in line:
            return process
        if not line:
            break
    process.kill()
    raise AssertionError("the dictation never started:\n" + process.stderr.read())


@pytest.mark.parametrize("ignore_sigint", [False, True], ids=["foreground", "background-job"])
def test_ctrl_c_ends_a_dictation_that_fell_behind_promptly_on_a_busy_machine(
    streaming_model, long_talk, busy_machine, ignore_sigint
):
    argv = ["dictate", "--model", str(streaming_model.name), "--input", long_talk, "--realtime"]
    process = start_slow_dictation([*argv, "--output-format", "json"], ignore_sigint)
    try:
        time.sleep(4.0)  # long enough to fall more than the backlog behind
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        stdout, stderr = process.communicate(timeout=30)
        took = time.monotonic() - interrupted
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert took < EXIT_BOUND_SECONDS, stderr
    assert "Traceback" not in stderr
    dropped = float(stderr.split("dropped ")[-1].split(" s of audio")[0])
    assert dropped > 1.0, stderr
    dictated = float(stderr.split("dictated ")[1].split(" s")[0])
    assert dictated < 4.0  # what it recognized, not the 20 s of the file
    for line in stdout.splitlines():
        assert set(json.loads(line)) == {"start", "end", "text", "words"}
