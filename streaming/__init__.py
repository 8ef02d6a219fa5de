"""Live recognition with the unidirectional model: streams, endpointing and dictation.

``import streaming`` needs no audio device; the microphone code imports sounddevice (and so
PortAudio) only when it runs. The decoders (greedy, beam) are the library's own, chosen by name
from :mod:`asr.decoding.registry`.
"""

from importlib import import_module

# Each name and the module that defines it, imported when first used (PEP 562): the command
# line reads EndpointConfig's defaults for its help without importing torch.
_EXPORTS = {
    "EndpointConfig": "endpoint", "Recognizer": "stream", "RecognizerConfig": "stream", "Stream": "stream",
    "StreamFinishedError": "stream",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
