"""Microphone overflow: PortAudio flags a block after audio was dropped because the machine fell
behind. Dictation counts it, warns, and carries on.

A real overflow cannot be provoked on demand through PulseAudio (it buffers a stalled client for
minutes), so PortAudio is stood in for here: a stream that calls the real
:class:`streaming.audio_source.Microphone` callback from its own thread with real
``sounddevice.CallbackFlags``, one block every 100 ms as a device does (or all at once: a reader
that stalled). The real device path is tested in tests/test_dictate_device.py.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time

import numpy as np
import pytest

from asr.tokenizer import CharTokenizer
from streaming import Recognizer
from tests.test_streaming import random_streaming_model

sounddevice = pytest.importorskip("sounddevice", exc_type=OSError)

RATE = 16_000
BLOCK = RATE // 10
OVERFLOWED_BLOCKS = {3, 4, 9}
POLL_SECONDS = 0.05


class StandInPortAudio:
    """What :class:`Microphone` uses of the sounddevice module, delivering ``audio`` in blocks."""

    PortAudioError = sounddevice.PortAudioError

    def __init__(self, audio: np.ndarray, interrupt_at_end: bool, paced: bool = True) -> None:
        self.audio = audio
        self.interrupt_at_end = interrupt_at_end  # then Ctrl+C once all is delivered
        self.paced = paced  # a block every BLOCK / RATE seconds, as a device delivers them

    def query_devices(self, device=None, kind=None) -> dict:
        return {"name": "stand-in microphone", "default_samplerate": RATE, "max_input_channels": 1}

    def InputStream(self, callback, blocksize: int, **kwargs):  # noqa: N802 - sounddevice's name
        return StandInStream(self, callback, blocksize)


class StandInStream:
    def __init__(self, portaudio: StandInPortAudio, callback, blocksize: int) -> None:
        self.portaudio, self.callback, self.blocksize = portaudio, callback, blocksize
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.active = False

    def start(self) -> None:
        self.active = True
        self.thread.start()

    def _run(self) -> None:
        audio = self.portaudio.audio
        for index, start in enumerate(range(0, len(audio), self.blocksize)):
            status = sounddevice.CallbackFlags()
            status.input_overflow = index in OVERFLOWED_BLOCKS
            block = audio[start : start + self.blocksize, None]
            self.callback(block, len(block), None, status)
            if self.portaudio.paced:
                time.sleep(BLOCK / RATE)
        if self.portaudio.interrupt_at_end:
            delivered = self.callback.__self__.blocks  # the microphone's queue
            while not delivered.empty():  # the user waits for the last words, then presses Ctrl+C
                time.sleep(POLL_SECONDS)
            time.sleep(POLL_SECONDS)
            _thread.interrupt_main()
        self.active = False

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        pass


@pytest.fixture
def streaming_model(tmp_path, speechlike):
    return random_streaming_model(tmp_path, speechlike, CharTokenizer())


@pytest.fixture
def talk(speechlike) -> np.ndarray:
    audio = np.concatenate([speechlike, np.zeros(RATE, dtype=np.float32), speechlike])
    return audio[: len(audio) // BLOCK * BLOCK]


def test_overflows_are_counted_and_warned_about_and_dictation_goes_on(
    streaming_model, talk, monkeypatch, caplog, tmp_path
):
    import io

    from streaming import audio_source
    from streaming.dictate import Display, dictate

    monkeypatch.setattr(audio_source, "import_sounddevice", lambda: StandInPortAudio(talk, interrupt_at_end=False))
    microphone = audio_source.Microphone()
    blocks = len(talk) // BLOCK

    class Delivered:  # the microphone until everything was delivered
        stats = microphone.stats

        def __iter__(self):
            for count, block in enumerate(microphone, start=1):
                yield block
                if count == blocks:
                    return

    out = tmp_path / "dictated.txt"
    with caplog.at_level(logging.WARNING):
        report = dictate(Recognizer(streaming_model), Delivered(), RATE, Display(io.StringIO(), live=False), out)
    assert report.overflows == len(OVERFLOWED_BLOCKS) and report.blocks == blocks
    assert report.device_error is None
    assert f"the input overflowed {len(OVERFLOWED_BLOCKS)} times" in caplog.text
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(talk)
    expected = [s.text for s in stream.finish().segments]
    assert [s.text for s in report.transcript.segments] == expected and expected
    assert out.read_text().splitlines() == expected


def test_asr_dictate_reports_overflows_and_exits_cleanly(streaming_model, talk, monkeypatch, capsys):
    from asr.cli.main import main
    from streaming import audio_source

    monkeypatch.setattr(audio_source, "import_sounddevice", lambda: StandInPortAudio(talk, interrupt_at_end=True))
    assert main(["dictate", "--model", str(streaming_model.name)]) == 0
    captured = capsys.readouterr()
    assert "listening on stand-in microphone" in captured.err
    assert f"{len(OVERFLOWED_BLOCKS)} input overflow(s) (audio was lost)" in captured.err
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(talk)
    assert captured.out.split() == stream.finish().text.split() != []  # nothing after the overflows was lost
