"""Turning the model's ``(T, V)`` log-probabilities into words: greedy and beam search.

``base`` (the :class:`Hypothesis` and the :class:`Decoder` interface that live and offline
decoding share), ``greedy``, ``beam`` (torchaudio's flashlight decoder with KenLM), and
``registry`` (the decoders by name: the only place a decoder is chosen).
"""

from asr.decoding.base import Decoder, Hypothesis, WordSpan
from asr.decoding.beam import BeamConfig, BeamDecoder
from asr.decoding.greedy import GreedyDecoder
from asr.decoding.registry import DECODERS, DEFAULT_DECODER, DecoderEntry, build_decoder, decoder_entry

__all__ = [
    "DECODERS", "DEFAULT_DECODER", "BeamConfig", "BeamDecoder", "Decoder", "DecoderEntry", "GreedyDecoder",
    "Hypothesis", "WordSpan", "build_decoder", "decoder_entry",
]  # fmt: skip
