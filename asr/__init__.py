"""A speech recognition toolkit: log-mel features, LSTM encoder with CTC, greedy decoding."""

from asr.api import Model, load_model
from asr.errors import ASRError, AudioError, CheckpointError, ConfigError, ManifestError
from asr.transcript import Segment, Transcript, Word

__all__ = [
    "ASRError", "AudioError", "CheckpointError", "ConfigError", "ManifestError",
    "Model", "Segment", "Transcript", "Word", "load_model",
]  # fmt: skip
__version__ = "0.1.0"
