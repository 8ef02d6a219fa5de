"""``asr dictate`` against a real capture device: a PulseAudio pipe source fed with speech.

The audio goes FIFO -> PulseAudio -> ALSA's pulse plugin -> PortAudio -> sounddevice -> the
dictation loop, the path a microphone takes. Needs ``pulseaudio``, ``pulseaudio-utils`` and
``libasound2-plugins`` (``.ci/run`` installs them); skipped with a reason where they are absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from asr.audio import load_audio
from asr.metrics import error_rates
from asr.text import normalize_text
from tests.test_dictate_stop import busy_machine  # noqa: F401 - a fixture

RATE = 16_000
SAMPLE = "asr/samples/sample.wav"
# As for the same recording replayed from the file (tests/test_bundled_streaming.py).
MAX_CER = 0.5
STARTUP_TIMEOUT_SECONDS = 120
# From Ctrl+C to exit: asr dictate's grace period for audio already captured (1 s), the chunk
# under way and leaving the interpreter, with room for a loaded machine.
EXIT_BOUND_SECONDS = 5.0


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def virtual_microphone(tmp_path):
    """A PulseAudio daemon with a pipe source as the default capture device; yields the FIFO."""
    if not (shutil.which("pulseaudio") and shutil.which("pactl")):
        pytest.skip("needs pulseaudio and pactl (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)")
    started = subprocess.run(["pactl", "info"], capture_output=True).returncode != 0
    if started:
        subprocess.run(
            ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix"],
            check=True, capture_output=True,
        )  # fmt: skip
        for _ in range(50):
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
    fifo = tmp_path / f"vmic-{uuid.uuid4().hex[:8]}.fifo"
    name = f"vmic_{uuid.uuid4().hex[:8]}"
    module = _pactl(
        "load-module", "module-pipe-source", f"source_name={name}", f"file={fifo}", "format=s16le",
        f"rate={RATE}", "channels=1",
    ).strip()  # fmt: skip
    _pactl("set-default-source", name)
    yield fifo
    subprocess.run(["pactl", "unload-module", module], capture_output=True)  # gone if the test killed the daemon
    if started:
        subprocess.run(["pulseaudio", "--kill"], capture_output=True)


def feed(fifo, audio: np.ndarray, stop: threading.Event, spoken: threading.Event) -> None:
    """Write ``audio`` then silence into the pipe source in real time until ``stop``: the pipe
    source only produces audio while something writes to it. Writes never block (once nobody
    records from the source, PulseAudio stops draining the FIFO): a full pipe drops the block."""
    block = RATE // 10
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    silence = np.zeros(block, dtype="<i2")
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        for start in [*range(0, len(pcm), block), None]:
            if start is None:
                spoken.set()
                break
            _write(fd, pcm[start : start + block].tobytes())
            time.sleep(0.1)
        while not stop.is_set():
            _write(fd, silence.tobytes())
            time.sleep(0.1)
    finally:
        os.close(fd)


def _write(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except (BlockingIOError, BrokenPipeError):  # a full pipe, or a sound server that is gone
        pass


@contextlib.contextmanager
def speaking(fifo, audio: np.ndarray) -> Iterator[threading.Event]:
    """Feed ``audio`` into the virtual microphone (then silence) from a thread for the duration
    of the block; yields the event set once all of ``audio`` has been written."""
    stop, spoken = threading.Event(), threading.Event()
    feeder = threading.Thread(target=feed, args=(fifo, audio, stop, spoken))
    feeder.start()
    try:
        yield spoken
    finally:
        stop.set()
        feeder.join()


def start_dictating(command: list[str], ignore_sigint: bool = False) -> tuple[subprocess.Popen, list[str]]:
    """Start ``asr dictate`` and wait until it listens (it says so on stderr); returns the
    process and the stderr lines read so far. ``ignore_sigint``: start it as a shell script
    starts a background job, with SIGINT ignored."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    setup = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=setup
    )
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:  # it exited
            break
        lines.append(line)
        if "listening on" in line:
            return process, lines
    process.kill()
    raise AssertionError("asr dictate never started listening:\n" + "".join(lines) + process.stderr.read())


def dictate_while_speaking(
    fifo, out, settle_seconds: float, stop, timeout: float, ignore_sigint: bool = False
) -> tuple[int, str, float]:
    """Run ``asr dictate --output out`` on the virtual microphone, speak the sample into it,
    wait ``settle_seconds``, then ``stop(process)``; returns its exit status, stderr, and the
    seconds from the stop to its exit."""
    command = [sys.executable, "-m", "asr.cli", "dictate", "--device", "pulse", "--output", str(out)]
    process, early = start_dictating(command, ignore_sigint)
    try:
        with speaking(fifo, load_audio(SAMPLE)) as spoken:
            spoken.wait(timeout=30)
            time.sleep(settle_seconds)
            stop(process)
            stopped = time.monotonic()
            _, stderr = process.communicate(timeout=timeout)
            took = time.monotonic() - stopped
    finally:
        process.kill()
    return process.returncode, "".join(early) + stderr, took


def heard_cer(out) -> tuple[float, str]:
    """CER of the dictated text in ``out`` against the sample's transcript, and the text."""
    reference = normalize_text(open(SAMPLE.replace(".wav", ".txt")).read())
    heard = " ".join(out.read_text().split())
    return error_rates([reference], [heard]).cer, heard


def test_dictate_transcribes_the_virtual_microphone(virtual_microphone, tmp_path):
    """The bundled streaming model (``asr dictate``'s default) hears the sample spoken into the
    virtual microphone and writes a sensible transcript of it."""
    out = tmp_path / "dictated.txt"
    status, stderr, took = dictate_while_speaking(
        virtual_microphone, out, 2.5, lambda process: process.send_signal(signal.SIGINT), timeout=30
    )
    assert status == 0, stderr
    assert took < EXIT_BOUND_SECONDS, stderr
    assert "listening on" in stderr
    dictated = float(stderr.split("dictated ")[1].split(" s")[0])
    assert dictated >= len(load_audio(SAMPLE)) / RATE  # at least as much audio as the speech arrived
    cer, heard = heard_cer(out)
    assert cer < MAX_CER, heard


def test_dictate_reports_a_lost_device_and_keeps_what_it_heard(virtual_microphone, tmp_path):
    """The sound server dies mid-dictation (as a microphone being unplugged): asr dictate says
    so, keeps the text heard before it, and exits with status 1 instead of crashing or hanging."""
    out = tmp_path / "dictated.txt"

    def unplug(process) -> None:  # the device goes away
        subprocess.run(["pulseaudio", "--kill"], check=True, capture_output=True)

    status, stderr, _ = dictate_while_speaking(virtual_microphone, out, 1.0, unplug, timeout=60)
    assert status == 1, stderr
    assert "stopped delivering audio" in stderr and "the text heard before it is kept" in stderr
    assert "Traceback" not in stderr
    cer, heard = heard_cer(out)
    assert cer < MAX_CER, heard


@pytest.mark.usefixtures("busy_machine")
def test_ctrl_c_ends_dictation_promptly_on_a_busy_machine_from_a_background_job(virtual_microphone, tmp_path):
    """Beside processes spinning on every core, and started as a script's background job is
    (SIGINT ignored, which it inherits), asr dictate still ends within the bound on Ctrl+C,
    with status 0, having closed the segment under way."""
    out = tmp_path / "dictated.txt"
    status, stderr, took = dictate_while_speaking(
        virtual_microphone, out, 0.5, lambda process: process.send_signal(signal.SIGINT), timeout=30,
        ignore_sigint=True,
    )  # fmt: skip
    assert status == 0, stderr
    assert took < EXIT_BOUND_SECONDS, stderr
    assert "Traceback" not in stderr
    assert out.read_text().strip()  # the speech was heard and its last segment flushed
