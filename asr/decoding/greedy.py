"""Greedy CTC decoding: best token per frame, repeats merged, blanks removed."""

from __future__ import annotations

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
    """A decoded utterance."""

    text: str
    token_ids: tuple[int, ...]
    token_frames: tuple[int, ...]  # output frame at which each token was emitted
    words: tuple[WordSpan, ...]
    score: float  # sum of the chosen frames' log-probabilities


def greedy_path(log_probs: torch.Tensor) -> tuple[list[int], list[int], list[float]]:
    """Collapse the best path of ``(T, V)`` log-probabilities.

    Returns:
        Token ids, the frame where each was first emitted, and its log-probability there.
    """
    best_logp, best = log_probs.max(dim=-1)  # (T,), (T,)
    ids, frames, logps = [], [], []
    previous = 0
    for frame, (token, logp) in enumerate(zip(best.tolist(), best_logp.tolist())):
        if token != previous and token != 0:
            ids.append(token)
            frames.append(frame)
            logps.append(logp)
        previous = token
    return ids, frames, logps


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


def greedy_decode(log_probs: torch.Tensor, tokenizer: Tokenizer) -> Hypothesis:
    """Decode one utterance's ``(T, V)`` log-probabilities (already cut to its length)."""
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs must be (T, V), got {tuple(log_probs.shape)}")
    ids, frames, logps = greedy_path(log_probs)
    return hypothesis_from_tokens(ids, frames, logps, tokenizer, float(log_probs.max(dim=-1).values.sum()))


def hypothesis_from_tokens(
    ids: list[int], frames: list[int], logps: list[float], tokenizer: Tokenizer, score: float
) -> Hypothesis:
    """A :class:`Hypothesis` of emitted token ids, their frames and log-probabilities."""
    words = words_from_tokens(ids, frames, logps, tokenizer)
    return Hypothesis(
        text=" ".join(w.word for w in words), token_ids=tuple(ids), token_frames=tuple(frames), words=words, score=score
    )


def greedy_decode_batch(log_probs: torch.Tensor, lengths: torch.Tensor, tokenizer: Tokenizer) -> list[Hypothesis]:
    """Decode ``(N, T, V)`` log-probabilities with valid ``(N,)`` lengths."""
    return [greedy_decode(lp[:n], tokenizer) for lp, n in zip(log_probs, lengths.tolist())]
