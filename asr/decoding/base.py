"""What every decoder shares: the :class:`Hypothesis` it gives and the :class:`Decoder` interface.

One interface serves live and offline decoding. A decoder works on one segment at a time:
:meth:`Decoder.step` takes the segment's log-probabilities as they come, :attr:`Decoder.committed`
and :attr:`Decoder.tentative` say what it has found so far, :meth:`Decoder.finish` closes the
segment and gives its n best hypotheses, and :meth:`Decoder.reset` forgets everything.
Offline decoding (:meth:`Decoder.decode`) steps through the whole utterance at once and
finishes it, so both paths run the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from asr.tokenizer import Tokenizer


@dataclass(frozen=True)
class WordSpan:
    """A decoded word: its text, first and last output frame, and mean token probability."""

    word: str
    start_frame: int
    end_frame: int
    confidence: float


@dataclass(frozen=True)
class Hypothesis:
    """A decoded utterance (or segment)."""

    text: str
    token_ids: tuple[int, ...]
    token_frames: tuple[int, ...]  # output frame at which each token was emitted
    words: tuple[WordSpan, ...]
    score: float  # the decoder's score: greedy, the sum of the chosen frames' log-probabilities


def words_from_tokens(
    ids: list[int], frames: list[int], logps: list[float], tokenizer: Tokenizer
) -> tuple[WordSpan, ...]:
    """Group emitted (blank-free) tokens into words where the tokenizer says words begin and end.

    A word spans its tokens' first and last frames; its confidence is their mean probability.
    Characters: the runs between ``|`` tokens. BPE: from a ``▁`` piece up to the next one.
    """
    words = []
    for start, end in tokenizer.word_spans(ids):
        text = tokenizer.decode(ids[start:end])
        if text:  # a lone word-start piece with nothing after it yet spells no word
            mean_logp = sum(logps[start:end]) / (end - start)
            words.append(WordSpan(text, frames[start], frames[end - 1], float(torch.tensor(mean_logp).exp())))
    return tuple(words)


def hypothesis_from_tokens(
    ids: list[int], frames: list[int], logps: list[float], tokenizer: Tokenizer, score: float
) -> Hypothesis:
    """A :class:`Hypothesis` of emitted token ids, their frames and log-probabilities."""
    words = words_from_tokens(ids, frames, logps, tokenizer)
    return Hypothesis(
        text=" ".join(w.word for w in words), token_ids=tuple(ids), token_frames=tuple(frames), words=words, score=score
    )


class Decoder(ABC):
    """Turns a segment's ``(T, V)`` log-probabilities, fed in any number of steps, into words.

    Word frames are counted from the segment's first frame. The committed words never change
    once shown (they only grow); the tentative ones may. Not thread-safe: one stream (or one
    call) at a time uses a decoder.
    """

    @abstractmethod
    def reset(self) -> None:
        """Forget everything, as if new: the next step starts a new utterance."""

    @abstractmethod
    def step(self, log_probs: torch.Tensor) -> None:
        """Decode ``(T, V)`` more log-probabilities of the open segment (``T`` may be 0)."""

    @property
    @abstractmethod
    def committed(self) -> tuple[str, ...]:
        """The open segment's words that will not change."""

    @property
    @abstractmethod
    def tentative(self) -> tuple[str, ...]:
        """The words after :attr:`committed` that the best hypothesis has now; they may change."""

    @abstractmethod
    def finish(self) -> list[Hypothesis]:
        """Close the open segment: its n best hypotheses, best first (at least one, which keeps
        the committed words). The next step opens the next segment of the same audio."""

    def decode(self, log_probs: torch.Tensor) -> list[Hypothesis]:
        """The n best hypotheses of one utterance's ``(T, V)`` log-probabilities, best first:
        :meth:`reset`, one :meth:`step` over all of it, :meth:`finish`."""
        if log_probs.dim() != 2:
            raise ValueError(f"log_probs must be (T, V), got {tuple(log_probs.shape)}")
        self.reset()
        self.step(log_probs)
        return self.finish()
