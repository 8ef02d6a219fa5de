import math

import numpy as np
import pytest
import torch

from asr.audio import SAMPLE_RATE
from asr.features import FeatureConfig, FeatureExtractor, Normalizer
from asr.train.augment import (
    LOG_POWER_PER_DB,
    SpecAugment,
    SpecAugmentConfig,
    add_noise,
    band_limit,
    colored_noise,
    reverberate,
    shift_level,
    speed_perturb,
    synthetic_rir,
    warp_frequencies,
)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_duration_and_pitch(factor):
    rate = 16000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    faster = speed_perturb(tone, factor, rate)
    assert faster.size == pytest.approx(rate / factor, abs=2)
    peak_hz = np.argmax(np.abs(np.fft.rfft(faster))) * rate / faster.size
    assert peak_hz == pytest.approx(1000 * factor, rel=0.01)
    assert speed_perturb(tone, 1.0, rate) is tone


def test_specaugment_masks_each_utterance_independently():
    torch.manual_seed(0)
    augment = SpecAugment(SpecAugmentConfig(freq_masks=1, time_masks=1, time_mask_max_ratio=1.0))
    feats = torch.ones(8, 200, 80)
    masked = augment(feats)
    assert masked.shape == feats.shape
    zero_bins = (masked == 0).all(dim=1)  # (N, F): bins masked over all time
    assert zero_bins.any()
    assert len({tuple(row.tolist()) for row in zero_bins}) > 1
    assert set(masked.unique().tolist()) <= {0.0, 1.0}


def band_energy(waveform: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(waveform)) ** 2
    freqs = np.fft.rfftfreq(len(waveform), 1 / SAMPLE_RATE)
    return float(spectrum[(freqs >= low_hz) & (freqs < high_hz)].sum())


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_asked_snr(snr_db, speechlike):
    rng = np.random.default_rng(0)
    speech = speechlike
    noisy = add_noise(speech, snr_db, exponent=1.0, rng=rng)
    noise = noisy - speech
    measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(measured - snr_db) < 0.1


def test_noise_color_follows_its_exponent():
    rng = np.random.default_rng(0)
    white, brown = colored_noise(SAMPLE_RATE, 0.0, rng), colored_noise(SAMPLE_RATE, 2.0, rng)
    for noise in (white, brown):
        assert abs(np.mean(noise.astype(np.float64) ** 2) - 1.0) < 1e-3
    low_to_high = [band_energy(n, 50, 500) / band_energy(n, 4000, 8000) for n in (white, brown)]
    # White noise has equal power per hertz, so the 450 Hz band holds ~1/9 of the 4 kHz band.
    assert 0.05 < low_to_high[0] < 0.2
    assert low_to_high[1] > 100


def test_reverberation_keeps_length_and_peak_and_spreads_energy_in_time():
    rng = np.random.default_rng(0)
    click = np.zeros(SAMPLE_RATE, dtype=np.float32)
    click[100] = 0.5
    wet = reverberate(click, rt60=0.4, sample_rate=SAMPLE_RATE, rng=rng)
    assert wet.shape == click.shape and wet.dtype == np.float32
    assert np.isclose(np.abs(wet).max(), 0.5)
    tail = wet[100 + SAMPLE_RATE // 20 : 100 + SAMPLE_RATE // 10]  # 50-100 ms after the click
    assert np.sqrt(np.mean(tail**2)) > 1e-3
    assert np.abs(wet[100 + int(0.5 * SAMPLE_RATE) :]).max() < 1e-6  # FFT round-off only after the 0.4 s tail


def test_rir_decays_by_about_60_db_over_rt60():
    rir = synthetic_rir(0.5, SAMPLE_RATE, np.random.default_rng(0))
    assert len(rir) == SAMPLE_RATE // 2
    early = np.sqrt(np.mean(rir[1:800] ** 2))
    late = np.sqrt(np.mean(rir[-800:] ** 2))
    assert 40 < 20 * np.log10(early / late) < 70


def test_band_limit_removes_energy_above_the_narrow_band():
    rng = np.random.default_rng(0)
    white = colored_noise(SAMPLE_RATE, 0.0, rng)
    narrow = band_limit(white, SAMPLE_RATE)
    assert narrow.shape == white.shape
    # The resampler's transition band ends a little above 4 kHz; beyond it, -30 dB or more.
    assert band_energy(narrow, 4500, 8000) < 1e-3 * band_energy(white, 4500, 8000)
    assert band_energy(narrow, 300, 3000) > 0.9 * band_energy(white, 300, 3000)


def test_frequency_warp_moves_a_formant_and_keeps_the_ends():
    feats = torch.zeros(2, 3, 80)
    feats[:, :, 30] = 1.0  # one "formant" at bin 30
    warped = warp_frequencies(feats, torch.tensor([1.1, 0.9]), cutoff=0.8)
    assert warped.shape == feats.shape
    # Output bin j reads input position j / factor: the peak moves to 30 * factor.
    assert warped[0, 0].argmax().item() == 33
    assert warped[1, 0].argmax().item() == 27
    ramp = torch.arange(80, dtype=torch.float32).expand(1, 1, 80)
    for factor in (0.85, 1.15):
        out = warp_frequencies(ramp, torch.tensor([factor]), cutoff=0.8)[0, 0]
        assert out[0] == 0 and out[-1] == pytest.approx(79)
        assert (out.diff() > 0).all()  # monotonic: no bin order is swapped


def test_frequency_warp_of_one_is_the_identity():
    feats = torch.randn(3, 50, 80)
    assert torch.allclose(warp_frequencies(feats, torch.ones(3), cutoff=0.8), feats, atol=1e-5)


def test_specaugment_warps_each_utterance_differently():
    torch.manual_seed(0)
    config = SpecAugmentConfig(freq_masks=0, time_masks=0, frequency_warp=0.1)
    feats = torch.randn(1, 40, 80).expand(4, 40, 80).contiguous()
    out = SpecAugment(config)(feats)
    assert not torch.allclose(out[0], out[1])
    assert torch.allclose(SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0))(feats), feats)


def test_frequency_warp_out_of_range_is_refused():
    with pytest.raises(ValueError, match="frequency_warp"):
        SpecAugmentConfig(frequency_warp=0.3)


def test_level_shift_of_features_matches_features_of_louder_audio(speechlike):
    """Shifting normalised log-mel by a gain gives the features of the audio scaled by it."""
    extractor = FeatureExtractor(FeatureConfig(), Normalizer(mean=(-6.0,) * 80, std=(3.0,) * 80))
    audio = 0.05 * speechlike
    audio[: SAMPLE_RATE // 4] = 0.0  # digital silence stays at the floor whatever the gain
    base = extractor(audio).unsqueeze(0)
    for gain_db in (-12.0, 9.0):
        louder = extractor(audio * 10 ** (gain_db / 20)).unsqueeze(0)
        shifted = shift_level(base, torch.tensor([gain_db]), extractor.normalizer, extractor.config.log_floor)
        # Power below the floor is lost: only bins above it in the original can follow the gain.
        heard = base > (math.log(extractor.config.log_floor) + 6.0) / 3.0 + 1e-3
        assert heard.float().mean() > 0.7
        torch.testing.assert_close(shifted[heard], louder[heard], atol=2e-3, rtol=0)
        torch.testing.assert_close(shifted[:, :20], louder[:, :20])  # the silence, floored in both
        assert not torch.allclose(shifted, base, atol=0.1)


def test_specaugment_moves_each_utterances_level_by_a_gain_within_its_bound():
    normalizer = Normalizer(mean=(0.0,) * 4, std=(1.0,) * 4)
    features = torch.zeros(64, 10, 4)
    augment = SpecAugment(SpecAugmentConfig(freq_masks=0, time_masks=0, gain_db=6.0), normalizer, 1e-6)
    shifts = augment(features)[:, 0, 0] / LOG_POWER_PER_DB  # in dB: every frame of one utterance alike
    assert torch.all(shifts.abs() <= 6.0) and shifts.std() > 1.0
    assert torch.allclose(augment(features)[:, :, 0].std(dim=1), torch.zeros(64), atol=1e-5)
    with pytest.raises(ValueError, match="normalizer"):
        SpecAugment(SpecAugmentConfig(gain_db=6.0))
    with pytest.raises(ValueError, match="gain_db"):
        SpecAugmentConfig(gain_db=-1.0)
