import numpy as np
import pytest
import torch

from asr.augment import SpecAugment, SpecAugmentConfig, speed_perturb


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
