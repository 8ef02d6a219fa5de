import librosa
import numpy as np
import pytest
import torch

from asr.audio import SAMPLE_RATE, audio_duration, load_audio
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
