"""A speech recognition toolkit: log-mel features, an LSTM encoder trained with CTC, greedy or
beam-search decoding with a KenLM word LM; ``streaming`` runs the unidirectional model live.

>>> import asr
>>> asr.load_model("default").transcribe("speech.wav").text

Where each job lives, and which way the imports run: ``ARCHITECTURE.md`` at the repository root.
"""

from asr.api import Model, TranscribeOptions, load_model
from asr.errors import ASRError, AudioError, CheckpointError, ConfigError, ManifestError
from asr.transcript import Segment, Transcript, Word

__all__ = [
    "ASRError", "AudioError", "CheckpointError", "ConfigError", "ManifestError",
    "Model", "Segment", "Transcript", "TranscribeOptions", "Word", "load_model",
]  # fmt: skip
__version__ = "0.1.0"
