"""Beam search (torchaudio ctc_decoder) and CTC forced alignment on constructed log-probabilities."""

from __future__ import annotations

import pytest
import torch

from asr.alignment import AlignmentError, align_words, ctc_frames_needed
from asr.decoding.beam import BeamConfig, BeamDecoder
from asr.decoding.greedy import greedy_decode
from asr.errors import ConfigError
from tests.test_decoding import TOKENIZER, frames_for


def test_beam_without_lm_agrees_with_greedy_on_a_peaked_path():
    log_probs = frames_for("__HH_E_LL_LLO__ WW_O_R_LD_")
    hypotheses = BeamDecoder(BeamConfig(beam_size=8, nbest=3), TOKENIZER).decode(log_probs)
    assert hypotheses[0].text == greedy_decode(log_probs, TOKENIZER).text == "HELLO WORLD"
    assert [w.word for w in hypotheses[0].words] == ["HELLO", "WORLD"]
    assert len(hypotheses) == 3
    scores = [h.score for h in hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert len({h.text for h in hypotheses}) == 3
    # Same frames as greedy: flashlight's path starts before the first frame, which is undone.
    assert hypotheses[0].token_frames == greedy_decode(log_probs, TOKENIZER).token_frames
    assert hypotheses[0].words == greedy_decode(log_probs, TOKENIZER).words


ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-2.0\t<unk>
-99\t<s>
-0.5\t</s>
-0.3\tHELLO
-3.0\tHELLA

\\2-grams:
-0.2\t<s> HELLO
-0.2\tHELLO </s>

\\end\\
"""


def test_language_model_overrules_weak_acoustics(tmp_path):
    (tmp_path / "lm.arpa").write_text(ARPA)
    (tmp_path / "lexicon.txt").write_text("HELLO\tH E L L O |\nHELLA\tH E L L A |\n")
    # The last letter is 'A' by a small margin: acoustics alone say HELLA.
    log_probs = frames_for("__HH_E_LL_LLA__", confidence=0.5)
    o = TOKENIZER.tokens.index("O")
    log_probs[12, o] = torch.tensor(0.4).log()
    without_lm = BeamDecoder(BeamConfig(lexicon=str(tmp_path / "lexicon.txt")), TOKENIZER).decode(log_probs)[0]
    with_lm = BeamDecoder(BeamConfig(lm=str(tmp_path / "lm.arpa"), lm_weight=1.0), TOKENIZER).decode(log_probs)[0]
    assert without_lm.text == "HELLA"
    assert with_lm.text == "HELLO"


def test_lexicon_limits_words_to_its_entries(tmp_path):
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("HELLO\tH E L L O |\nWORLD\tW O R L D |\n")
    # "HELLA WORLD" by the acoustics; the lexicon only knows HELLO.
    log_probs = frames_for("__HH_E_LL_LLA__ WW_O_R_LD_", confidence=0.6)
    hypothesis = BeamDecoder(BeamConfig(lexicon=str(lexicon)), TOKENIZER).decode(log_probs)[0]
    assert hypothesis.text == "HELLO WORLD"


def test_lm_without_lexicon_needs_one_beside_it(tmp_path):
    lm = tmp_path / "lm.arpa"
    lm.write_text("")
    with pytest.raises(ConfigError, match="needs a lexicon"):
        BeamConfig(lm=str(lm)).resolved_lexicon()
    (tmp_path / "lexicon.txt").write_text("A\tA |\n")
    assert BeamConfig(lm=str(lm)).resolved_lexicon() == str(tmp_path / "lexicon.txt")


def test_missing_files_and_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such lexicon"):
        BeamDecoder(BeamConfig(lexicon=str(tmp_path / "nope.txt")), TOKENIZER)
    with pytest.raises(ConfigError, match="nbest"):
        BeamConfig(beam_size=2, nbest=3)


def test_forced_alignment_places_words_on_their_frames():
    log_probs = frames_for("__HH_E_LL_LLO__ WW_O_R_LD_")
    words = align_words(log_probs, "HELLO WORLD", TOKENIZER)
    # Letters end at frame 13 and resume at 16: no pause, so the boundary is shared midway.
    assert [(w.word, w.start_frame, w.end_frame) for w in words] == [("HELLO", 2, 14.5), ("WORLD", 14.5, 25)]
    paused = align_words(frames_for("__HH_E_LL_LLO__" + "_" * 10 + " WW_O_R_LD_"), "HELLO WORLD", TOKENIZER)
    assert [(w.start_frame, w.end_frame) for w in paused] == [(2, 13), (26, 35)]
    assert all(w.confidence == pytest.approx(0.9) for w in words)


def test_alignment_of_a_wrong_transcript_has_low_confidence():
    log_probs = frames_for("__HH_E_LL_LLO__ WW_O_R_LD_")
    right = align_words(log_probs, "HELLO WORLD", TOKENIZER)
    wrong = align_words(log_probs, "HELLO THERE", TOKENIZER)
    assert wrong[0].confidence == pytest.approx(right[0].confidence)
    assert wrong[1].confidence < 0.2 < right[1].confidence


def test_alignment_refuses_a_transcript_too_long_for_the_audio():
    assert ctc_frames_needed([5, 5, 6]) == 4
    with pytest.raises(AlignmentError, match="need more than the 5 output frames"):
        align_words(frames_for("_A_B_"), "ABBA ABBA", TOKENIZER)
