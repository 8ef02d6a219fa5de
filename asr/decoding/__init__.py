"""Turning the model's ``(T, V)`` log-probabilities into words: greedy and beam search.

``base`` (the :class:`Hypothesis` and the :class:`Decoder` interface that live and offline
decoding share), ``greedy``, ``beam`` (torchaudio's flashlight decoder with KenLM), and
``registry`` (the decoders by name: the only place a decoder is chosen).
"""

from asr.lazy import lazy_exports

# Each name and the module that defines it, imported when first used: reading the registry's
# names (the command line's --help) then needs no torch.
_EXPORTS = {
    "Decoder": "base", "Hypothesis": "base", "WordSpan": "base",
    "BeamConfig": "config", "BeamDecoder": "beam", "GreedyDecoder": "greedy",
    "DECODERS": "registry", "DEFAULT_DECODER": "registry", "DecoderEntry": "registry",
    "build_decoder": "registry", "decoder_entry": "registry",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
