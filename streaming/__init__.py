"""Live recognition with the unidirectional model: streams, endpointing and dictation.

``import streaming`` needs no audio device; the microphone code imports sounddevice (and so
PortAudio) only when it runs.
"""

from streaming.decoders import BeamDecoder, GreedyDecoder
from streaming.endpoint import EndpointConfig
from streaming.stream import Recognizer, RecognizerConfig, Stream, StreamFinishedError

__all__ = [
    "BeamDecoder",
    "EndpointConfig",
    "GreedyDecoder",
    "Recognizer",
    "RecognizerConfig",
    "Stream",
    "StreamFinishedError",
]
