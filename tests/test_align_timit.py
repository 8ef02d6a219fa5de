"""Forced alignment against TIMIT's hand-labelled word boundaries (eval-only data: a reference)."""

from __future__ import annotations

import csv

import numpy as np

import asr
from asr.align import align_file

TIMIT_RATE = 16_000
# Measured with the bundled model on every 4th utterance: median 53 ms, 90% within 200 ms.
MAX_MEDIAN_ERROR = 0.08  # seconds
MIN_WITHIN_200MS = 0.85


def test_word_boundaries_match_hand_labels(shared_data):
    root = shared_data / "timit_sample"
    with open(root / "test.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[::4]
    model = asr.load_model()
    errors = []
    for row in rows:
        reference = [line.split() for line in (root / row["path"]).with_suffix(".wrd").read_text().splitlines()]
        words = align_file(model, root / row["path"], row["transcript"]).words
        assert [w.word for w in words] == [r[2].upper() for r in reference]
        for word, (start, end, _) in zip(words, reference, strict=True):
            errors += [abs(word.start - int(start) / TIMIT_RATE), abs(word.end - int(end) / TIMIT_RATE)]
    errors = np.array(errors)
    assert np.median(errors) < MAX_MEDIAN_ERROR
    assert np.mean(errors < 0.2) > MIN_WITHIN_200MS
