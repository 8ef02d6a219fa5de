"""CTC beam search through torchaudio's ``ctc_decoder`` (flashlight-text), with KenLM.

Two modes, as in flashlight:

- lexicon-free: any spelling the model proposes; an LM, if given, must be over the model's
  tokens (a character LM).
- lexicon: words are limited to a lexicon (``WORD<TAB>W O R D |`` per line, as
  ``asr lm build`` writes it) and scored by a word n-gram LM (KenLM ARPA or binary).

``--lm`` without ``--lexicon`` uses the ``lexicon.txt`` that ``asr lm build`` writes beside the LM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torchaudio.models.decoder import CTCDecoder, CTCHypothesis, ctc_decoder

from asr.decoding import Hypothesis, hypothesis_from_tokens
from asr.errors import ConfigError
from asr.text import WORD_DELIMITER, CharTokenizer

logger = logging.getLogger(__name__)

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


def build_ctc_decoder(config: BeamConfig, tokenizer: CharTokenizer, nbest: int | None = None) -> CTCDecoder:
    """torchaudio's flashlight decoder for ``config`` (``nbest`` overrides ``config.nbest``).

    Raises:
        ConfigError: the LM or lexicon file does not exist.
    """
    lexicon = config.resolved_lexicon()
    for path, what in ((config.lm, "language model"), (lexicon, "lexicon")):
        if path and not Path(path).is_file():
            raise ConfigError(f"{path}: no such {what} file")
    return ctc_decoder(
        lexicon=lexicon,
        tokens=list(tokenizer.tokens),
        lm=config.lm,
        nbest=nbest or config.nbest,
        beam_size=config.beam_size,
        beam_size_token=config.beam_size_token,
        beam_threshold=config.beam_threshold,
        lm_weight=config.lm_weight,
        word_score=config.word_score,
        unk_score=config.unk_score,
        blank_token=tokenizer.tokens[tokenizer.blank_id],
        sil_token=WORD_DELIMITER,
    )


def to_hypothesis(result: CTCHypothesis, log_probs: torch.Tensor, tokenizer: CharTokenizer) -> Hypothesis:
    """A flashlight result as a :class:`Hypothesis`, scored against ``(T, V)`` ``log_probs``."""
    pairs = [(t, f) for t, f in zip(result.tokens.tolist(), result.timesteps.tolist()) if t != tokenizer.blank_id]
    # flashlight pads the path with word delimiters at both ends; drop them.
    delimiter = tokenizer.tokens.index(WORD_DELIMITER)
    while pairs and pairs[0][0] == delimiter:
        pairs = pairs[1:]
    while pairs and pairs[-1][0] == delimiter:
        pairs = pairs[:-1]
    ids, frames = [t for t, _ in pairs], [f for _, f in pairs]
    last = log_probs.shape[0] - 1
    logps = [float(log_probs[min(f, last), t]) for t, f in pairs]
    return hypothesis_from_tokens(ids, frames, logps, tokenizer, float(result.score))


class BeamDecoder:
    """Beam search over one utterance's ``(T, V)`` log-probabilities."""

    def __init__(self, config: BeamConfig, tokenizer: CharTokenizer) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.decoder = build_ctc_decoder(config, tokenizer)
        logger.info("beam search: %s", config)

    def decode(self, log_probs: torch.Tensor) -> list[Hypothesis]:
        """The n-best hypotheses of ``(T, V)`` log-probabilities, best first."""
        if log_probs.dim() != 2:
            raise ValueError(f"log_probs must be (T, V), got {tuple(log_probs.shape)}")
        emissions = log_probs.float().contiguous().unsqueeze(0)  # (1, T, V)
        results = self.decoder(emissions)[0]
        return [to_hypothesis(r, log_probs, self.tokenizer) for r in results]
