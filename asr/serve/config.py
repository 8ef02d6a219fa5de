"""How ``asr serve`` runs: one frozen object, read by the app and by the command line.

Nothing here imports torch or FastAPI, so ``asr serve --help`` reads its defaults from
:class:`ServeConfig` without loading either.
"""

from __future__ import annotations

from dataclasses import dataclass

from asr.errors import ConfigError
from asr.quantize import check_quantization

BYTES_PER_MEGABYTE = 1 << 20
LOOPBACK = "127.0.0.1"
STREAM_QUANTIZATION = "int8"  # streaming.stream.DEFAULT_STREAM_QUANTIZATION, without importing torch


@dataclass(frozen=True)
class ServeConfig:
    """The server's settings; change one with :func:`dataclasses.replace`.

    Raises:
        ConfigError: a port out of range, or a limit that is not positive.
    """

    # Loopback only unless told otherwise: a transcription server holds people's speech.
    host: str = LOOPBACK
    port: int = 8000
    # File transcription (bidirectional) and live streams (unidirectional): names of bundled
    # models or checkpoint directories, loaded once when the server starts.
    model: str = "default"
    streaming_model: str = "streaming"
    # With a key, every request and stream needs ``Authorization: Bearer KEY``.
    api_key: str | None = None
    # MiB; OpenAI limits /v1/audio/transcriptions to 25 MB. About 13 minutes of 16 kHz 16-bit WAV.
    max_upload_mb: float = 25.0
    # Each live stream costs a few ms of CPU per 100 ms chunk; eight fit on two busy cores.
    max_streams: int = 8
    # torch threads while the file model computes a batch (asr.threads).
    threads: int = 1
    # The live streams' network weights: int8 as streaming.RecognizerConfig runs them by default
    # (a test checks the two agree), or None for float32.
    stream_quantize: str | None = STREAM_QUANTIZATION
    # How long the batching queue waits for more requests before it runs a batch: a few ms
    # against a forward pass of tens of ms, so a lone request hardly waits.
    batch_wait_ms: float = 10.0
    # Requests at most this long share the short lane; longer ones take their own, so that a
    # long file never holds short ones back for its whole length.
    long_audio_seconds: float = 30.0
    # Largest WebSocket message: a second of float32 at 48 kHz is 192 kB; 1 MiB leaves room.
    max_message_bytes: int = BYTES_PER_MEGABYTE

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be from 0 to 65535, got {self.port}")
        for name in ("max_upload_mb", "max_streams", "threads", "batch_wait_ms", "long_audio_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ServeConfig.{name} must be positive, got {getattr(self, name)}")
        if self.max_message_bytes < 1024:
            raise ConfigError(f"ServeConfig.max_message_bytes must be at least 1024, got {self.max_message_bytes}")
        check_quantization(self.stream_quantize)  # torch-free: asr.quantize imports torch only to quantize
        if self.api_key is not None and not self.api_key:
            raise ConfigError("api_key must not be empty (None serves without a key)")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * BYTES_PER_MEGABYTE)
