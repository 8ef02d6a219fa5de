"""Greedy CTC decoding: best token per frame, repeats merged, blanks removed.

Its text only ever grows as frames come, so all of it is committed as it comes: the committed
text is a prefix of every later one, letter by letter.
"""

from __future__ import annotations

import torch

from asr.decoding.base import Decoder, Hypothesis, hypothesis_from_tokens, words_from_tokens
from asr.tokenizer import Tokenizer


class GreedyDecoder(Decoder):
    """Greedy decoding, frame by frame; see the module docstring."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.reset()

    def reset(self) -> None:
        # The best token of the last frame seen. Kept across segments of one audio (a repeat
        # across the cut stays collapsed, as in the whole recording); reset with the audio.
        self.previous = self.tokenizer.blank_id
        self._open_segment()

    def _open_segment(self) -> None:
        self.frames = 0
        self.ids: list[int] = []
        self.token_frames: list[int] = []
        self.logps: list[float] = []
        self.score = 0.0

    def step(self, log_probs: torch.Tensor) -> None:
        best_logp, best = log_probs.max(dim=-1)  # (T,), (T,)
        blank = self.tokenizer.blank_id
        for offset, (token, logp) in enumerate(zip(best.tolist(), best_logp.tolist())):
            if token != self.previous and token != blank:
                self.ids.append(token)
                self.token_frames.append(self.frames + offset)
                self.logps.append(logp)
            self.previous = token
        self.frames += log_probs.shape[0]
        self.score += float(best_logp.sum())

    @property
    def committed(self) -> tuple[str, ...]:
        """Every word so far: greedy output only grows, so no letter shown is ever taken back.
        The last word may still be being spelled (more letters or BPE pieces may follow, none
        change); words are always whole words of the tokenizer, never loose pieces."""
        return tuple(w.word for w in words_from_tokens(self.ids, self.token_frames, self.logps, self.tokenizer))

    @property
    def tentative(self) -> tuple[str, ...]:
        return ()

    def finish(self) -> list[Hypothesis]:
        hypothesis = hypothesis_from_tokens(self.ids, self.token_frames, self.logps, self.tokenizer, self.score)
        self._open_segment()
        return [hypothesis]


def greedy_decode(log_probs: torch.Tensor, tokenizer: Tokenizer) -> Hypothesis:
    """Decode one utterance's ``(T, V)`` log-probabilities (already cut to its length)."""
    return GreedyDecoder(tokenizer).decode(log_probs)[0]


def greedy_decode_batch(log_probs: torch.Tensor, lengths: torch.Tensor, tokenizer: Tokenizer) -> list[Hypothesis]:
    """Decode ``(N, T, V)`` log-probabilities with valid ``(N,)`` lengths."""
    decoder = GreedyDecoder(tokenizer)
    return [decoder.decode(lp[:n])[0] for lp, n in zip(log_probs, lengths.tolist())]
