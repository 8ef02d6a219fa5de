import librosa
import numpy as np
import pytest
import torch

from asr.features import FeatureConfig, FeatureExtractor, IncrementalFeatures, LogMel, Normalizer, StatsAccumulator

CONFIG = FeatureConfig()


def test_frame_count_and_shape(speechlike):
    feats = LogMel(CONFIG)(torch.from_numpy(speechlike))
    assert feats.shape == (CONFIG.num_frames(speechlike.size), CONFIG.n_mels)
    assert CONFIG.num_frames(speechlike.size) == 1 + (32000 - 400) // 160
    assert CONFIG.num_frames(399) == 0


def test_log_mel_matches_librosa(speechlike):
    ours = LogMel(CONFIG)(torch.from_numpy(speechlike)).numpy()
    power = librosa.feature.melspectrogram(
        y=speechlike, sr=CONFIG.sample_rate, n_fft=CONFIG.window_samples, hop_length=CONFIG.hop_samples,
        win_length=CONFIG.window_samples, window="hann", center=False, power=2.0, n_mels=CONFIG.n_mels,
        fmin=CONFIG.f_min, fmax=CONFIG.f_max, htk=True, norm=None,
    )  # fmt: skip
    reference = np.log(np.maximum(power, CONFIG.log_floor)).T
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)


def test_pieces_give_the_same_frames_as_whole(speechlike):
    extractor = FeatureExtractor(CONFIG, Normalizer.identity(CONFIG.n_mels))
    whole = extractor(speechlike)
    rng = np.random.default_rng(1)
    for _ in range(5):
        stream = IncrementalFeatures(extractor)
        cuts = np.sort(rng.choice(np.arange(1, speechlike.size), size=rng.integers(1, 40), replace=False))
        frames = [stream.accept(piece) for piece in np.split(speechlike, cuts)]
        pieced = torch.cat(frames)
        assert pieced.shape == whole.shape
        torch.testing.assert_close(pieced, whole, atol=1e-5, rtol=1e-5)
        assert stream.buffer.size < CONFIG.window_samples


def test_incremental_with_tiny_pieces(speechlike):
    extractor = FeatureExtractor(CONFIG, Normalizer.identity(CONFIG.n_mels))
    stream = IncrementalFeatures(extractor)
    audio = speechlike[:4000]
    pieced = torch.cat([stream.accept(audio[i : i + 7]) for i in range(0, audio.size, 7)])
    torch.testing.assert_close(pieced, extractor(audio), atol=1e-5, rtol=1e-5)


def test_global_statistics_match_numpy():
    rng = np.random.default_rng(0)
    chunks = [torch.from_numpy(rng.normal(3.0, 2.0, size=(n, 4))) for n in (10, 50, 7)]
    stats = StatsAccumulator(4)
    for chunk in chunks:
        stats.add(chunk)
    everything = torch.cat(chunks).numpy()
    normalizer = stats.result()
    np.testing.assert_allclose(normalizer.mean, everything.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(normalizer.std, everything.std(axis=0), rtol=1e-9)
    normalised = normalizer(torch.from_numpy(everything)).numpy()
    np.testing.assert_allclose(normalised.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(normalised.std(axis=0), 1, atol=1e-9)


def test_normalisation_does_not_depend_on_the_utterance(speechlike):
    """Global statistics: a frame's value is the same whatever audio surrounds it."""
    normalizer = Normalizer(mean=tuple(range(CONFIG.n_mels)), std=(2.0,) * CONFIG.n_mels)
    extractor = FeatureExtractor(CONFIG, normalizer)
    torch.testing.assert_close(extractor(speechlike)[:50], extractor(speechlike[: 49 * 160 + 400]))


def test_no_frames_from_digital_silence_are_infinite():
    feats = LogMel(CONFIG)(torch.zeros(16000))
    assert torch.isfinite(feats).all()
    assert feats.min() == pytest.approx(np.log(CONFIG.log_floor))
