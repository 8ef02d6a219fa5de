"""Forced alignment against TIMIT's hand-labelled word boundaries (eval-only data: a reference)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import asr
from asr.align import align_file

TIMIT_RATE = 16_000
# The floors of the decoding issue: word starts against TIMIT's hand labels.
MAX_MEDIAN_START_ERROR = 0.050  # seconds
MIN_STARTS_WITHIN_100MS = 0.90


# Measured with the bundled model: median start error 33 ms, 84.7% of starts within 100 ms. Words
# spoken after silence start about 140 ms early (the model misses their first letters, which the
# Viterbi path then places in the silence); words joined to the previous one are 95.9% within
# 100 ms. Kept as written, expected to fail until the model or the aligner does better; strict.
@pytest.mark.xfail(strict=True, reason="84.7% of word starts within 100 ms of TIMIT's labels; floor is 90%")
def test_word_boundaries_match_hand_labels(shared_data):
    root = shared_data / "timit_sample"
    with open(root / "test.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    model = asr.load_model()
    errors = []
    for row in rows:
        reference = [line.split() for line in (root / row["path"]).with_suffix(".wrd").read_text().splitlines()]
        words = align_file(model, root / row["path"], row["transcript"]).words
        assert [w.word for w in words] == [r[2].upper() for r in reference]
        errors += [abs(w.start - int(r[0]) / TIMIT_RATE) for w, r in zip(words, reference, strict=True)]
    errors = np.array(errors)
    assert np.median(errors) <= MAX_MEDIAN_START_ERROR
    assert np.mean(errors <= 0.1) >= MIN_STARTS_WITHIN_100MS
