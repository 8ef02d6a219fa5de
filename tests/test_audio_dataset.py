"""On-the-fly training data gives the batches the in-memory features give."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from asr.features import FeatureConfig, FeatureExtractor, Normalizer
from asr.manifest import Utterance
from asr.tokenizer import CharTokenizer
from asr.train.data import AudioDataset, FeatureDataset, bucket_batches, collate

TEXTS = ["HELLO WORLD", "A CAT", "SPEECH IS FUN", "NO", "THE LAST ONE HERE"]


@pytest.fixture
def utterances(tmp_path, speechlike):
    utts = []
    for i, text in enumerate(TEXTS):
        audio = np.roll(speechlike, 1000 * i)[: 16000 + 4000 * i]
        path = tmp_path / f"u{i}.wav"
        soundfile.write(path, audio, 16000)
        utts.append(Utterance(path, text, f"u{i}", len(audio) / 16000))
    return utts


def datasets(utterances, workers=0):
    extractor = FeatureExtractor(FeatureConfig(), Normalizer.identity(80))
    factors = (0.9, 1.0, 1.1)
    tokenizer = CharTokenizer()
    memory = FeatureDataset(utterances, extractor, tokenizer, 4, factors, progress=False)
    lazy = AudioDataset(utterances, extractor, tokenizer, 4, factors, workers=workers)
    return memory, lazy


@pytest.mark.parametrize("workers", [0, 2])
def test_same_batches_as_in_memory_features(utterances, workers):
    memory, lazy = datasets(utterances, workers)
    assert len(lazy) == len(memory) == len(TEXTS)
    assert [lazy.num_frames(i) for i in range(len(lazy))] == [memory.num_frames(i) for i in range(len(memory))]
    batches = bucket_batches([lazy.num_frames(i) for i in range(len(lazy))], 600, seed=1, epoch=0)
    generator = torch.Generator().manual_seed(0)
    choices = [torch.randint(0, 3, (len(b),), generator=generator).tolist() for b in batches]
    streamed = list(lazy.batches(batches, choices))
    assert len(streamed) == len(batches)
    for indices, speeds, got in zip(batches, choices, streamed):
        expected = collate([memory.examples[i] for i in indices], speeds)
        assert got.ids == expected.ids and got.texts == expected.texts
        assert torch.equal(got.lengths, expected.lengths) and torch.equal(got.tokens, expected.tokens)
        assert torch.allclose(got.features, expected.features, atol=1e-5)


def test_unreadable_audio_is_left_out_of_its_batch(utterances, caplog):
    utterances[1].audio.write_bytes(b"not audio")
    _, lazy = datasets(utterances)
    batches = list(lazy.batches([[0, 1], [1]], [[1, 1], [1]]))
    assert batches[0].ids == ("u0",) and batches[1] is None
    assert "u1" in caplog.text


def test_missing_durations_are_read_from_the_files(utterances):
    utterances[0] = Utterance(utterances[0].audio, utterances[0].text, "u0", None)
    utterances[1].audio.write_bytes(b"not audio")
    utterances[1] = Utterance(utterances[1].audio, utterances[1].text, "u1", None)
    memory, lazy = datasets(utterances)
    assert lazy.report.unreadable == ["u1"] and lazy.num_frames(0) == memory.num_frames(0)
