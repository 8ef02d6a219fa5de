"""Training: the loop learns, skips bad data, and resumes exactly."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import soundfile
import torch

import asr.train.loading
import asr.train.step
import asr.train.trainer
from asr.audio import SAMPLE_RATE
from asr.checkpoint import load_checkpoint
from asr.config import load_toml
from asr.errors import ConfigError
from asr.features import FeatureConfig, LogMel, StatsAccumulator
from asr.manifest import Utterance, read_manifest, write_manifest
from asr.network import ModelConfig
from asr.train.augment import SpecAugmentConfig
from asr.train.concat import JoinedDataset
from asr.train.config import DataConfig, OptimConfig, TrainConfig, load_train_config
from asr.train.data import bucket_batches, ctc_min_frames
from asr.train.state import STATE_JSON, encode_state, restore_state
from asr.train.step import learning_rate
from asr.train.trainer import train
from tests.conftest import tone_sequence

# Each letter is a tone: a task an LSTM learns in a few dozen steps.
LETTER_HZ = {"A": 300.0, "B": 700.0, "C": 1200.0, "D": 2000.0}
WORDS = ["AB", "CAD", "BAD", "DAB", "CAB", "ADD", "BC", "DC"]


def word_audio(text: str) -> np.ndarray:
    freqs = []
    for word in text.split():
        freqs += [LETTER_HZ[c] for c in word] + [0.0]
    return tone_sequence(freqs, seconds_each=0.12)


@pytest.fixture
def toy_corpus(tmp_path):
    return make_toy_corpus(tmp_path)


def make_toy_corpus(tmp_path):
    """A manifest of tone 'speech', plus one unreadable file and one too short for its text."""
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    utts = []
    for i in range(24):
        text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 3))
        path = audio_dir / f"u{i}.wav"
        soundfile.write(str(path), word_audio(text), SAMPLE_RATE)
        utts.append(Utterance(path, text, f"u{i}"))
    bad = audio_dir / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    short = audio_dir / "short.wav"
    soundfile.write(str(short), np.zeros(SAMPLE_RATE // 10, dtype=np.float32), SAMPLE_RATE)
    write_manifest(
        tmp_path / "train.jsonl", utts + [Utterance(bad, "AB", "bad"), Utterance(short, "ABCD ABCD", "short")]
    )
    write_manifest(tmp_path / "valid.jsonl", utts[:6])
    logmel, stats = LogMel(FeatureConfig()), StatsAccumulator(FeatureConfig().n_mels)
    for utt in utts:
        stats.add(logmel(torch.from_numpy(word_audio(utt.text))))
    (tmp_path / "stats.json").write_text(json.dumps(stats.result().to_dict()))
    return tmp_path


def toy_config(root, **overrides) -> TrainConfig:
    config = TrainConfig(
        data=DataConfig(str(root / "train.jsonl"), str(root / "valid.jsonl"), str(root / "stats.json"), "toy"),
        exp_dir=str(root / "exp"),
        epochs=2,
        max_batch_frames=400,
        speed_factors=(0.9, 1.0),
        checkpoint_every_steps=0,
        model=ModelConfig(hidden_size=64, num_layers=2, dropout=0.0),
        # Masks as wide as the tones would erase them: keep them narrow.
        specaugment=SpecAugmentConfig(freq_mask_width=2, time_mask_width=4),
        optim=OptimConfig(peak_lr=1e-2, warmup_steps=4),
    )
    return dataclasses.replace(config, **overrides)


def test_bad_and_short_utterances_are_skipped_and_counted(toy_corpus, caplog):
    caplog.set_level(logging.INFO)
    data = asr.train.loading.build_data(toy_config(toy_corpus), progress_bars=False)
    assert len(data.train) == 24
    assert data.train.report.unreadable == ["bad"]
    assert data.train.report.too_short == ["short"]
    assert "skipped 1 unreadable, 1 too short" in caplog.text


def test_training_learns_and_writes_checkpoints(toy_corpus):
    # With the level perturbation on: it needs the features' statistics, which the trainer passes.
    specaugment = SpecAugmentConfig(freq_mask_width=2, time_mask_width=4, gain_db=6.0)
    progress = train(toy_config(toy_corpus, epochs=15, specaugment=specaugment), progress_bars=False)
    losses = [row["train_loss"] for row in progress.history]
    assert losses[-1] < 0.5 * losses[0]
    assert progress.history[-1]["valid_cer"] < 0.2
    exp = toy_corpus / "exp"
    best = load_checkpoint(exp / "best")
    assert best.provenance["attribution"] == "toy"
    assert (exp / "last" / "trainer.json").is_file()
    assert list((exp / "tensorboard").iterdir())


def test_resumption_is_exact(toy_corpus, monkeypatch):
    straight = train(toy_config(toy_corpus, exp_dir=str(toy_corpus / "a")), progress_bars=False)

    class Interrupted(Exception):
        pass

    original_save = asr.train.trainer.Trainer.save

    def save_then_die(self, name):
        original_save(self, name)
        if self.progress.step == 3:
            raise Interrupted

    config = toy_config(toy_corpus, exp_dir=str(toy_corpus / "b"), checkpoint_every_steps=3)
    monkeypatch.setattr(asr.train.trainer.Trainer, "save", save_then_die)
    with pytest.raises(Interrupted):
        train(config, progress_bars=False)
    monkeypatch.setattr(asr.train.trainer.Trainer, "save", original_save)
    with pytest.raises(ConfigError, match="pass --resume"):
        train(config, progress_bars=False)
    resumed = train(config, resume=True, progress_bars=False)

    assert resumed.step == straight.step
    assert resumed.history == straight.history
    a = load_checkpoint(toy_corpus / "a" / "last").model.state_dict()
    b = load_checkpoint(toy_corpus / "b" / "last").model.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_joined_training_uses_pairs_of_one_speaker_and_resumes_exactly(toy_corpus, monkeypatch):
    # Two speakers, each reading a run of the toy utterances.
    manifest = toy_corpus / "train.jsonl"
    utts = read_manifest(manifest)
    write_manifest(manifest, [dataclasses.replace(u, speaker=f"s{i // 12}") for i, u in enumerate(utts)])
    join = dataclasses.replace(toy_config(toy_corpus).data, join_share=0.5, join_max_seconds=3.0)
    data = asr.train.loading.build_data(toy_config(toy_corpus, data=join), progress_bars=False)
    pairs = [g for g in data.train.groups if len(g) == 2]
    assert isinstance(data.train, JoinedDataset) and len(data.train) == 24 - len(pairs) and pairs
    assert all(data.train.base.examples[a].speaker == data.train.base.examples[b].speaker for a, b in pairs)

    straight = train(toy_config(toy_corpus, data=join, exp_dir=str(toy_corpus / "a")), progress_bars=False)
    config = toy_config(toy_corpus, data=join, exp_dir=str(toy_corpus / "b"), checkpoint_every_steps=2)
    original_save = asr.train.trainer.Trainer.save

    def save_then_die(self, name):
        original_save(self, name)
        if self.progress.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(asr.train.trainer.Trainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress_bars=False)
    monkeypatch.setattr(asr.train.trainer.Trainer, "save", original_save)
    resumed = train(config, resume=True, progress_bars=False)
    assert resumed.history == straight.history
    assert all(np.isfinite(row["train_loss"]) for row in straight.history)


def test_training_from_disk_equals_training_from_memory(toy_corpus):
    """``data.loader_workers``: batches featurised in worker processes, same weights."""
    memory = toy_config(toy_corpus, exp_dir=str(toy_corpus / "memory"), epochs=1)
    disk = dataclasses.replace(
        memory, exp_dir=str(toy_corpus / "disk"), data=dataclasses.replace(memory.data, loader_workers=2)
    )
    assert train(memory, progress_bars=False).history == train(disk, progress_bars=False).history
    a = load_checkpoint(toy_corpus / "memory" / "last").model.state_dict()
    b = load_checkpoint(toy_corpus / "disk" / "last").model.state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(
        data=DataConfig("t", "v", "s"), optim=OptimConfig(peak_lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    )
    rates = [learning_rate(step, 100, config) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[-1] == pytest.approx(0.1, abs=1e-3)


def test_buckets_cover_every_example_once_and_respect_the_budget():
    frames = [int(x) for x in np.random.default_rng(0).integers(100, 900, size=200)]
    batches = bucket_batches(frames, 3000, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert all(len(b) * max(frames[i] for i in b) <= 3000 or len(b) == 1 for b in batches)
    assert batches == bucket_batches(frames, 3000, seed=1, epoch=0)
    assert batches != bucket_batches(frames, 3000, seed=1, epoch=1)


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([5, 5, 5]) == 5


def test_config_rejects_unknown_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('epochs = 3\nlearning_rat = 1\n[data]\ntrain_manifest = "t"\nvalid_manifest = "v"\nstats = "s"\n')
    with pytest.raises(ConfigError, match="unknown key.*learning_rat"):
        load_toml(TrainConfig, path)
    path.write_text('epochs = "many"\n[data]\ntrain_manifest = "t"\nvalid_manifest = "v"\nstats = "s"\n')
    with pytest.raises(ConfigError, match="epochs: expected int"):
        load_train_config(path)


def test_config_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "c.toml"
    path.write_text(
        'exp_dir = "../exp"\n[data]\ntrain_manifest = "t.jsonl"\nvalid_manifest = "v"\nstats = "s"\n[model]\nhidden_size = 8\n'
    )
    config = load_train_config(path)
    assert config.exp_dir == str(tmp_path / "exp")
    assert config.data.train_manifest == str(tmp_path / "conf" / "t.jsonl")
    assert config.model.hidden_size == 8


def test_a_config_extends_its_base_table_by_table(tmp_path):
    (tmp_path / "conf").mkdir()
    base = tmp_path / "conf" / "base.toml"
    base.write_text(
        'exp_dir = "../exp/a"\nepochs = 12\n[data]\ntrain_manifest = "t.jsonl"\nvalid_manifest = "v"\nstats = "s"\n'
        "[model]\nhidden_size = 8\nnum_layers = 3\n[optim]\npeak_lr = 2e-3\n"
    )
    middle = tmp_path / "conf" / "middle.toml"
    middle.write_text('base = "base.toml"\nexp_dir = "../exp/b"\n[model]\nnum_layers = 4\n')
    child = tmp_path / "conf" / "child.toml"
    child.write_text('base = "middle.toml"\nepochs = 2\n[optim]\nwarmup_steps = 7\n')
    config = load_train_config(child)
    assert config.exp_dir == str(tmp_path / "exp" / "b") and config.epochs == 2
    assert (config.model.hidden_size, config.model.num_layers) == (8, 4)
    assert (config.optim.peak_lr, config.optim.warmup_steps) == (2e-3, 7)
    assert config.data.train_manifest == str(tmp_path / "conf" / "t.jsonl")
    assert load_train_config(base).model.num_layers == 3  # the base itself is unchanged
    base.write_text('base = "child.toml"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_train_config(child)
    child.write_text('base = "../other/base.toml"\n')
    with pytest.raises(ConfigError, match="same folder"):
        load_train_config(child)
    child.write_text('base = "missing.toml"\n')
    with pytest.raises(ConfigError, match="missing.toml"):
        load_train_config(child)


def test_init_from_starts_from_a_checkpoints_weights(toy_corpus):
    train(toy_config(toy_corpus, epochs=1), progress_bars=False)
    source = load_checkpoint(toy_corpus / "exp" / "last").model.state_dict()
    config = toy_config(toy_corpus, exp_dir=str(toy_corpus / "warm"), init_from=str(toy_corpus / "exp" / "last"))
    data = asr.train.loading.build_data(config, progress_bars=False)
    trainer = asr.train.trainer.Trainer(config, data, progress_bars=False)
    trainer.initialize_from(config.init_from)
    for name, weight in trainer.model.state_dict().items():
        assert torch.equal(weight, source[name]), name
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, hidden_size=32))
    with pytest.raises(ConfigError, match="more than the front end"):
        asr.train.trainer.Trainer(other, data, progress_bars=False).initialize_from(config.init_from)
    # A new front end: the weights whose names and shapes agree are taken, the rest start fresh.
    conv = dataclasses.replace(config, model=dataclasses.replace(config.model, frontend="conv2d", conv_channels=4))
    trainer = asr.train.trainer.Trainer(conv, data, progress_bars=False)
    trainer.initialize_from(config.init_from)
    weights = trainer.model.state_dict()
    assert torch.equal(weights["head.weight"], source["head.weight"])
    assert torch.equal(weights["forward_layers.0.weight_hh_l0"], source["forward_layers.0.weight_hh_l0"])
    assert weights["forward_layers.0.weight_ih_l0"].shape != source["forward_layers.0.weight_ih_l0"].shape
    assert "frontend.proj.weight" in weights and "frontend.proj.weight" not in source
    # A deeper stack takes the checkpoint's layers as its lowest and its head; the new top starts fresh.
    deeper = dataclasses.replace(
        config, model=dataclasses.replace(config.model, num_layers=config.model.num_layers + 1)
    )
    trainer = asr.train.trainer.Trainer(deeper, data, progress_bars=False)
    trainer.initialize_from(config.init_from)
    weights = trainer.model.state_dict()
    assert all(torch.equal(weights[name], source[name]) for name in source)
    top = f"forward_layers.{config.model.num_layers}.weight_hh_l0"
    assert top in weights and top not in source
    # Dropout shapes no weight: a warm start may change it.
    more_dropout = dataclasses.replace(config, model=dataclasses.replace(config.model, dropout=0.4))
    asr.train.trainer.Trainer(more_dropout, data, progress_bars=False).initialize_from(config.init_from)
    # A phone head added to a characters-only model starts fresh; every other weight is taken.
    cmudict = toy_corpus / "cmudict.dict"
    cmudict.write_text("hello HH AH0 L OW1\n")
    phones = dataclasses.replace(
        config, model=dataclasses.replace(config.model, aux_phone_layer=1),
        data=dataclasses.replace(config.data, cmudict=str(cmudict)),
    )  # fmt: skip
    trainer = asr.train.trainer.Trainer(phones, data, progress_bars=False)
    trainer.initialize_from(config.init_from)
    weights = trainer.model.state_dict()
    assert "aux_head.weight" in weights and "aux_head.weight" not in source
    assert all(torch.equal(weights[name], source[name]) for name in source)


def test_epoch_checkpoints_keep_the_newest_and_amp_is_ignored_on_a_cpu(toy_corpus, caplog):
    caplog.set_level(logging.INFO)
    config = toy_config(toy_corpus, epochs=3, keep_epoch_checkpoints=2, amp=True, device="cpu")
    train(config, progress_bars=False)
    exp = toy_corpus / "exp"
    assert sorted(p.name for p in exp.glob("epoch-*")) == ["epoch-2", "epoch-3"]
    assert load_checkpoint(exp / "epoch-3").provenance["epoch"] == 3
    assert not (exp / "epoch-3" / "trainer.json").exists()  # weights only; `last` resumes
    assert caplog.text.count("amp = true is ignored") == 1


def test_trainer_state_of_earlier_versions_still_resumes(toy_corpus):
    """States written before progress counted global batches had one process: a step was a batch."""
    data = asr.train.loading.build_data(toy_config(toy_corpus), progress_bars=False)
    trainer = asr.train.trainer.Trainer(toy_config(toy_corpus), data, progress_bars=False)
    trainer.progress.step = 7
    files = encode_state(trainer.progress, trainer.optimizer)
    meta = json.loads(files[STATE_JSON])
    del meta["world_size"], meta["grad_scaler"], meta["progress"]["batches_done"]
    files[STATE_JSON] = json.dumps(meta).encode()
    for name, content in files.items():
        (toy_corpus / name).write_bytes(content)
    restored = restore_state(toy_corpus, trainer.optimizer)
    assert restored.world_size == 1 and restored.progress.batches_done == restored.progress.step == 7


def test_config_rejects_bad_device_and_negative_epoch_checkpoints():
    data = DataConfig("t", "v", "s")
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        TrainConfig(data=data, device="gpu")
    with pytest.raises(ConfigError, match="keep_epoch_checkpoints"):
        TrainConfig(data=data, keep_epoch_checkpoints=-1)


def test_steps_with_a_non_finite_loss_are_skipped_counted_and_reported(toy_corpus, monkeypatch, caplog):
    real_loss = asr.train.step.compute_loss
    calls = {"n": 0}

    def sometimes_nan(model, batch, *rest):
        calls["n"] += 1
        loss, utts = real_loss(model, batch, *rest)
        return (loss * float("nan"), utts) if calls["n"] in (2, 3) else (loss, utts)

    monkeypatch.setattr(asr.train.step, "compute_loss", sometimes_nan)
    caplog.set_level(logging.WARNING)
    result = train(toy_config(toy_corpus, epochs=1), progress_bars=False)
    assert result.history[-1]["skipped_steps"] == 2
    assert "step 2: loss nan is not finite; step skipped (1 skipped so far)" in caplog.text
    weights = load_checkpoint(toy_corpus / "exp" / "last").model.state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_training_stops_clearly_when_the_loss_stays_non_finite(toy_corpus, monkeypatch):
    from asr.errors import TrainingError

    real_loss = asr.train.step.compute_loss
    monkeypatch.setattr(asr.train.step, "MAX_SKIPPED_IN_A_ROW", 3)

    def infinite(model, batch, *rest):
        loss, utts = real_loss(model, batch, *rest)
        return loss * float("inf"), utts

    monkeypatch.setattr(asr.train.step, "compute_loss", infinite)
    with pytest.raises(TrainingError, match="the last 3 training steps had a non-finite loss"):
        train(toy_config(toy_corpus, epochs=1), progress_bars=False)
