"""Hand-labelled word ends, and which recognised word answers which spoken one.

Finalization latency is measured from the moment a word ends in the audio. The honest clock
for that is a human label, not the model's own CTC spans (a unidirectional model tends to emit
late, which would hide its delay). TIMIT ships such labels beside each recording:
``<utterance>.wrd`` holds ``start_sample end_sample word`` lines at 16 kHz.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer

from asr.errors import ASRError
from asr.text import normalize_text

WRD_SAMPLE_RATE = 16_000
"""TIMIT's word boundary files count samples at 16 kHz."""


@dataclass(frozen=True)
class ReferenceWord:
    word: str  # normalised like transcripts
    end: float  # seconds from the start of the recording


def read_word_boundaries(path: Path) -> tuple[ReferenceWord, ...]:
    """Read a TIMIT ``.wrd`` file: one ``start_sample end_sample word`` line per word.

    Raises:
        ASRError: a line does not have that shape (names the file and line).
    """
    words = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or not (fields[0].isdigit() and fields[1].isdigit()):
            raise ASRError(f"{path}:{number}: expected 'start_sample end_sample word', got {line!r}")
        word = normalize_text(fields[2])
        if word:
            words.append(ReferenceWord(word, int(fields[1]) / WRD_SAMPLE_RATE))
    return tuple(words)


def boundaries_beside(audio: Path) -> tuple[ReferenceWord, ...] | None:
    """The hand-labelled word ends of ``audio`` if a ``.wrd`` file sits beside it."""
    labels = Path(audio).with_suffix(".wrd")
    return read_word_boundaries(labels) if labels.is_file() else None


def match_words(reference: Sequence[str], hypothesis: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs ``(reference index, hypothesis index)`` of words that answer each other.

    Hits and substitutions of the minimum-edit alignment both count: a misspelt word was still
    the model's answer to that stretch of audio. Insertions and deletions have no partner.
    """
    if not reference or not hypothesis:
        return []
    alignment = jiwer.process_words(" ".join(reference), " ".join(hypothesis)).alignments[0]
    pairs = []
    for chunk in alignment:
        if chunk.type in ("equal", "substitute"):
            span = chunk.ref_end_idx - chunk.ref_start_idx
            pairs += [(chunk.ref_start_idx + k, chunk.hyp_start_idx + k) for k in range(span)]
    return pairs
