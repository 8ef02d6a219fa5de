"""The decoders by name: the one place where a name becomes a decoder.

The API (``TranscribeOptions.decoder``), the command line's ``--decoder`` choices, streaming
(``RecognizerConfig.decoder``) and the recipes all read :data:`DECODERS`; none of them compares
a decoder's name. What differs between decoders is a field of its :class:`DecoderEntry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from asr.decoding.config import BeamConfig
from asr.errors import ConfigError

if TYPE_CHECKING:  # the decoders import torch when built, not when the names are read (asr --help)
    from asr.decoding.base import Decoder
    from asr.tokenizer import Tokenizer


@dataclass(frozen=True)
class DecoderEntry:
    """One registered decoder."""

    name: str
    summary: str  # one line for help texts
    build: Callable[[Tokenizer, BeamConfig], Decoder]
    # Whether it reads the beam settings (size, threshold, LM, lexicon, weights, n-best). A
    # decoder that does may load an LM when built, so callers build it once per settings.
    uses_beam: bool


def _greedy(tokenizer: Tokenizer, beam: BeamConfig) -> Decoder:
    from asr.decoding.greedy import GreedyDecoder

    return GreedyDecoder(tokenizer)


def _beam(tokenizer: Tokenizer, beam: BeamConfig) -> Decoder:
    from asr.decoding.beam import BeamDecoder

    return BeamDecoder(beam, tokenizer)


DECODERS: Mapping[str, DecoderEntry] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            DecoderEntry("greedy", "best token per frame", _greedy, uses_beam=False),
            DecoderEntry(
                "beam", "beam search, with a lexicon and a KenLM language model if given", _beam, uses_beam=True
            ),
        )
    }
)
"""Every decoder, by name, in the order the command line lists them."""

DEFAULT_DECODER = "greedy"


def decoder_entry(name: str) -> DecoderEntry:
    """The decoder registered as ``name``.

    Raises:
        ConfigError: no decoder has that name; the message lists those that do.
    """
    entry = DECODERS.get(name)
    if entry is None:
        raise ConfigError(f"unknown decoder {name!r}; choose from {', '.join(DECODERS)}")
    return entry


def build_decoder(name: str, tokenizer: Tokenizer, beam: BeamConfig | None = None) -> Decoder:
    """A new decoder ``name`` over ``tokenizer``'s units; ``beam`` (default: :class:`BeamConfig`'s
    defaults) holds the settings of a decoder that :attr:`~DecoderEntry.uses_beam`.

    Raises:
        ConfigError: an unknown name, or an LM or lexicon the beam search cannot use.
    """
    return decoder_entry(name).build(tokenizer, beam if beam is not None else BeamConfig())
