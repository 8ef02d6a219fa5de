"""Live recognition with the unidirectional model: streams, endpointing and dictation.

``import streaming`` needs no audio device; the microphone code imports sounddevice (and so
PortAudio) only when it runs. The decoders (greedy, beam) are the library's own, chosen by name
from :mod:`asr.decoding.registry`.
"""

from asr.lazy import lazy_exports

# Each name and the module that defines it, imported when first used (PEP 562): the command
# line reads EndpointConfig's defaults for its help without importing torch.
_EXPORTS = {
    "EndpointConfig": "endpoint", "Recognizer": "stream", "RecognizerConfig": "stream", "Stream": "stream",
    "StreamFinishedError": "stream",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
