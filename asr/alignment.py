"""CTC forced alignment: where each word of a known transcript sits in the model's output.

Built on torchaudio's ``forced_align`` (Viterbi over the CTC graph of the transcript). Used for
word timestamps and confidences of a decoded hypothesis, and by ``asr align`` for a transcript
the user gives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.errors import ASRError
from asr.tokenizer import Tokenizer
from asr.transcript import Word
from asr.vad import EnergyVadConfig, voiced_frames


class AlignmentError(ASRError):
    """A transcript cannot be aligned to the audio (too long for it, or unspellable)."""


# Words whose letters are at most this many output frames apart are taken to be spoken without
# a pause: their shared boundary is put midway between them (CTC's peaky letters leave the
# frames in between to blanks and the word delimiter, which belong to either word).
MAX_JOINED_GAP_FRAMES = 6


@dataclass(frozen=True)
class AlignedWord:
    """A word's span ``[start_frame, end_frame)`` in output frames (fractional at boundaries
    shared with a neighbour) and its mean token probability."""

    word: str
    start_frame: float
    end_frame: float
    confidence: float


def ctc_frames_needed(token_ids: list[int]) -> int:
    """Fewest CTC frames that can emit ``token_ids``: one each, plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(token_ids, token_ids[1:]) if a == b)
    return len(token_ids) + repeats


def align_words(log_probs: torch.Tensor, text: str, tokenizer: Tokenizer) -> list[AlignedWord]:
    """Align normalised ``text`` to ``(T, V)`` log-probabilities of one utterance.

    Each word spans from its first token's first frame to its last token's last frame, except
    that two words closer than :data:`MAX_JOINED_GAP_FRAMES` share the boundary midway between
    them. A word's confidence is the mean over its tokens of the token's mean probability on
    its frames.

    Raises:
        AlignmentError: the text has more tokens than the audio has frames for.
    """
    words = text.split()
    if not words:
        return []
    token_ids = tokenizer.encode(" ".join(words))
    frames = log_probs.shape[0]
    if ctc_frames_needed(token_ids) > frames:
        raise AlignmentError(
            f"{len(words)} words ({len(token_ids)} tokens) need more than the {frames} output frames of the audio"
        )
    targets = torch.tensor([token_ids], dtype=torch.int32)
    path, scores = torchaudio.functional.forced_align(
        log_probs.unsqueeze(0).float(), targets, blank=tokenizer.blank_id
    )  # (1, T), (1, T)
    spans = torchaudio.functional.merge_tokens(path[0], scores[0].exp())  # one per target token, in order
    word_spans = tokenizer.word_spans(token_ids)
    if len(word_spans) != len(words):  # only if the tokenizer's spelling of a word held a boundary
        raise AlignmentError(f"the tokens of the text make {len(word_spans)} words but the text has {len(words)}")
    aligned: list[AlignedWord] = []
    for word, (start, end) in zip(words, word_spans):
        confidence = sum(s.score for s in spans[start:end]) / (end - start)
        aligned.append(AlignedWord(word, spans[start].start, spans[end - 1].end, float(confidence)))
    return join_close_words(aligned)


def join_close_words(words: list[AlignedWord]) -> list[AlignedWord]:
    """Give words separated by at most :data:`MAX_JOINED_GAP_FRAMES` a shared, midway boundary."""
    joined = list(words)
    for i in range(1, len(joined)):
        previous, word = joined[i - 1], joined[i]
        if word.start_frame - previous.end_frame <= MAX_JOINED_GAP_FRAMES:
            middle = (previous.end_frame + word.start_frame) / 2
            joined[i - 1] = dataclasses.replace(previous, end_frame=middle)
            joined[i] = dataclasses.replace(word, start_frame=middle)
    return joined


def start_at_speech(words: list[AlignedWord], voiced: np.ndarray, vad_frame: float) -> list[AlignedWord]:
    """Move the start of each word that follows a pause to the first voiced frame in it.

    A letter the model hardly heard is still placed by the Viterbi path, often in the pause
    before its word; energy knows better where the pause ends. Words joined to the previous
    one keep their shared boundary, and a word with no voiced frame keeps its start.

    Args:
        words: aligned words, in order.
        voiced: ``(F,)`` booleans from :func:`asr.vad.voiced_frames`.
        vad_frame: the VAD's hop in output frames (its hop in seconds over the output's).
    """
    onsets = np.flatnonzero(voiced) * vad_frame  # (K,) voiced frame starts, in output frames
    moved = list(words)
    for i, word in enumerate(words):
        if i > 0 and words[i - 1].end_frame >= word.start_frame:
            continue
        at = int(word.start_frame / vad_frame)
        if at < voiced.size and voiced[at]:
            continue
        later = onsets[np.searchsorted(onsets, word.start_frame) :]
        if later.size and later[0] < word.end_frame:
            moved[i] = dataclasses.replace(word, start_frame=float(later[0]))
    return moved


def timed_words(
    log_probs: torch.Tensor, waveform: np.ndarray, text: str, tokenizer: Tokenizer, sample_rate: int,
    seconds_per_frame: float, offset: float = 0.0,
) -> tuple[Word, ...]:  # fmt: skip
    """Words of ``text`` force-aligned to the ``(T, V)`` ``log_probs`` of ``(S,)`` audio at
    ``sample_rate`` that starts ``offset`` seconds into the recording: times in seconds (an
    output frame lasts ``seconds_per_frame``), confidences in 0..1.

    A word after a pause starts where the audio's energy says the pause ends (:func:`start_at_speech`).

    Raises:
        AlignmentError: as :func:`align_words`.
    """
    end = offset + waveform.size / sample_rate
    vad = EnergyVadConfig()
    words = start_at_speech(
        align_words(log_probs, text, tokenizer), voiced_frames(waveform, sample_rate, vad),
        vad.hop_seconds / seconds_per_frame,
    )  # fmt: skip
    return tuple(
        Word(w.word, round(offset + w.start_frame * seconds_per_frame, 3),
             round(min(end, offset + w.end_frame * seconds_per_frame), 3), round(w.confidence, 4))
        for w in words
    )  # fmt: skip
