"""The user-facing model: audio in, :class:`Transcript` out.

>>> import asr
>>> model = asr.load_model()            # the bundled default model
>>> model.transcribe("speech.flac").text
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from asr.audio import AudioInput, load_audio
from asr.checkpoint import Checkpoint, load_checkpoint
from asr.decoding import Hypothesis, greedy_decode
from asr.errors import CheckpointError
from asr.features import FeatureExtractor
from asr.transcript import Segment, Transcript, Word

logger = logging.getLogger(__name__)

BUNDLED_MODELS = ("default",)
"""Models shipped inside the package, loadable by name."""

DECODERS = ("greedy",)


def bundled_model_path(name: str = "default") -> Path:
    """Folder of a model shipped in the package."""
    if name not in BUNDLED_MODELS:
        raise CheckpointError(f"no bundled model named {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
    return Path(str(resources.files("asr") / "models" / name))


class Model:
    """A loaded checkpoint with its feature extractor, tokenizer and decoders."""

    def __init__(self, checkpoint: Checkpoint, name: str = "") -> None:
        self.checkpoint = checkpoint
        self.name = name
        self.network = checkpoint.model.eval()
        self.tokenizer = checkpoint.tokenizer
        self.extractor = FeatureExtractor(checkpoint.features, checkpoint.normalizer)

    @property
    def sample_rate(self) -> int:
        return self.checkpoint.features.sample_rate

    @property
    def seconds_per_output_frame(self) -> float:
        config = self.checkpoint.features
        return self.network.config.stack_frames * config.hop_samples / config.sample_rate

    def log_probs(self, waveform: np.ndarray) -> torch.Tensor:
        """``(T_samples,)`` waveform -> ``(T_out, vocab_size)`` log-probabilities."""
        feats = self.extractor(waveform).unsqueeze(0)  # (1, T, n_mels)
        with torch.inference_mode():
            log_probs, lengths, _ = self.network(feats, torch.tensor([feats.shape[1]]))
        return log_probs[0, : int(lengths[0])]

    def decode(self, log_probs: torch.Tensor, decoder: str = "greedy") -> Hypothesis:
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
        return greedy_decode(log_probs, self.tokenizer)

    def transcribe(self, audio: AudioInput, decoder: str = "greedy") -> Transcript:
        """Transcribe a file path or a ``(T,)`` float waveform at :attr:`sample_rate`.

        Raises:
            AudioError: the audio cannot be read or used; the message names the file.
        """
        waveform = load_audio(audio, self.sample_rate, min_samples=self.checkpoint.features.window_samples)
        duration = waveform.size / self.sample_rate
        hypothesis = self.decode(self.log_probs(waveform), decoder)
        step = self.seconds_per_output_frame
        words = tuple(
            Word(
                w.word,
                round(w.start_frame * step, 3),
                round(min(duration, (w.end_frame + 1) * step), 3),
                round(w.confidence, 4),
            )
            for w in hypothesis.words
        )
        segments = (Segment(hypothesis.text, 0.0, round(duration, 3), words),) if words else ()
        return Transcript(text=hypothesis.text, duration=duration, words=words, segments=segments)


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load a checkpoint directory, or a bundled model by name (None: ``"default"``).

    Raises:
        CheckpointError: the checkpoint is missing, corrupt, edited or foreign.
    """
    if path is None or str(path) in BUNDLED_MODELS:
        name = "default" if path is None else str(path)
        return Model(load_checkpoint(bundled_model_path(name)), name)
    return Model(load_checkpoint(path), str(path))
