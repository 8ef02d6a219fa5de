import math

import pytest
import torch

from asr.decoding.greedy import greedy_decode, greedy_decode_batch
from asr.tokenizer import CharTokenizer

TOKENIZER = CharTokenizer()


def frames_for(symbols: str, confidence: float = 0.9) -> torch.Tensor:
    """``(T, V)`` log-probs whose best path is ``symbols`` ('_' = blank, ' ' = word delimiter)."""
    index = {"_": 0, " ": 1}
    probs = torch.full((len(symbols), TOKENIZER.vocab_size), (1 - confidence) / (TOKENIZER.vocab_size - 1))
    for t, s in enumerate(symbols):
        probs[t, index.get(s, TOKENIZER.tokens.index(s) if s in TOKENIZER.tokens else 0)] = confidence
    return probs.log()


def test_repeats_merge_and_blanks_split():
    hyp = greedy_decode(frames_for("__HH_E_LL_LLO__ WW_O_R_LD_"), TOKENIZER)
    assert hyp.text == "HELLO WORLD"
    assert [w.word for w in hyp.words] == ["HELLO", "WORLD"]
    assert hyp.words[0].start_frame == 2 and hyp.words[0].end_frame == 12
    assert hyp.words[1].start_frame == 16
    assert hyp.words[0].confidence == pytest.approx(0.9)
    assert hyp.score == pytest.approx(26 * math.log(0.9), rel=1e-5)


def test_all_blank_gives_empty_text():
    hyp = greedy_decode(frames_for("_____"), TOKENIZER)
    assert hyp.text == "" and hyp.words == ()


def test_leading_and_doubled_delimiters_give_single_spaces():
    assert greedy_decode(frames_for(" _A_ _ _B "), TOKENIZER).text == "A B"


def test_batch_respects_lengths():
    a, b = frames_for("_A_B_"), frames_for("_C_AAAA")
    batch = torch.stack([torch.cat([a, frames_for("__")]), b])
    assert [h.text for h in greedy_decode_batch(batch, torch.tensor([5, 7]), TOKENIZER)] == ["AB", "CA"]
