"""The acoustic model: a subsampling front end, a multi-layer LSTM (or GRU) and a linear CTC head.

Shapes, batch first throughout:

- features ``(N, T, F)`` with ``F = n_mels``, at 100 frames per second;
- after the front end (below), which subsamples by ``S = stack_frames``:
  ``(N, T', I)`` with ``T' = T // S`` (frame stacking, ``I = S * F``) or ``ceil(T / S)``
  (convolution, ``I = hidden_size``);
- LSTM output ``(N, T', D * H)`` with ``D = 2`` if bidirectional else 1;
- log-probabilities ``(N, T', V)`` over ``V`` tokens, blank at index 0;
- with an auxiliary phone head (training only), phone log-probabilities ``(N, T', P)`` from
  the output of layer ``aux_phone_layer`` (see :mod:`asr.phones`).

The bidirectional layers run each direction as its own ``nn.LSTM``; the backward one reads
every sequence reversed within its own length, so padding never enters the backward state and
no packing is needed (packing made training three times slower on CPU).

The subsampling front ends: 100 feature frames a second in, ``100 / S`` encoder frames out.

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
from dataclasses import asdict, dataclass

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


LSTMState = tuple[torch.Tensor, ...]
"""The unidirectional model's state: ``(h, c)`` for the LSTM, ``(h,)`` for the GRU, each
``(num_layers, N, hidden_size)``."""
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class ModelConfig:
    """Size and shape of the acoustic model.

    Defaults give about 4.6 M parameters (18 MB in float32), small enough to ship in the
    package and to train from scratch on a few hours of speech on a CPU.
    """

    n_mels: int = 80
    vocab_size: int = 29
    # Subsampling: 4 10 ms frames = 40 ms per output frame, fast enough for characters (speech
    # runs at about 15 characters a second; CTC needs at most one frame per character plus
    # blanks between repeats).
    stack_frames: int = 4
    # "stack": frame stacking (streamable); "conv2d": strided convolutions (offline only).
    frontend: str = "stack"
    conv_channels: int = 32
    hidden_size: int = 256
    num_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.2
    # The recurrent cell: "lstm", or "gru" (three gates instead of four: fewer parameters per
    # unit and faster steps; its state is h alone).
    cell: str = "lstm"
    # A second CTC head over phones (asr.phones) on the output of this LSTM layer (1-based);
    # 0: none. Trained with TrainConfig.phone_loss_weight; decoding never reads it.
    aux_phone_layer: int = 0
    aux_phone_vocab_size: int = 41

    @property
    def streamable(self) -> bool:
        """Whether the model runs on a live stream, chunk by chunk with its state carried: it must
        be unidirectional, with the stack front end (the convolutional one reads ahead)."""
        return not self.bidirectional and self.frontend == "stack"

    def __post_init__(self) -> None:
        for name in ("n_mels", "vocab_size", "stack_frames", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.frontend not in FRONTENDS:
            raise ValueError(f"ModelConfig.frontend must be one of {', '.join(FRONTENDS)}, got {self.frontend!r}")
        if self.cell not in CELLS:
            raise ValueError(f"ModelConfig.cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if not 0 <= self.aux_phone_layer <= self.num_layers:
            raise ValueError(
                f"ModelConfig.aux_phone_layer must be 0 (none) or a layer 1..{self.num_layers}, got {self.aux_phone_layer}"
            )
        if self.frontend == "conv2d" and self.stack_frames not in (2, 4, 8):
            raise ValueError(f"the conv2d front end subsamples by 2, 4 or 8, got stack_frames = {self.stack_frames}")

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def to_dict(self) -> dict:
        return asdict(self)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x`` ``(N, T, C)`` within its length; padding stays put."""
    if bool((lengths == x.size(1)).all()):  # no padding (one utterance, say): a plain flip is cheaper
        return x.flip(1)
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
    last = (lengths - 1).unsqueeze(1)  # (N, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (N, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class CTCModel(nn.Module):
    """Front end -> LSTM (or GRU) stack -> linear CTC head. See the module docstring for shapes."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend: FrameStacking | ConvSubsampling
        if config.frontend == "conv2d":
            self.frontend = ConvSubsampling(
                config.n_mels, config.stack_frames, config.conv_channels, config.hidden_size
            )
            input_size = config.hidden_size
        else:
            self.frontend = FrameStacking(config.stack_frames)
            input_size = config.n_mels * config.stack_frames
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        cell = CELLS[config.cell]
        for layer in range(config.num_layers):
            layer_input = input_size if layer == 0 else config.hidden_size * config.num_directions
            self.forward_layers.append(cell(layer_input, config.hidden_size, batch_first=True))
            if config.bidirectional:
                self.backward_layers.append(cell(layer_input, config.hidden_size, batch_first=True))
        self.dropout = nn.Dropout(config.dropout)
        width = config.hidden_size * config.num_directions
        self.head = nn.Linear(width, config.vocab_size)
        self.aux_head = nn.Linear(width, config.aux_phone_vocab_size) if config.aux_phone_layer else None

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for input lengths ``(N,)``."""
        return self.frontend.output_lengths(lengths)

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        state: LSTMState | None = None,
        *,
        with_aux: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Per-frame token log-probabilities.

        Args:
            features: ``(N, T, n_mels)`` normalised log-mel frames.
            lengths: ``(N,)`` valid frames per utterance.
            state: unidirectional only: the :data:`LSTMState` from the previous chunk, or None
                at the start of a stream. To carry state exactly, feed chunks whose length is a
                multiple of ``stack_frames``.
            with_aux: also return the auxiliary phone head's log-probabilities (training).

        Returns:
            ``log_probs`` ``(N, T', vocab_size)``, ``out_lengths`` ``(N,)`` and the new
            state (None for the bidirectional model); with ``with_aux``, a fourth item, the
            phone log-probabilities ``(N, T', aux_phone_vocab_size)``. State is taken at each
            sequence's last frame only when all ``lengths`` are equal to ``T``; streams feed one
            utterance each.
        """
        if features.dim() != 3 or features.size(-1) != self.config.n_mels:
            raise ValueError(f"features must be (N, T, {self.config.n_mels}), got {tuple(features.shape)}")
        if state is not None and not self.config.streamable:
            raise ValueError("only a unidirectional model with the stack front end carries state")
        if with_aux and self.aux_head is None:
            raise ValueError("this model has no auxiliary phone head (ModelConfig.aux_phone_layer = 0)")
        x, out_lengths = self.frontend(features, lengths)  # (N, T', I)
        new_states: list[tuple[torch.Tensor, ...]] = []
        aux_log_probs = None
        for layer, forward_rnn in enumerate(self.forward_layers):
            if layer > 0:
                x = self.dropout(x)
            fwd, layer_state = forward_rnn(x, self._layer_state(state, layer))  # (N, T', H)
            new_states.append(layer_state if isinstance(layer_state, tuple) else (layer_state,))
            if self.config.bidirectional:
                bwd, _ = self.backward_layers[layer](reverse_padded(x, out_lengths))
                x = torch.cat([fwd, reverse_padded(bwd, out_lengths)], dim=-1)  # (N, T', 2H)
            else:
                x = fwd
            if with_aux and layer + 1 == self.config.aux_phone_layer:
                aux_log_probs = self.aux_head(self.dropout(x)).log_softmax(dim=-1)  # (N, T', P)
        log_probs = self.head(self.dropout(x)).log_softmax(dim=-1)  # (N, T', V)
        new_state = None
        if not self.config.bidirectional:
            new_state = tuple(torch.cat(parts) for parts in zip(*new_states))
        if with_aux:
            return log_probs, out_lengths, new_state, aux_log_probs
        return log_probs, out_lengths, new_state

    @staticmethod
    def _layer_state(state: LSTMState | None, layer: int) -> torch.Tensor | tuple[torch.Tensor, ...] | None:
        """Layer ``layer``'s slice of ``state``, as its cell takes it: ``(h, c)`` or ``h``."""
        if state is None:
            return None
        parts = tuple(part[layer : layer + 1] for part in state)
        return parts if len(parts) > 1 else parts[0]
