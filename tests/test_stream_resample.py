"""The streaming resampler gives exactly torchaudio's whole-signal resampling, however it is fed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from streaming.resample import StreamingResampler


@pytest.mark.parametrize("orig_rate", [48_000, 44_100, 22_050, 8_000, 16_000])
def test_blockwise_equals_whole(orig_rate):
    rng = np.random.default_rng(orig_rate)
    signal = rng.standard_normal(orig_rate * 2 + 123).astype(np.float32)
    whole = torchaudio.functional.resample(torch.from_numpy(signal), orig_rate, 16_000).numpy()
    resampler = StreamingResampler(orig_rate, 16_000)
    pieces, position = [], 0
    while position < len(signal):
        size = int(rng.integers(0, 3000))
        pieces.append(resampler.accept(signal[position : position + size]))
        position += size
    pieces.append(resampler.flush())
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
