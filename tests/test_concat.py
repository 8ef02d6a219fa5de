"""Joined training examples: consecutive utterances of one speaker, laid end to end."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from asr.errors import ConfigError
from asr.features import FeatureConfig, FeatureExtractor, Normalizer
from asr.manifest import Utterance
from asr.tokenizer import CharTokenizer
from asr.train.concat import JOIN_SEPARATOR, JoinedDataset, join_groups
from asr.train.config import DataConfig, TrainConfig
from asr.train.data import FeatureDataset, bucket_batches

TEXTS = ["HELLO WORLD", "A CAT", "SPEECH IS FUN", "NO", "THE LAST ONE HERE", "AND ONE MORE"]
SPEAKERS = ["a", "a", "a", "b", "b", None]


def covers_in_order(groups, count):
    return [i for group in groups for i in group] == list(range(count))


def test_groups_cover_every_index_once_and_pair_only_one_speakers_neighbours():
    speakers = [f"s{i // 7}" for i in range(700)] + [None] * 50
    frames = [100 + (i * 37) % 300 for i in range(750)]
    groups = join_groups(speakers, frames, share=0.5, max_frames=500, seed=3)
    assert covers_in_order(groups, 750)
    pairs = [g for g in groups if len(g) == 2]
    assert pairs and all(len(g) in (1, 2) for g in groups)
    for first, second in pairs:
        assert second == first + 1 and speakers[first] == speakers[second] is not None
        assert frames[first] + frames[second] <= 500


def test_about_the_share_asked_is_joined():
    count = 4000
    groups = join_groups(["one"] * count, [100] * count, share=0.4, max_frames=1000, seed=7)
    joined = sum(len(g) for g in groups if len(g) == 2) / count
    assert joined == pytest.approx(0.4, abs=0.03)
    assert join_groups(["one"] * count, [100] * count, share=0.0, max_frames=1000, seed=7) == [
        (i,) for i in range(count)
    ]


def test_groups_depend_only_on_the_seed():
    speakers, frames = ["x"] * 200, [50] * 200
    assert join_groups(speakers, frames, 0.5, 200, seed=1) == join_groups(speakers, frames, 0.5, 200, seed=1)
    assert join_groups(speakers, frames, 0.5, 200, seed=1) != join_groups(speakers, frames, 0.5, 200, seed=2)


def test_share_out_of_range_is_refused():
    with pytest.raises(ValueError, match="share"):
        join_groups(["a"], [1], share=1.0, max_frames=10, seed=0)


@pytest.fixture
def base(tmp_path, speechlike):
    utts = []
    for i, (text, speaker) in enumerate(zip(TEXTS, SPEAKERS)):
        audio = np.roll(speechlike, 1000 * i)[: 16000 + 2000 * i]
        path = tmp_path / f"u{i}.wav"
        soundfile.write(path, audio, 16000)
        utts.append(Utterance(path, text, f"u{i}", len(audio) / 16000, speaker))
    extractor = FeatureExtractor(FeatureConfig(), Normalizer.identity(80))
    return FeatureDataset(utts, extractor, CharTokenizer(), 4, (0.9, 1.0, 1.1), progress=False)


def test_a_joined_pair_is_its_utterances_end_to_end(base):
    tokenizer = CharTokenizer()
    joined = JoinedDataset(base, tokenizer, 4, share=0.9, max_frames=10_000, seed=0)
    assert covers_in_order(joined.groups, len(base))
    pairs = [(n, g) for n, g in enumerate(joined.groups) if len(g) == 2]
    assert pairs, joined.groups
    for item, (first, second) in pairs:
        a, b = base.examples[first], base.examples[second]
        assert a.speaker == b.speaker is not None
        for speed in range(3):
            example = joined.example(item, speed)
            assert torch.equal(example.features[0], torch.cat([a.features[speed], b.features[speed]]))
            assert example.text == f"{a.text} {b.text}"
            assert example.tokens.tolist() == tokenizer.encode(example.text)
            assert example.id == f"{a.id}{JOIN_SEPARATOR}{b.id}"
        assert joined.num_frames(item) == base.num_frames(first) + base.num_frames(second)


def test_batches_hold_every_utterance_once_at_its_speed(base):
    joined = JoinedDataset(base, CharTokenizer(), 4, share=0.9, max_frames=10_000, seed=0)
    batches = bucket_batches([joined.num_frames(i) for i in range(len(joined))], 2000, seed=1, epoch=0)
    speeds = [[(i + len(b)) % 3 for i in range(len(b))] for b in batches]
    seen = []
    for indices, choice, batch in zip(batches, speeds, joined.batches(batches, speeds)):
        for row, (item, speed) in enumerate(zip(indices, choice)):
            expected = joined.example(item, speed)
            assert batch.ids[row] == expected.id
            assert batch.lengths[row] == expected.features[0].shape[0]
        seen += [u for i in batch.ids for u in i.split(JOIN_SEPARATOR)]
    assert sorted(seen) == sorted(ex.id for ex in base.examples)


def test_pairs_longer_than_the_limit_stay_apart(base):
    longest_single = max(base.num_frames(i) for i in range(len(base)))
    joined = JoinedDataset(base, CharTokenizer(), 4, share=0.9, max_frames=longest_single, seed=0)
    assert all(len(g) == 1 for g in joined.groups)


def test_config_refuses_a_bad_share_and_on_the_fly_loading():
    data = DataConfig("train.jsonl", "valid.jsonl", "stats.json", join_share=1.5)
    with pytest.raises(ConfigError, match="join_share"):
        TrainConfig(data=data)
    data = DataConfig("train.jsonl", "valid.jsonl", "stats.json", join_share=0.3, loader_workers=2)
    with pytest.raises(ConfigError, match="in-memory"):
        TrainConfig(data=data)
