"""Beam search settings, apart from the search itself so that reading them (the command line's
defaults and help) needs neither torch nor flashlight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.errors import ConfigError

LEXICON_NAME = "lexicon.txt"
"""The lexicon file ``asr lm build`` writes beside its language model."""


@dataclass(frozen=True)
class BeamConfig:
    """Beam search settings; each is a flag of ``asr transcribe`` and ``asr evaluate``."""

    beam_size: int = 16
    # Hypotheses scoring this far below the best are pruned.
    beam_threshold: float = 25.0
    # Tokens considered per frame (None: all of them).
    beam_size_token: int | None = None
    lm: str | None = None
    lexicon: str | None = None
    lm_weight: float = 1.0
    word_score: float = 0.0
    # Score for a word outside the lexicon (lexicon mode): -inf forbids such words.
    unk_score: float = float("-inf")
    nbest: int = 1

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.nbest < 1:
            raise ConfigError(f"beam_size and nbest must be at least 1, got {self.beam_size} and {self.nbest}")
        if self.nbest > self.beam_size:
            raise ConfigError(f"nbest ({self.nbest}) cannot exceed beam_size ({self.beam_size})")

    def resolved_lexicon(self) -> str | None:
        """The lexicon to use: the one given, else the one beside the LM, else none."""
        if self.lexicon:
            return self.lexicon
        if self.lm:
            beside = Path(self.lm).parent / LEXICON_NAME
            if not beside.is_file():
                raise ConfigError(
                    f"--lm {self.lm}: a word LM needs a lexicon; none given and no {LEXICON_NAME} beside it "
                    "(asr lm build writes one)"
                )
            return str(beside)
        return None
