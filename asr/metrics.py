"""Word and character error rates, through jiwer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer


@dataclass(frozen=True)
class ErrorRates:
    """Corpus-level error rates: total edits over total reference words or characters."""

    wer: float
    cer: float
    words: int
    chars: int
    substitutions: int
    deletions: int
    insertions: int


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRates:
    """Corpus WER and CER of normalised ``hypotheses`` against ``references``.

    Empty references are skipped (jiwer cannot score them); an empty hypothesis counts as all
    deletions.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if not pairs:
        raise ValueError("no non-empty references to score")
    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return ErrorRates(
        wer=words.wer,
        cer=chars.cer,
        words=sum(len(r.split()) for r in refs),
        chars=sum(len(r) for r in refs),
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
    )
