"""Formats libsndfile does not read, through FFmpeg (PyAV), and audio piped in on standard input.

Every file is made here from a real recording (``asr/samples/sample.wav``) by a real encoder:
FFmpeg's, through PyAV, the way ``ffmpeg -i talk.wav talk.m4a`` makes it (timestamps included,
so that the muxer records the encoder's delay as ffmpeg would). Decoded audio is compared with
the recording: its offset (the peak of the cross-correlation), its length and its likeness.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import scipy.signal
import soundfile

import asr
from asr.audio import SAMPLE_RATE, audio_duration, audio_info, load_audio, open_audio
from asr.errors import AudioError

SAMPLE = Path(asr.__file__).parent / "samples" / "sample.wav"
ONE_MS = SAMPLE_RATE // 1000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """``(T,)`` float32: 3.3 s of a real recording at 16 kHz."""
    waveform, rate = soundfile.read(str(SAMPLE), dtype="float32")
    assert rate == SAMPLE_RATE
    return waveform


class Pipe:
    """A write-only, unseekable output: what an encoder writing to ``-`` sees."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def seekable(self) -> bool:
        return False

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


def encode(target, speech: np.ndarray, codec: str, rate: int = SAMPLE_RATE, layout: str = "mono", **options):
    """Encode 16 kHz ``speech`` with FFmpeg's ``codec`` into ``target`` (a path or a :class:`Pipe`).

    Options: ``bit_rate``, ``format`` (the muxer), ``muxer_options``, ``video`` (add a small
    MPEG-4 video track), ``audio=False`` (the video alone).
    """
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder")
    with av.open(target, "w", format=options.get("format"), options=options.get("muxer_options", {})) as out:
        video = _video_stream(out) if options.get("video") else None
        if options.get("audio", True):
            stream = out.add_stream(codec, rate=rate, layout=layout)
            if options.get("bit_rate"):
                stream.bit_rate = options["bit_rate"]
            context = stream.codec_context
            pcm = np.round(speech * 32767).astype(np.int16)[None]  # (1, T): packed mono
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
            resampler = av.AudioResampler(
                format=context.codec.audio_formats[0].name, layout=layout, rate=rate,
                frame_size=context.frame_size or None,
            )  # fmt: skip
            for piece in resampler.resample(frame) + resampler.resample(None):
                out.mux(stream.encode(piece))
            out.mux(stream.encode(None))
        if video is not None:
            for i in range(int(len(speech) / SAMPLE_RATE * video.codec_context.framerate)):
                picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * i % 256, np.uint8), format="rgb24")
                picture.pts = i
                out.mux(video.encode(picture))
            out.mux(video.encode(None))
    return target


def _video_stream(out):
    """A small MPEG-4 video track at 25 frames a second (every stream is added before muxing)."""
    video = out.add_stream("mpeg4", rate=25)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    return video


def offset(decoded: np.ndarray, reference: np.ndarray) -> int:
    """Samples by which ``decoded`` lags ``reference`` (negative: early)."""
    correlation = scipy.signal.correlate(decoded, reference, mode="full", method="fft")
    return int(np.argmax(correlation)) - (len(reference) - 1)


def likeness(decoded: np.ndarray, reference: np.ndarray) -> float:
    """Normalised correlation of the two once aligned (by :func:`offset`): 1 for the same signal."""
    lag = offset(decoded, reference)
    a, b = (decoded[lag:], reference) if lag >= 0 else (decoded, reference[-lag:])
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


# name -> (file name, codec, rate, layout, encoder options, decoded length may exceed by: samples at 16 kHz)
FFMPEG_ONLY = {
    "M4A (AAC, 44.1 kHz stereo)": ("talk.m4a", "aac", 44100, "stereo", {}, ONE_MS),
    "MP4 (AAC)": ("talk.mp4", "aac", 16000, "mono", {}, ONE_MS),
    "MOV (AAC, 48 kHz)": ("talk.mov", "aac", 48000, "stereo", {}, ONE_MS),
    "MP4 video with an audio track": ("clip.mp4", "aac", 16000, "mono", {"video": True}, ONE_MS),
    "MOV video with an audio track": ("clip.mov", "aac", 48000, "stereo", {"video": True}, ONE_MS),
    "WebM (Opus)": ("talk.webm", "libopus", 48000, "mono", {}, ONE_MS),
    "Matroska (Opus)": ("talk.mka", "libopus", 48000, "stereo", {}, ONE_MS),
    "WMA": ("talk.wma", "wmav2", 16000, "mono", {"bit_rate": 32000}, 512),  # one WMA frame
}


@pytest.mark.parametrize("name", list(FFMPEG_ONLY))
def test_what_libsndfile_cannot_read_is_decoded_by_ffmpeg_in_place(speech, tmp_path, name):
    filename, codec, rate, layout, options, slack = FFMPEG_ONLY[name]
    path = encode(str(tmp_path / filename), speech, codec, rate, layout, **options)
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.info(path)  # so the file takes the FFmpeg path
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert likeness(audio, speech) > 0.98
    if codec == "wmav2":  # FFmpeg's WMA decoder drops one frame of its encoder's delay too many
        assert abs(offset(audio, speech)) <= slack and abs(len(audio) - len(speech)) <= slack
        return
    assert abs(offset(audio, speech)) <= 1  # AAC priming and Opus pre-skip trimmed
    assert -ONE_MS <= len(audio) - len(speech) <= slack  # and the encoder's padding at the end
    assert audio_duration(path) == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.02)


def test_an_ffmpeg_file_reads_in_blocks_as_it_reads_whole(speech, tmp_path):
    path = encode(str(tmp_path / "talk.m4a"), speech, "aac", 44100, "stereo")
    with open_audio(path) as reader:
        assert (reader.samplerate, reader.channels) == (44100, 2)
        assert reader.frames == pytest.approx(len(speech) * 44100 / SAMPLE_RATE, abs=100)
        blocks = []
        while len(block := reader.read(1000)) == 1000:
            blocks.append(block)
        blocks.append(block)
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path, sample_rate=44100))


def test_an_ffmpeg_file_is_decoded_as_it_is_read_not_when_opened(speech, tmp_path):
    long = np.tile(speech, 18)  # a minute
    path = encode(str(tmp_path / "long.webm"), long, "libopus", 48000)
    with open_audio(path) as reader:
        first = reader.read(4800)
        os.truncate(path, os.path.getsize(path) // 4)  # what was not decoded yet is gone
        rest = [reader.read(48000) for _ in range(60)]
    decoded = len(first) + sum(len(r) for r in rest)
    assert len(first) == 4800 and decoded < 0.5 * len(long) * 3


@pytest.mark.parametrize(
    "name, make, problem",
    [
        ("random bytes", lambda p, s: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not a readable audio file"),
        ("empty", lambda p, s: p.write_bytes(b""), "not a readable audio file"),
        ("truncated before its index", lambda p, s: _truncated_m4a(p, s), "not a readable audio file"),
        ("video without sound", lambda p, s: encode(str(p), s, "aac", video=True, audio=False), "no audio track"),
    ],
)
def test_what_no_decoder_reads_is_one_line_naming_the_file(speech, tmp_path, capfd, name, make, problem):
    path = tmp_path / "broken.mp4"
    make(path, speech)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    assert capfd.readouterr().err == ""  # neither FFmpeg's log nor PyAV's tracebacks


def _truncated_m4a(path: Path, speech: np.ndarray) -> None:
    encode(str(path), speech, "aac")  # the index (moov) is written last: half a file lacks it
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_webm_cut_short_gives_the_audio_before_the_cut(speech, tmp_path, capfd):
    path = encode(str(tmp_path / "cut.webm"), speech, "libopus", 48000)
    path_bytes = Path(path).read_bytes()
    Path(path).write_bytes(path_bytes[: int(len(path_bytes) * 0.6)])
    audio = load_audio(path)
    assert 0.4 * len(speech) < len(audio) < 0.8 * len(speech)
    assert abs(offset(audio, speech[: len(audio)])) <= 1
    assert capfd.readouterr().err == ""


# --- standard input ---------------------------------------------------------------------------


def piped(speech: np.ndarray, codec: str, muxer: str, **options) -> bytes:
    """What ``ffmpeg -i talk.wav -f MUXER -`` writes: the muxer cannot seek back to fill in sizes."""
    return encode(Pipe(), speech, codec, format=muxer, **options).getvalue()


def soundfile_bytes(speech: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, speech, SAMPLE_RATE, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def stdin_pipe(monkeypatch):
    """Feed bytes to ``sys.stdin`` through a real OS pipe, written from another thread."""

    def feed(data: bytes) -> None:
        read_end, write_end = os.pipe()

        def write() -> None:
            with os.fdopen(write_end, "wb") as w:
                w.write(data)

        threading.Thread(target=write, daemon=True).start()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(read_end, "rb")))

    return feed


# name -> (the bytes piped in, decoded length may exceed the original's by: samples)
PIPED = {
    "ffmpeg -f wav -": (lambda s: piped(s, "pcm_s16le", "wav"), 0),
    "ffmpeg -f flac -": (lambda s: piped(s, "flac", "flac"), 0),
    "ffmpeg -f mp3 - (no Xing tag)": (lambda s: piped(s, "libmp3lame", "mp3"), 576),
    "ffmpeg -f ogg - (Opus)": (lambda s: piped(s, "libopus", "ogg", rate=48000), 0),
    "ffmpeg -f webm - (Opus)": (lambda s: piped(s, "libopus", "webm", rate=48000), 0),
    "cat talk.flac": (lambda s: soundfile_bytes(s, format="FLAC"), 0),
    "cat talk.ogg (Vorbis)": (lambda s: soundfile_bytes(s, format="OGG", subtype="VORBIS"), ONE_MS),
    "cat talk.mp3": (lambda s: soundfile_bytes(s, format="MP3"), 0),
}


@pytest.mark.parametrize("name", list(PIPED))
def test_dash_reads_standard_input(speech, stdin_pipe, name):
    make, slack = PIPED[name]
    stdin_pipe(make(speech))
    audio = load_audio("-")
    assert abs(offset(audio, speech)) <= 1
    assert 0 <= len(audio) - len(speech) <= slack
    assert likeness(audio, speech) > 0.98


def test_an_m4a_piped_in_is_read_though_its_index_comes_last(speech, tmp_path, stdin_pipe):
    stdin_pipe(Path(encode(str(tmp_path / "talk.m4a"), speech, "aac")).read_bytes())
    audio = load_audio("-")
    assert abs(offset(audio, speech)) <= 1 and abs(len(audio) - len(speech)) <= ONE_MS


def test_dash_through_a_real_pipe_into_another_process(speech):
    script = "import sys, numpy as np; from asr.audio import load_audio; np.save(sys.stdout.buffer, load_audio('-'))"
    result = subprocess.run(
        [sys.executable, "-c", script], input=piped(speech, "pcm_s16le", "wav"), capture_output=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(SAMPLE.parents[2])},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    audio = np.load(io.BytesIO(result.stdout))
    np.testing.assert_allclose(audio, speech, atol=1 / 32768)  # 16-bit PCM, exact but for rounding


def test_a_model_transcribes_standard_input_read_first(speech, stdin_pipe, tiny_checkpoint):
    # What `asr transcribe -` runs: standard input read once, the waveform transcribed.
    model = asr.load_model(tiny_checkpoint)
    stdin_pipe(piped(speech, "libopus", "webm", rate=48000))
    waveform = load_audio("-", model.sample_rate, model.min_samples)
    assert model.transcribe(waveform).duration == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.001)


def test_a_stream_reads_like_a_file(speech):
    audio = load_audio(io.BytesIO(piped(speech, "aac", "adts")))
    assert likeness(audio, speech) > 0.98 and offset(audio, speech) > 0  # raw ADTS keeps its priming


@pytest.mark.parametrize(
    "data, problem",
    [(b"", "<stdin>: not a readable audio file (nothing came in"), (b"hello\n" * 50, "<stdin>: not a readable")],
)
def test_bad_standard_input_is_one_line(stdin_pipe, data, problem):
    stdin_pipe(data)
    with pytest.raises(AudioError) as caught:
        load_audio("-")
    assert str(caught.value).startswith(problem) and "\n" not in str(caught.value)


def test_a_terminal_on_standard_input_is_refused(monkeypatch):
    controller, terminal = os.openpty()
    try:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(terminal, "rb")))
        with pytest.raises(AudioError, match="<stdin>: is a terminal"):
            load_audio("-")
    finally:
        os.close(controller)


def test_standard_input_has_no_header_to_ask(speech):
    with pytest.raises(AudioError, match="<stdin>: its length is not known before it is read"):
        audio_info("-")


def test_a_file_named_dash_is_dot_slash_dash(speech, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("-").write_bytes(soundfile_bytes(speech, format="WAV"))
    np.testing.assert_allclose(load_audio("./-"), speech, atol=1 / 32768)
