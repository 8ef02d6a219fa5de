"""Phones as a second CTC target: the dictionary, the targets, and a phone loss that words
missing from the dictionary cannot break."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from asr.errors import ConfigError
from asr.network import CTCModel, ModelConfig
from asr.phones import PHONE_TOKENS, PhoneTargets, load_cmudict
from asr.train.data import Batch
from asr.train.step import compute_loss, phone_ctc_loss

DICT = """\
;;; a comment line
hello HH AH0 L OW1
hello(2) HH EH0 L OW1
world W ER1 L D  # a trailing comment
cat K AE1 T
"""


@pytest.fixture
def lexicon(tmp_path):
    path = tmp_path / "cmudict.dict"
    path.write_text(DICT)
    return load_cmudict(path)


def test_dictionary_takes_the_first_pronunciation_without_stress(lexicon):
    assert lexicon == {"HELLO": ("HH", "AH", "L", "OW"), "WORLD": ("W", "ER", "L", "D"), "CAT": ("K", "AE", "T")}


def test_targets_put_a_delimiter_between_words_and_refuse_unknown_words(lexicon):
    phones = PhoneTargets(lexicon)
    ids = phones.encode("HELLO WORLD")
    assert [PHONE_TOKENS[i] for i in ids] == ["HH", "AH", "L", "OW", "|", "W", "ER", "L", "D"]
    assert phones.encode("HELLO ZYZZYVA") is None
    targets, lengths, known = phones.batch(["CAT", "HELLO ZYZZYVA", "HELLO WORLD"])
    assert targets.shape == (3, 9) and lengths.tolist() == [3, 0, 9] and known.tolist() == [True, False, True]
    assert 0 not in targets[2].tolist() and targets[0, 3:].tolist() == [0] * 6


def test_unreadable_or_empty_dictionary_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_cmudict(tmp_path / "missing.dict")
    (tmp_path / "empty.dict").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no pronunciations"):
        load_cmudict(tmp_path / "empty.dict")


def test_real_cmudict_covers_everyday_words(shared_data):
    lexicon = load_cmudict(shared_data / "text" / "cmudict" / "cmudict.dict")
    assert len(lexicon) > 120_000
    assert PhoneTargets(lexicon).encode("MY FRIEND HAS A RED CAR AND A BIG DOG") is not None


def batch_of(texts: list[str], frames: int = 60) -> Batch:
    torch.manual_seed(0)
    return Batch(
        features=torch.randn(len(texts), frames, 80),
        lengths=torch.full((len(texts),), frames),
        tokens=torch.ones(len(texts), 3, dtype=torch.long),
        token_lengths=torch.full((len(texts),), 3),
        ids=tuple(str(i) for i in range(len(texts))),
        texts=tuple(texts),
    )


def test_words_missing_from_the_dictionary_add_no_phone_loss(lexicon):
    torch.manual_seed(0)
    phone_log_probs = torch.randn(3, 15, len(PHONE_TOKENS)).log_softmax(-1)
    lengths = torch.full((3,), 15)
    phones = PhoneTargets(lexicon)
    all_three = phone_ctc_loss(phone_log_probs, lengths, ("CAT", "HELLO ZYZZYVA", "HELLO WORLD"), phones)
    known_only = phone_ctc_loss(phone_log_probs[[0, 2]], lengths[[0, 2]], ("CAT", "HELLO WORLD"), phones)
    torch.testing.assert_close(all_three, known_only)
    assert float(phone_ctc_loss(phone_log_probs[[1]], lengths[[1]], ("HELLO ZYZZYVA",), phones)) == 0.0


def test_phone_head_adds_a_weighted_loss_and_trains(lexicon):
    config = ModelConfig(hidden_size=16, num_layers=2, aux_phone_layer=1, dropout=0.0)
    torch.manual_seed(0)
    model = CTCModel(config)
    batch = batch_of(["CAT", "HELLO ZYZZYVA"])
    phones = PhoneTargets(lexicon)
    chars, n = compute_loss(model, batch)
    with_phones, _ = compute_loss(model, batch, phones, 0.5)
    assert int(n) == 2 and with_phones.item() > chars.item()
    with_phones.backward()
    assert model.aux_head.weight.grad is not None and model.aux_head.weight.grad.abs().sum() > 0
    # Decoding never needs the phone head: the plain forward gives the character outputs only.
    outputs = model(batch.features, batch.lengths)
    assert len(outputs) == 3 and outputs[0].shape[-1] == config.vocab_size


def test_phone_head_is_checked(lexicon):
    with pytest.raises(ValueError, match="aux_phone_layer"):
        ModelConfig(num_layers=2, aux_phone_layer=3)
    model = CTCModel(ModelConfig(hidden_size=8, num_layers=1))
    with pytest.raises(ValueError, match="no auxiliary phone head"):
        model(torch.randn(1, 8, 80), torch.tensor([8]), with_aux=True)
    assert dataclasses.asdict(ModelConfig())["aux_phone_layer"] == 0
