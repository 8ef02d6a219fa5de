"""Checkpoint averaging: the mean of known weights, provenance, and refusal of mismatched models."""

from __future__ import annotations

import pytest
import torch

from asr.checkpoint import load_checkpoint, save_checkpoint
from asr.cli.main import EXIT_ERROR, EXIT_OK, main
from asr.errors import CheckpointError, ConfigError
from asr.features import FeatureConfig, Normalizer
from asr.network import CTCModel, ModelConfig
from asr.tokenizer import CharTokenizer
from asr.train.average import average_checkpoints, average_last_epochs, average_state_dicts
from asr.train.experiment import epoch_checkpoints, epoch_name, prune_epoch_checkpoints

TOKENIZER = CharTokenizer()
SMALL = ModelConfig(vocab_size=TOKENIZER.vocab_size, hidden_size=8, num_layers=1)


def save_epoch(exp_dir, epoch: int, fill: float | None = None, config: ModelConfig = SMALL) -> CTCModel:
    """Save ``epoch-<epoch>``: random weights, or every weight equal to ``fill``."""
    model = CTCModel(config)
    if fill is not None:
        with torch.no_grad():
            for weight in model.parameters():
                weight.fill_(fill)
    features = FeatureConfig()
    save_checkpoint(
        exp_dir / epoch_name(epoch), model, features, Normalizer.identity(features.n_mels), TOKENIZER,
        {"epoch": epoch},
    )  # fmt: skip
    return model


def test_the_average_of_known_weights_is_their_mean(tmp_path):
    save_epoch(tmp_path, 1, fill=100.0)  # too old to be among the last two
    save_epoch(tmp_path, 2, fill=1.0)
    save_epoch(tmp_path, 3, fill=4.0)
    result = average_last_epochs(tmp_path, 2, tmp_path / "avg")
    assert [p.name for p in result.sources] == ["epoch-2", "epoch-3"]
    averaged = load_checkpoint(tmp_path / "avg")
    for name, weight in averaged.model.state_dict().items():
        assert torch.equal(weight, torch.full_like(weight, 2.5)), name
    assert averaged.provenance["averaged"]["epochs"] == [2, 3]
    assert averaged.provenance["epoch"] == 3  # the rest is the newest input's


def test_the_average_of_random_weights_matches_a_hand_computed_mean(tmp_path):
    models = [save_epoch(tmp_path, epoch) for epoch in (1, 2, 3)]
    average_checkpoints([tmp_path / epoch_name(e) for e in (1, 2, 3)], tmp_path / "avg")
    averaged = load_checkpoint(tmp_path / "avg").model.state_dict()
    for name, weight in averaged.items():
        expected = sum(m.state_dict()[name] for m in models) / len(models)
        torch.testing.assert_close(weight, expected, msg=name)
    assert average_state_dicts([models[0].state_dict()])["head.bias"].equal(models[0].state_dict()["head.bias"])


def test_checkpoints_of_different_models_are_not_averaged(tmp_path):
    save_epoch(tmp_path, 1)
    save_epoch(tmp_path, 2, config=ModelConfig(vocab_size=TOKENIZER.vocab_size, hidden_size=16, num_layers=1))
    with pytest.raises(CheckpointError, match="model configs differ.*hidden_size: 8 vs 16"):
        average_last_epochs(tmp_path, 2, tmp_path / "avg")
    assert not (tmp_path / "avg").exists()


def test_average_refuses_too_few_checkpoints_and_overwriting_an_input(tmp_path):
    save_epoch(tmp_path, 1)
    with pytest.raises(CheckpointError, match="last 2 epochs, it holds 1 epoch checkpoints \\(epoch-1\\)"):
        average_last_epochs(tmp_path, 2, tmp_path / "avg")
    with pytest.raises(ConfigError, match="at least 1"):
        average_last_epochs(tmp_path, 0, tmp_path / "avg")
    with pytest.raises(ConfigError, match="overwrite"):
        average_last_epochs(tmp_path, 1, tmp_path / "epoch-1")


def test_asr_average_command(tmp_path, capsys):
    save_epoch(tmp_path, 1, fill=1.0)
    save_epoch(tmp_path, 2, fill=2.0)
    args = ["average", "--exp-dir", str(tmp_path), "--last", "2", "--output", str(tmp_path / "avg")]
    assert main(args) == EXIT_OK
    assert "epoch-1" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "avg").model.head.bias.eq(1.5).all()
    save_epoch(tmp_path, 3, config=ModelConfig(vocab_size=TOKENIZER.vocab_size, hidden_size=4, num_layers=1))
    assert main([*args[:-1], str(tmp_path / "avg2")]) == EXIT_ERROR
    assert "model configs differ" in capsys.readouterr().err


def test_epoch_checkpoints_are_listed_in_order_and_pruned_to_the_newest(tmp_path):
    for epoch in (10, 2, 9):
        (tmp_path / epoch_name(epoch)).mkdir()
    (tmp_path / "epoch-3.old").mkdir()  # left by an interrupted save: not an epoch checkpoint
    (tmp_path / "epoch-4").write_text("not a directory")
    assert [e for e, _ in epoch_checkpoints(tmp_path)] == [2, 9, 10]
    removed = prune_epoch_checkpoints(tmp_path, keep=2)
    assert [p.name for p in removed] == ["epoch-2"]
    assert [e for e, _ in epoch_checkpoints(tmp_path)] == [9, 10]
