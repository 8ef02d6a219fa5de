"""Forced alignment against TIMIT's hand-labelled word boundaries (eval-only data: a reference)."""

from __future__ import annotations

import csv

import numpy as np

import asr
from asr.cli.align import align_file

TIMIT_RATE = 16_000
# The floors of the decoding issue: word starts against TIMIT's hand labels.
MAX_MEDIAN_START_ERROR = 0.050  # seconds
MIN_STARTS_WITHIN_100MS = 0.90


# Words after a pause used to start about 140 ms early (84.7% of all starts within 100 ms): the
# model misses their first letters and the Viterbi path puts them in the pause. Starting such words
# at the first voiced frame (Kaldi's energy VAD with its default settings, chosen before this
# measurement and not tuned on it) gives 94.8% within 100 ms and a median of 25 ms.
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
    print(f"\n{len(errors)} word starts: median error {np.median(errors) * 1000:.0f} ms, "
          f"{np.mean(errors <= 0.1):.1%} within 100 ms of TIMIT's labels")  # fmt: skip
    assert np.median(errors) <= MAX_MEDIAN_START_ERROR
    assert np.mean(errors <= 0.1) >= MIN_STARTS_WITHIN_100MS
