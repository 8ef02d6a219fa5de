"""CTC beam search through torchaudio's ``ctc_decoder`` (flashlight-text), with KenLM.

Two modes, as in flashlight:

- lexicon-free: any spelling the model proposes; an LM, if given, must be over the model's
  tokens (a character LM).
- lexicon: words are limited to a lexicon (``WORD<TAB>W O R D |`` per line for a character
  model, ``WORD<TAB>▁WO RD`` for a BPE model: its spelling in the model's tokens, as
  ``asr lm build``/``asr lm lexicon --model`` write it) and scored by a word n-gram LM (KenLM
  ARPA or binary).

``--lm`` without ``--lexicon`` uses the ``lexicon.txt`` that ``asr lm build`` writes beside the LM.

:class:`BeamDecoder` runs flashlight's incremental ``decode_begin``/``decode_step``/``decode_end``,
live and offline alike (offline: one step over the whole utterance). The words that every
hypothesis in the beam agrees on are committed; the rest of the best one is tentative.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torchaudio.models.decoder import CTCDecoder, CTCHypothesis, ctc_decoder

from asr.decoding.base import Decoder, Hypothesis, WordSpan, hypothesis_from_tokens
from asr.decoding.config import LEXICON_NAME, BeamConfig  # noqa: F401 (LEXICON_NAME: read from here too)
from asr.errors import ConfigError
from asr.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# The silence token (torchaudio's ``sil_token``, "token corresponding to silence"). flashlight
# starts and ends every hypothesis on it, and in lexicon mode it is the one token a hypothesis
# between words (at the root of the lexicon trie) may consume and repeat (LexiconDecoder.cpp,
# "(2) Try same lexicon node"). With characters it is the word delimiter ``|``, which ends every
# lexicon spelling (``W O R D |``), so repeats of ``|`` and pauses between words are held there.
# BPE has no delimiter: a lexicon spells a word in the model's pieces (``▁HEL LO``), which is
# all word pieces need (torchaudio's maintainers, pytorch/audio#2788), and a word is complete
# at its last piece. For the silence we then add one virtual token that the model never emits
# (log-probability the lowest float32 on every frame), as fairseq's flashlight wrapper points
# it at ``</s>``, a unit its CTC models never emit, when there is no ``|``
# (examples/speech_recognition/w2l_decoder.py); flashlight's maintainers describe the silence
# as a token with a score of its own that such models can do without (flashlight/text#33). Not
# the blank: at the trie's root each blank frame would then be taken twice, as silence and as
# blank, two hypotheses that differ only in flashlight's prevBlank flag and so do not merge,
# wasting beam slots. The price, for any choice without a real delimiter: a frame that repeats
# a word's last piece cannot be held at the root, so the lexicon search reads it as a blank.
VIRTUAL_SILENCE = "<sil>"
NEVER = torch.finfo(torch.float32).min  # log-probability of the virtual silence on every frame


def decoder_tokens(tokenizer: Tokenizer) -> tuple[list[str], str]:
    """The token list for ``ctc_decoder`` and its silence token (see the comment above)."""
    if tokenizer.word_delimiter is not None:
        return list(tokenizer.tokens), tokenizer.word_delimiter
    return [*tokenizer.tokens, VIRTUAL_SILENCE], VIRTUAL_SILENCE


def decoder_emissions(log_probs: torch.Tensor, tokenizer: Tokenizer) -> torch.Tensor:
    """``(T, V)`` log-probabilities as the decoder takes them: float32, contiguous, and
    ``(T, V + 1)`` with the virtual silence column if the tokenizer has no word delimiter."""
    emissions = log_probs.float()
    if tokenizer.word_delimiter is None:
        emissions = torch.cat([emissions, emissions.new_full((emissions.shape[0], 1), NEVER)], dim=1)
    return emissions.contiguous()


def build_ctc_decoder(config: BeamConfig, tokenizer: Tokenizer, nbest: int | None = None) -> CTCDecoder:
    """torchaudio's flashlight decoder for ``config`` (``nbest`` overrides ``config.nbest``).

    Feed it :func:`decoder_emissions`, not raw log-probabilities.

    Raises:
        ConfigError: the LM or lexicon file does not exist, KenLM cannot read the LM (a corrupt
            or truncated binary), or the lexicon spells words with tokens the model does not
            have (a character lexicon for a BPE model, say).
    """
    _check_file(config.lm, "language model")  # before looking for the lexicon beside it
    lexicon = config.resolved_lexicon()
    _check_file(lexicon, "lexicon")
    tokens, silence = decoder_tokens(tokenizer)
    try:
        return ctc_decoder(
            lexicon=lexicon,
            tokens=tokens,
            lm=config.lm,
            nbest=nbest or config.nbest,
            beam_size=config.beam_size,
            beam_size_token=config.beam_size_token,
            beam_threshold=config.beam_threshold,
            lm_weight=config.lm_weight,
            word_score=config.word_score,
            unk_score=config.unk_score,
            blank_token=tokens[tokenizer.blank_id],
            sil_token=silence,
        )
    except (RuntimeError, ValueError) as exc:  # KenLM's C++ exceptions arrive as RuntimeError
        if lexicon and "Unknown entry in dictionary" in str(exc):
            raise ConfigError(
                f"{lexicon}: spells words with tokens this model does not have ({exc}); "
                "write a lexicon with its tokenizer: asr lm lexicon --model"
            ) from exc
        if config.lm:
            reason = [line for line in str(exc).splitlines() if line.strip()][-1:] or [type(exc).__name__]
            raise ConfigError(
                f"{config.lm}: cannot be read as a KenLM language model, ARPA or binary ({reason[0].strip()})"
            ) from exc
        raise


def _check_file(path: str | None, what: str) -> None:
    """Raises ConfigError if ``path`` is given but is no readable file."""
    if not path:
        return
    try:
        is_file = Path(path).is_file()
    except OSError as exc:  # a name too long for the file system, say
        raise ConfigError(f"{path}: cannot be used as a {what} file ({exc.strerror or exc})") from exc
    if not is_file:
        raise ConfigError(f"{path}: no such {what} file")


def result_tokens(result: CTCHypothesis, tokenizer: Tokenizer) -> list[tuple[int, int]]:
    """``(token id, output frame)`` of the model's tokens on a flashlight path.

    flashlight's path starts with the state before the first frame (so its index ``i`` is
    frame ``i - 1``) and sits on the silence token at both ends; those and blanks are dropped.
    """
    pairs = [
        (t, f - 1)
        for t, f in zip(result.tokens.tolist(), result.timesteps.tolist())
        if t != tokenizer.blank_id and t < tokenizer.vocab_size
    ]
    delimiter = tokenizer.word_delimiter
    while pairs and tokenizer.tokens[pairs[0][0]] == delimiter:
        pairs = pairs[1:]
    while pairs and tokenizer.tokens[pairs[-1][0]] == delimiter:
        pairs = pairs[:-1]
    return pairs


def to_hypothesis(result: CTCHypothesis, log_probs: torch.Tensor, tokenizer: Tokenizer) -> Hypothesis:
    """A flashlight result as a :class:`Hypothesis`, scored against ``(T, V)`` ``log_probs``."""
    pairs = result_tokens(result, tokenizer)
    ids, frames = [t for t, _ in pairs], [f for _, f in pairs]
    last = log_probs.shape[0] - 1
    logps = [float(log_probs[min(f, last), t]) for t, f in pairs]
    return hypothesis_from_tokens(ids, frames, logps, tokenizer, float(result.score))


class BeamDecoder(Decoder):
    """Beam search of one segment at a time; see the module docstring."""

    def __init__(self, config: BeamConfig, tokenizer: Tokenizer) -> None:
        self.config = config
        self.tokenizer = tokenizer
        # Every hypothesis of the beam: the committed prefix is what all of them agree on, and
        # several can spell the same text along different paths (the n best are taken after
        # merging those, see finish).
        self.decoder = build_ctc_decoder(config, tokenizer, nbest=config.beam_size)
        logger.info("beam search: %s", config)
        self.decoder.decode_begin()
        self._open_segment()

    def _open_segment(self) -> None:
        self.frames = 0
        self.log_probs: list[torch.Tensor] = []
        self._committed: tuple[str, ...] = ()
        self._best: tuple[str, ...] = ()

    def reset(self) -> None:
        self.decoder.decode_end()
        self.decoder.decode_begin()
        self._open_segment()

    def step(self, log_probs: torch.Tensor) -> None:
        if log_probs.shape[0] == 0:
            return
        self.decoder.decode_step(decoder_emissions(log_probs, self.tokenizer))
        self.log_probs.append(log_probs.float())
        self.frames += log_probs.shape[0]
        beam = [self._words(h) for h in self.decoder.get_final_hypothesis()]
        if not beam:
            return
        # Only whole words followed by another word are safe to commit: the last may grow.
        agreed = list(beam[0][:-1])
        for words in beam[1:]:
            n = 0
            while n < min(len(agreed), len(words) - 1) and agreed[n] == words[n]:
                n += 1
            agreed = agreed[:n]
        if len(agreed) > len(self._committed) and tuple(agreed[: len(self._committed)]) == self._committed:
            self._committed = tuple(agreed)
        self._best = tuple(beam[0])

    def _words(self, result: CTCHypothesis) -> list[str]:
        """The words of a hypothesis in the beam; its last may still grow (more letters or pieces)."""
        return self.tokenizer.decode([t for t, _ in result_tokens(result, self.tokenizer)]).split()

    @property
    def committed(self) -> tuple[str, ...]:
        return self._committed

    @property
    def tentative(self) -> tuple[str, ...]:
        best = self._best
        if best[: len(self._committed)] == self._committed:
            return best[len(self._committed) :]
        return ()

    def finish(self) -> list[Hypothesis]:
        """The n best distinct texts of the segment that keep its committed words, best first;
        of the paths that spell the same text, the best one stands for it."""
        self.decoder.decode_end()
        results = self.decoder.get_final_hypothesis()  # best first
        log_probs = torch.cat(self.log_probs) if self.log_probs else torch.zeros(1, self.tokenizer.vocab_size)
        best: dict[str, Hypothesis] = {}
        for result in results:
            hypothesis = to_hypothesis(result, log_probs, self.tokenizer)
            if tuple(hypothesis.text.split()[: len(self._committed)]) != self._committed:
                continue  # it takes back words shown as final
            best.setdefault(hypothesis.text, hypothesis)
            if len(best) == self.config.nbest:
                break
        if not best:  # no path keeps the committed words: they stand, without times
            words = tuple(WordSpan(w, 0, 0, 0.0) for w in self._committed)
            best[""] = Hypothesis(" ".join(self._committed), (), (), words, float("-inf"))
        self.decoder.decode_begin()
        self._open_segment()
        return list(best.values())
