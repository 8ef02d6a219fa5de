"""Live recognition with the unidirectional model: streams, endpointing and dictation.

``import streaming`` needs no audio device; the microphone code imports sounddevice (and so
PortAudio) only when it runs. The decoders (greedy, beam) are the library's own, chosen by name
from :mod:`asr.decoding.registry`.
"""

from streaming.endpoint import EndpointConfig
from streaming.stream import Recognizer, RecognizerConfig, Stream, StreamFinishedError

__all__ = [
    "EndpointConfig",
    "Recognizer",
    "RecognizerConfig",
    "Stream",
    "StreamFinishedError",
]
