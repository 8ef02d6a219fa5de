import logging
import os
import threading

import librosa
import numpy as np
import pytest
import soundfile
import torch

from asr.audio import READ_BLOCK_FRAMES, SAMPLE_RATE, audio_duration, audio_info, load_audio, open_audio, resample
from asr.audio_mp3 import MAX_KEPT_LINES, DecoderMessages
from asr.errors import AudioError

WINDOW = 400


@pytest.mark.parametrize(
    "name, kwargs, tolerance",
    [
        ("a.wav", {"subtype": "PCM_16"}, 1e-3),
        ("a.flac", {}, 1e-3),
        ("a.ogg", {"format": "OGG", "subtype": "OPUS"}, None),
        ("a.ogg", {"format": "OGG", "subtype": "VORBIS"}, None),
        ("a.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}, None),
    ],
)
def test_formats_load_as_mono_float32(write_audio, speechlike, name, kwargs, tolerance):
    path = write_audio(name, speechlike, **kwargs)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs pad and delay; the length stays within 100 ms and the level is kept.
    assert abs(audio.size - speechlike.size) < SAMPLE_RATE // 10
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(np.sqrt(np.mean(speechlike**2)), rel=0.25)
    if tolerance is not None:
        np.testing.assert_allclose(audio, speechlike, atol=tolerance)


def test_stereo_is_averaged(write_audio, speechlike):
    stereo = np.stack([speechlike, np.zeros_like(speechlike)], axis=1)
    audio = load_audio(write_audio("s.wav", stereo, subtype="FLOAT"))
    np.testing.assert_allclose(audio, speechlike / 2, atol=1e-6)


def test_resampling_matches_librosa(write_audio, speechlike):
    at_44k = librosa.resample(speechlike, orig_sr=SAMPLE_RATE, target_sr=44100)
    audio = load_audio(write_audio("r.wav", at_44k, rate=44100, subtype="FLOAT"))
    reference = librosa.resample(at_44k, orig_sr=44100, target_sr=SAMPLE_RATE)
    n = min(audio.size, reference.size)
    assert abs(audio.size - reference.size) <= 1
    # Different sinc windows; compare away from the edges.
    np.testing.assert_allclose(audio[200 : n - 200], reference[200 : n - 200], atol=2e-2)


def test_arrays_and_tensors_are_accepted(speechlike):
    np.testing.assert_array_equal(load_audio(speechlike), speechlike)
    np.testing.assert_array_equal(load_audio(torch.from_numpy(speechlike)), speechlike)
    assert load_audio(speechlike.astype(np.float64)).dtype == np.float32


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: no such file"):
        load_audio(tmp_path / "missing.wav")


def test_not_audio_is_named(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(path)


def test_empty_audio_is_rejected(write_audio):
    with pytest.raises(AudioError, match="empty.wav: audio is empty"):
        load_audio(write_audio("empty.wav", np.zeros(0, dtype=np.float32)))


def test_shorter_than_a_frame_is_rejected(write_audio):
    with pytest.raises(AudioError, match="short.wav: .*shorter than one feature frame"):
        load_audio(write_audio("short.wav", np.zeros(WINDOW - 1, dtype=np.float32)), min_samples=WINDOW)


def test_nan_samples_are_rejected(write_audio, speechlike):
    bad = speechlike.copy()
    bad[100] = np.nan
    with pytest.raises(AudioError, match="nan.wav: audio contains NaN"):
        load_audio(write_audio("nan.wav", bad, subtype="FLOAT"))
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(np.array([0.0, np.inf] * 300, dtype=np.float32))


def test_duration_from_header(write_audio, speechlike):
    assert audio_duration(write_audio("d.flac", speechlike)) == pytest.approx(2.0)


# --- MP3: the decoder's delay, and what libmpg123 prints ------------------------------------------


def mp3(path, speech: np.ndarray, rate: int, how: str):
    """``speech`` (16 kHz) encoded as MP3 at ``rate`` by a real LAME: libsndfile's ("cbr", "vbr",
    or "low cbr", whose small first frame has no room for a Xing tag) or FFmpeg's ("ffmpeg" to a
    file, "ffmpeg pipe" to a pipe, where it cannot go back to write the tag)."""
    from tests.test_audio_formats import encode, piped

    if how.startswith("ffmpeg"):
        if how == "ffmpeg pipe":
            path.write_bytes(piped(speech, "libmp3lame", "mp3", rate=rate))
        else:
            encode(str(path), speech, "libmp3lame", rate)
        return path
    options = {"cbr": {"bitrate_mode": "CONSTANT"}, "vbr": {"bitrate_mode": "VARIABLE"}}.get(how)
    options = options or {"bitrate_mode": "CONSTANT", "compression_level": 0.9}
    soundfile.write(str(path), resample(speech, SAMPLE_RATE, rate), rate, format="MP3", **options)
    return path


# (rate, encoder): MPEG-1 at 44.1 and 48 kHz, MPEG-2 at 16 kHz, MPEG-2.5 at 8 kHz; with a LAME
# tag (trimmed by libmpg123 itself) or without one ("low cbr", "ffmpeg pipe")
MP3S = [
    (16000, "low cbr"), (8000, "low cbr"), (48000, "low cbr"), (16000, "ffmpeg pipe"), (44100, "ffmpeg pipe"),
    (16000, "cbr"), (16000, "vbr"), (44100, "ffmpeg"),
]  # fmt: skip


@pytest.mark.parametrize("rate, how", MP3S)
def test_mp3_decodes_aligned_to_its_source(tmp_path, rate, how):
    from tests.test_audio_formats import SAMPLE, offset

    speech, _ = soundfile.read(str(SAMPLE), dtype="float32")
    audio = load_audio(mp3(tmp_path / "talk.mp3", speech, rate, how))
    # Untrimmed, the decoder's 1105 samples of delay made every word 69 ms late at 16 kHz.
    assert abs(offset(audio, speech)) <= 1
    frame = (1152 if rate > 24000 else 576) * SAMPLE_RATE / rate  # an MP3 frame, at 16 kHz
    assert -2 <= audio.size - speech.size < frame + 2  # at most the unrecorded padding remains


def test_mp3_header_length_is_the_trimmed_length(tmp_path):
    from tests.test_audio_formats import SAMPLE

    speech, _ = soundfile.read(str(SAMPLE), dtype="float32")
    path = mp3(tmp_path / "talk.mp3", speech, SAMPLE_RATE, "low cbr")
    assert audio_info(path).frames == load_audio(path).size


LOW_BITRATE = {
    "libsndfile, 16 kHz, lowest bitrate": lambda p, s: soundfile.write(
        str(p), s, SAMPLE_RATE, format="MP3", bitrate_mode="CONSTANT", compression_level=0.99
    ),
    "ffmpeg, 8 kHz, 8 kbit/s": lambda p, s: __import__("tests.test_audio_formats").test_audio_formats.encode(
        str(p), s, "libmp3lame", 8000, bit_rate=8000
    ),
}


def _read_as_soundfile_users_do(path) -> None:
    with soundfile.SoundFile(str(path)) as f:  # as the old loader and asr.longform read
        while len(f.read(READ_BLOCK_FRAMES, dtype="float32")):
            pass


@pytest.mark.parametrize("name", list(LOW_BITRATE))
def test_a_low_bitrate_mp3_reads_without_decoder_noise(tmp_path, capfd, caplog, name):
    from tests.test_audio_formats import SAMPLE

    speech, _ = soundfile.read(str(SAMPLE), dtype="float32")
    path = tmp_path / "low.mp3"
    LOW_BITRATE[name](path, speech)
    _read_as_soundfile_users_do(path)
    assert "part2_3_length" in capfd.readouterr().err  # the file does make libmpg123 complain
    audio = load_audio(path)
    with open_audio(path) as reader:
        while len(reader.read(1000)) == 1000:  # block sizes that split MP3 frames
            pass
    assert capfd.readouterr().err == "" and not caplog.records  # a healthy file: nothing to say
    assert audio.size == pytest.approx(speech.size, abs=SAMPLE_RATE // 20)


def test_a_damaged_mp3_gives_one_warning_naming_the_file(tmp_path, capfd, caplog):
    from tests.test_audio_formats import SAMPLE

    speech, _ = soundfile.read(str(SAMPLE), dtype="float32")
    path = tmp_path / "damaged.mp3"
    LOW_BITRATE["libsndfile, 16 kHz, lowest bitrate"](path, speech)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + data[len(data) // 2 + 100 :])  # 100 bytes lost mid-file
    soundfile.read(str(path))
    assert "mpg123" in capfd.readouterr().err  # libmpg123 reports the damage
    with caplog.at_level(logging.WARNING):
        audio = load_audio(path)
    assert capfd.readouterr().err == ""
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage() and audio.size > speech.size // 2


def test_decoder_messages_keep_the_decoders_lines_and_pass_on_the_rest(capfd, caplog):
    messages = DecoderMessages("talk.mp3")
    with messages.captured():
        os.write(2, b"[src/libmpg123/layer3.c:INT123_do_layer3():1774] error: part2_3_length (9) too large\n")
        os.write(2, b"someone else's line\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "someone else's line\nafter\n"
    messages.close()
    assert [r.getMessage() for r in caplog.records] == [
        "talk.mp3: the MP3 decoder met damage and decoded past it (1 message(s); the first: "
        "part2_3_length (9) too large)"
    ]


def test_decoder_messages_from_several_threads_stay_apart(capfd):
    readers = [DecoderMessages(f"{i}.mp3") for i in range(4)]

    def work(messages: DecoderMessages) -> None:
        for _ in range(50):
            with messages.captured():
                os.write(2, f"Note: from {messages.name}\n".encode())

    threads = [threading.Thread(target=work, args=(m,)) for m in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # file descriptor 2 is back where it was
    assert all(m.count == 50 and m.lines == [f"Note: from {m.name}"] * MAX_KEPT_LINES for m in readers)
    for m in readers:
        m.close()


def test_integer_pcm_is_scaled_to_floats_and_other_integers_are_refused():
    import numpy as np
    import pytest

    from asr.audio import float_samples, validate_waveform
    from asr.errors import AudioError

    full = np.array([-32768, -16384, 0, 16384, 32767], dtype=np.int16)
    assert validate_waveform(full, "x", 1).tolist() == pytest.approx([-1.0, -0.5, 0.0, 0.5, 32767 / 32768])
    assert validate_waveform(full, "x", 1).dtype == np.float32
    assert float_samples(np.array([-(2**31), 2**30], dtype=np.int32), "x").tolist() == [-1.0, 0.5]
    assert float_samples(np.array([0, 64, 128, 255], dtype=np.uint8), "x").tolist() == [-1.0, -0.5, 0.0, 127 / 128]
    assert float_samples(np.array([-128, 64], dtype=np.int8), "x").tolist() == [-1.0, 0.5]
    assert float_samples(np.zeros((4, 2), dtype=np.int16), "x").shape == (4, 2)  # any shape
    floats = np.array([0.25, -0.5], dtype=np.float64)
    assert float_samples(floats, "x").dtype == np.float32 and float_samples(floats, "x").tolist() == [0.25, -0.5]
    for dtype in (np.int64, np.uint16, np.bool_, np.complex64):
        with pytest.raises(AudioError, match=f"<chunk>: samples of dtype {np.dtype(dtype)}"):
            validate_waveform(np.zeros(4, dtype=dtype), "<chunk>", 1)
