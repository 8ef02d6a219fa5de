"""Hand-labelled word ends and the matching of recognised words to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.bench.latency import ReferenceWord, boundaries_beside, match_words, read_word_boundaries
from asr.errors import ASRError

TIMIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "timit_sample"


def test_reads_timit_word_boundaries(tmp_path):
    labels = tmp_path / "sa1.wrd"
    labels.write_text("3050 5723 she\n5723 10337 had\n10337 11517 your\n")
    assert read_word_boundaries(labels) == (
        ReferenceWord("SHE", 5723 / 16000),
        ReferenceWord("HAD", 10337 / 16000),
        ReferenceWord("YOUR", 11517 / 16000),
    )


def test_bad_boundary_line_names_the_file_and_line(tmp_path):
    labels = tmp_path / "x.wrd"
    labels.write_text("0 100 one\nhello there\n")
    with pytest.raises(ASRError, match=r"x\.wrd:2"):
        read_word_boundaries(labels)


@pytest.mark.skipif(not TIMIT.is_dir(), reason="needs ../shared/data/timit_sample")
def test_real_timit_labels_are_found_beside_the_audio():
    audio = TIMIT / "dr1-fvmh0" / "sa1.flac"
    words = boundaries_beside(audio)
    assert [w.word for w in words] == "SHE HAD YOUR DARK SUIT IN GREASY WASH WATER ALL YEAR".split()
    ends = [w.end for w in words]
    assert ends == sorted(ends) and 2.0 < ends[-1] < 3.5
    assert boundaries_beside(TIMIT / "dr1-fvmh0" / "no-such.flac") is None


def test_match_words_pairs_hits_and_substitutions_only():
    reference = "THE CAT SAT ON THE MAT".split()
    hypothesis = "A CAT SAT THE MAT NOW".split()  # substitute, hit, hit, delete ON, hit, hit, insert
    assert match_words(reference, hypothesis) == [(0, 0), (1, 1), (2, 2), (4, 3), (5, 4)]
    assert match_words(reference, []) == []
