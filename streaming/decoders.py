"""Incremental CTC decoders: frames in as they come, a committed prefix and a tentative tail out.

The committed prefix never changes once shown (it only grows); the tentative tail may. Both decoders work on
one segment at a time (:meth:`reset` starts the next) and give word frames relative to the
segment's first frame.

- :class:`GreedyDecoder`: best token per frame. Its text only ever grows, so all of it is
  committed as it comes (the committed text is a prefix of every later one, letter by letter).
- :class:`BeamDecoder`: torchaudio's ``ctc_decoder`` through ``decode_begin``/``decode_step``/
  ``decode_end``. The words that every hypothesis in the beam agrees on are committed.
"""

from __future__ import annotations

from typing import Protocol

import torch

from asr.decoding.beam import BeamConfig, build_ctc_decoder, decoder_emissions, result_tokens, to_hypothesis
from asr.decoding.greedy import WordSpan, words_from_tokens
from asr.tokenizer import Tokenizer


class IncrementalDecoder(Protocol):
    def reset(self) -> None: ...

    def step(self, log_probs: torch.Tensor) -> None: ...

    @property
    def committed(self) -> tuple[str, ...]: ...

    @property
    def tentative(self) -> tuple[str, ...]: ...

    def finish(self) -> tuple[WordSpan, ...]: ...


class GreedyDecoder:
    """Greedy decoding of one segment, frame by frame; see the module docstring."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.previous = tokenizer.blank_id  # carried across segments: a repeat stays collapsed
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.ids: list[int] = []
        self.token_frames: list[int] = []
        self.logps: list[float] = []

    def step(self, log_probs: torch.Tensor) -> None:
        """Decode ``(T, V)`` more log-probabilities of this segment."""
        best_logp, best = log_probs.max(dim=-1)
        for offset, (token, logp) in enumerate(zip(best.tolist(), best_logp.tolist())):
            if token != self.previous and token != self.tokenizer.blank_id:
                self.ids.append(token)
                self.token_frames.append(self.frames + offset)
                self.logps.append(logp)
            self.previous = token
        self.frames += log_probs.shape[0]

    def _words(self) -> tuple[WordSpan, ...]:
        return words_from_tokens(self.ids, self.token_frames, self.logps, self.tokenizer)

    @property
    def committed(self) -> tuple[str, ...]:
        """Every word so far: greedy output only grows, so no letter shown is ever taken back.
        The last word may still be being spelled (more letters or BPE pieces may follow, none
        change); words are always whole words of the tokenizer, never loose pieces."""
        return tuple(w.word for w in self._words())

    @property
    def tentative(self) -> tuple[str, ...]:
        return ()

    def finish(self) -> tuple[WordSpan, ...]:
        return self._words()


class BeamDecoder:
    """Beam search of one segment through flashlight's incremental interface."""

    def __init__(self, config: BeamConfig, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        # Keep the whole beam: the committed prefix is what all of it agrees on.
        self.decoder = build_ctc_decoder(config, tokenizer, nbest=config.beam_size)
        self.started = False
        self.reset()

    def reset(self) -> None:
        if self.started:
            self.decoder.decode_end()
        self.decoder.decode_begin()
        self.started = True
        self.frames = 0
        self.log_probs: list[torch.Tensor] = []
        self._committed: tuple[str, ...] = ()
        self._best: tuple[str, ...] = ()

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

    def _words(self, result) -> list[str]:
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

    def finish(self) -> tuple[WordSpan, ...]:
        """End the segment: the best final hypothesis that keeps the committed prefix."""
        self.decoder.decode_end()
        self.started = False
        hypotheses = self.decoder.get_final_hypothesis()
        all_log_probs = torch.cat(self.log_probs) if self.log_probs else torch.zeros(1, self.tokenizer.vocab_size)
        for result in hypotheses:
            hypothesis = to_hypothesis(result, all_log_probs, self.tokenizer)
            if tuple(hypothesis.text.split()[: len(self._committed)]) == self._committed:
                return hypothesis.words
        return tuple(WordSpan(w, 0, 0, 0.0) for w in self._committed)
