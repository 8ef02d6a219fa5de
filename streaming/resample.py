"""Resampling audio that arrives in blocks, with exactly the result of resampling it whole.

Microphones deliver their native rate (often 44.1 or 48 kHz) in blocks; the model wants
16 kHz. Resampling each block on its own would put filter edges at every block boundary, so
this applies torchaudio's band-limited sinc kernel as a running convolution: each output block
is computed once all the input its kernel covers has arrived. After :meth:`flush`, the output is
identical to ``torchaudio.functional.resample`` of the whole signal (a test checks it).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchaudio.functional.functional import _get_sinc_resample_kernel  # the kernel resample() uses


class StreamingResampler:
    """``orig_rate`` -> ``new_rate``; feed ``(T,)`` float32 blocks, get resampled blocks back."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig_rate, self.new_rate = orig_rate, new_rate
        self.passthrough = orig_rate == new_rate
        gcd = math.gcd(orig_rate, new_rate)
        self.orig, self.new = orig_rate // gcd, new_rate // gcd
        if not self.passthrough:
            self.kernel, self.width = _get_sinc_resample_kernel(orig_rate, new_rate, gcd, dtype=torch.float32)
        else:
            self.kernel, self.width = None, 0
        # As resample() does: ``width`` zeros before the signal.
        self.buffer = np.zeros(self.width, dtype=np.float32)
        self.samples_in = 0
        self.samples_out = 0

    def _convolve(self) -> np.ndarray:
        kernel_len = self.kernel.shape[-1]
        if len(self.buffer) < kernel_len:
            return np.zeros(0, dtype=np.float32)
        blocks = (len(self.buffer) - kernel_len) // self.orig + 1
        used = (blocks - 1) * self.orig + kernel_len
        signal = torch.from_numpy(self.buffer[:used]).view(1, 1, -1)
        out = torch.nn.functional.conv1d(signal, self.kernel, stride=self.orig)  # (1, new, blocks)
        self.buffer = self.buffer[blocks * self.orig :]
        return out.transpose(1, 2).reshape(-1).numpy()

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """Add ``(T,)`` samples at ``orig_rate``; return the ``(T',)`` samples now complete."""
        samples = np.asarray(samples, dtype=np.float32)
        self.samples_in += samples.size
        if self.passthrough:
            self.samples_out += samples.size
            return samples
        self.buffer = np.concatenate([self.buffer, samples])
        out = self._convolve()
        self.samples_out += out.size
        return out

    def flush(self) -> np.ndarray:
        """The remaining output once the input has ended (zero padding, as resample() does)."""
        if self.passthrough:
            return np.zeros(0, dtype=np.float32)
        self.buffer = np.concatenate([self.buffer, np.zeros(self.width + self.orig, dtype=np.float32)])
        out = self._convolve()
        target = math.ceil(self.new * self.samples_in / self.orig)
        out = out[: max(0, target - self.samples_out)]
        self.samples_out += out.size
        self.buffer = np.zeros(self.width, dtype=np.float32)
        self.samples_in = self.samples_out = 0
        return out
