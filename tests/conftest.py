"""Shared fixtures: the shared speech data, tiny checkpoints and synthetic audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import SAMPLE_RATE
from asr.checkpoint import save_checkpoint
from asr.features import FeatureConfig, Normalizer
from asr.network import CTCModel, ModelConfig
from asr.tokenizer import CharTokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("ASR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "speechocean762").is_dir():
        pytest.skip(f"shared speech data not found at {root} (set ASR_SHARED_DATA)")
    return root


@pytest.fixture(autouse=True)
def _one_thread_and_seed():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def tone_sequence(freqs: list[float], seconds_each: float = 0.15, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(T,)`` float32 audio: one sine tone per entry of ``freqs`` (0 gives silence)."""
    t = np.arange(int(seconds_each * rate)) / rate
    parts = [0.3 * np.sin(2 * np.pi * f * t) if f else np.zeros_like(t) for f in freqs]
    return np.concatenate(parts).astype(np.float32)


@pytest.fixture
def speechlike() -> np.ndarray:
    """Two seconds of seeded noise shaped by moving tones: nonstationary, speech-length audio."""
    rng = np.random.default_rng(0)
    return (
        tone_sequence([200, 450, 0, 900, 1500, 300, 0, 2500] * 2, 0.125) + 0.01 * rng.standard_normal(32000)
    ).astype(np.float32)


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A randomly initialised small bidirectional model saved as a real checkpoint."""
    return make_tiny_checkpoint(tmp_path)


def make_tiny_checkpoint(tmp_path: Path) -> Path:
    """:func:`tiny_checkpoint` in ``tmp_path/tiny`` (for fixtures of wider scope)."""
    tokenizer = CharTokenizer()
    config = ModelConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_layers=2)
    torch.manual_seed(0)
    features = FeatureConfig()
    return save_checkpoint(
        tmp_path / "tiny", CTCModel(config), features, Normalizer.identity(features.n_mels), tokenizer, {"note": "test"}
    )


@pytest.fixture
def write_audio(tmp_path):
    """Write ``(T,)`` audio to ``tmp_path/name`` in the format its suffix names."""

    def write(name: str, audio: np.ndarray, rate: int = SAMPLE_RATE, **kwargs) -> Path:
        path = tmp_path / name
        soundfile.write(str(path), audio, rate, **kwargs)
        return path

    return write
