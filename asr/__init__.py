"""A speech recognition toolkit: log-mel features, an LSTM encoder trained with CTC, greedy or
beam-search decoding with a KenLM word LM; ``streaming`` runs the unidirectional model live.

>>> import asr
>>> asr.load_model("default").transcribe("speech.wav").text

Where each job lives, and which way the imports run: ``ARCHITECTURE.md`` at the repository root.
"""

from asr.lazy import lazy_exports

# Each name and the module that defines it, imported when first used (PEP 562): ``import
# asr.cli`` and ``asr --help`` then need no torch, while ``asr.load_model`` works as before.
_EXPORTS = {
    "Model": "api", "TranscribeOptions": "api", "load_model": "api",
    "ASRError": "errors", "AudioError": "errors", "CheckpointError": "errors", "ConfigError": "errors",
    "ManifestError": "errors", "Segment": "transcript", "Transcript": "transcript", "Word": "transcript",
}  # fmt: skip
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


__getattr__ = lazy_exports(__name__, _EXPORTS)
