"""Subsampling front ends: 100 feature frames a second in, ``100 / S`` encoder frames out.

Both map features ``(N, T, F)`` with valid lengths ``(N,)`` to ``(N, T', D)`` and ``(N,)``:

- :class:`FrameStacking` concatenates ``S`` consecutive frames (low-frame-rate stacking, as in
  Google's CTC systems): ``T' = T // S``, ``D = S * F``, no weights. It looks at no frame
  beyond the ``S`` it stacks, so a stream's look-ahead is at most ``S - 1`` frames, and a
  trailing partial stack is dropped, as a stream would hold it back until complete.
- :class:`ConvSubsampling` is the convolutional front end of ESPnet and icefall: ``log2(S)``
  3x3 convolutions of stride 2 in time and frequency, each followed by a ReLU, then a linear
  projection: ``T' = ceil(T / S)``, ``D = proj_size``. Its filters are shared across
  frequency, so a spectrum shifted by a different vocal tract still meets the same filters;
  the convolutions read one frame ahead at each layer, so it serves offline models only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FRONTENDS = ("stack", "conv2d")


class FrameStacking(nn.Module):
    """``(N, T, F)`` -> ``(N, T // S, S * F)``, dropping a trailing partial stack."""

    def __init__(self, stack_frames: int) -> None:
        super().__init__()
        self.stack_frames = stack_frames

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.stack_frames, rounding_mode="floor")

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, f = features.shape
        s = self.stack_frames
        usable = (t // s) * s
        return features[:, :usable].reshape(n, t // s, s * f), self.output_lengths(lengths)


class ConvSubsampling(nn.Module):
    """``(N, T, F)`` -> ``(N, ceil(T / S), proj_size)`` through strided 3x3 convolutions.

    Positions past each utterance's length are zeroed after every layer, so a batch gives
    each utterance exactly what it would get alone.
    """

    KERNEL = 3
    STRIDE = 2

    def __init__(self, n_mels: int, subsampling: int, channels: int, proj_size: int) -> None:
        super().__init__()
        layers = int(math.log2(subsampling))
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, self.KERNEL, stride=self.STRIDE, padding=self.KERNEL // 2)
            for i in range(layers)
        )
        freq = n_mels
        for _ in range(layers):
            freq = self._strided(freq)
        self.proj = nn.Linear(channels * freq, proj_size)

    @classmethod
    def _strided(cls, size: int | torch.Tensor) -> int | torch.Tensor:
        """Length after one convolution: ``ceil(size / 2)`` with padding 1."""
        return (size - 1) // cls.STRIDE + 1

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in self.convs:
            lengths = self._strided(lengths)
        return lengths

    @staticmethod
    def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero the frames of ``x`` ``(N, C, T, F)`` at or past ``lengths`` ``(N,)``."""
        valid = torch.arange(x.size(2), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)  # (N, T)
        return x * valid[:, None, :, None]

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._zero_padding(features.unsqueeze(1), lengths)  # (N, 1, T, F)
        for conv in self.convs:
            x = torch.relu(conv(x))  # (N, C, T / 2, F / 2)
            lengths = self._strided(lengths)
            x = self._zero_padding(x, lengths)
        n, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(n, t, c * f)  # (N, T', C * F')
        return self.proj(x), lengths
