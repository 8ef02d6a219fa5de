"""Compute efficiency of inference: the model's forward pass against the bare ``torch.nn.LSTM``
stack of the same shapes, achieved GFLOP/s against a large matrix multiply, and log-mel
features against librosa computing the same features.

The bare LSTM stack is the floor the model cannot beat without changing its arithmetic: what
the model adds (front end, reversing padded sequences, the head, log-softmax) should cost little
next to it. The matrix multiply is the most the cores reach on dense float32 arithmetic; an
LSTM's step-by-step recurrence keeps it well below that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asr.bench.report import Figure, best_seconds, best_seconds_alternating
from asr.features import FeatureConfig, LogMel
from asr.network import CTCModel

MATMUL_SIZE = 1024  # float32 square matrices: 4 MB each, large enough to run at the cores' peak
FLOPS_PER_MULTIPLY_ADD = 2
LSTM_GATES = 4


@dataclass(frozen=True)
class ForwardShapes:
    """What the LSTM stack sees: ``(batch, frames, input_size)`` after the front end."""

    batch: int
    frames: int  # output frames (after subsampling)
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool


def forward_shapes(network: CTCModel, batch: int, input_frames: int) -> ForwardShapes:
    """The shapes of ``network``'s LSTM stack for ``batch`` inputs of ``input_frames`` frames."""
    config = network.config
    frames = int(network.output_lengths(torch.tensor([input_frames]))[0])
    first = network.forward_layers[0]
    return ForwardShapes(batch, frames, first.input_size, config.hidden_size, config.num_layers, config.bidirectional)


def bare_lstm(shapes: ForwardShapes) -> torch.nn.LSTM:
    """``torch.nn.LSTM`` with the shapes of the model's stack, in one module (PyTorch's fused kernel)."""
    return torch.nn.LSTM(
        shapes.input_size, shapes.hidden_size, num_layers=shapes.num_layers,
        bidirectional=shapes.bidirectional, batch_first=True,
    )  # fmt: skip


def lstm_flops(shapes: ForwardShapes, vocab_size: int) -> float:
    """Floating-point operations of one forward pass: the four gates' input and recurrent
    matrix products of every layer and direction, and the head (element-wise work left out)."""
    directions = 2 if shapes.bidirectional else 1
    total = 0
    for layer in range(shapes.num_layers):
        layer_input = shapes.input_size if layer == 0 else shapes.hidden_size * directions
        total += directions * LSTM_GATES * shapes.hidden_size * (layer_input + shapes.hidden_size)
    total += shapes.hidden_size * directions * vocab_size
    return float(FLOPS_PER_MULTIPLY_ADD * total * shapes.frames * shapes.batch)


def matmul_gflops(repeats: int) -> float:
    """GFLOP/s of a ``MATMUL_SIZE``-square float32 matrix multiply on the current threads."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator)
    seconds = best_seconds(lambda: torch.mm(a, b), repeats)
    return FLOPS_PER_MULTIPLY_ADD * MATMUL_SIZE**3 / seconds / 1e9


def bench_forward(network: CTCModel, input_frames: int, repeats: int, batch: int = 1) -> list[Figure]:
    """Inference forward pass of ``network`` on ``(batch, input_frames, n_mels)`` features:
    output frames per second against the bare LSTM stack, and GFLOP/s against a matrix multiply."""
    network = network.eval()
    shapes = forward_shapes(network, batch, input_frames)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(batch, input_frames, network.config.n_mels, generator=generator)
    lengths = torch.full((batch,), input_frames)
    stack_input = torch.randn(batch, shapes.frames, shapes.input_size, generator=generator)
    reference = bare_lstm(shapes).eval()
    with torch.inference_mode():
        ours, bare = best_seconds_alternating(
            [lambda: network(features, lengths), lambda: reference(stack_input)], repeats
        )
    frames = batch * shapes.frames
    flops = lstm_flops(shapes, network.config.vocab_size)
    described = f"batch {batch} × {shapes.frames} frames"
    return [
        Figure("compute", "forward pass", frames / ours, "frames/s", "bare torch.nn.LSTM stack", frames / bare,
               floor=0.8, note=described),
        Figure("compute", "forward pass arithmetic", flops / ours / 1e9, "GFLOP/s",
               f"{MATMUL_SIZE}² float32 matmul", matmul_gflops(repeats)),
    ]  # fmt: skip


def librosa_log_mel(waveform: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The features of :class:`asr.features.LogMel` computed by librosa: ``(T,)`` -> ``(T_frames, n_mels)``.

    Same window (periodic Hann), no centring, power spectrum, HTK mel scale without area
    normalisation (torchaudio's defaults), and the same floor under the log."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=waveform, sr=config.sample_rate, n_fft=config.window_samples, hop_length=config.hop_samples,
        win_length=config.window_samples, window="hann", center=False, power=2.0, n_mels=config.n_mels,
        fmin=config.f_min, fmax=config.f_max, htk=True, norm=None,
    )  # fmt: skip
    return np.log(np.maximum(power, config.log_floor)).T


def bench_features(waveform: np.ndarray, config: FeatureConfig, repeats: int) -> list[Figure]:
    """Log-mel throughput (seconds of audio per second) of ``(T,)`` audio against librosa."""
    log_mel = LogMel(config)
    tensor = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
    with torch.inference_mode():
        ours, theirs = best_seconds_alternating(
            [lambda: log_mel(tensor), lambda: librosa_log_mel(waveform, config)], repeats
        )
    seconds = waveform.size / config.sample_rate
    return [
        Figure("features", "log-mel", seconds / ours, "x real time", "librosa, same features", seconds / theirs,
               floor=1.0, note=f"{seconds:.0f} s of audio")
    ]  # fmt: skip
