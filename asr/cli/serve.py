"""``asr serve``: the transcription server (OpenAI's file endpoint, live streams, a dictation page).

Building the parser imports neither torch nor FastAPI: the defaults come from
:class:`asr.serve.config.ServeConfig`, and the server is imported when the command runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asr.cli.args import int_at_least, positive_float, positive_int
from asr.cli.common import EXIT_OK, NO_QUANTIZATION
from asr.errors import ConfigError
from asr.serve.config import STREAM_QUANTIZATION, ServeConfig

logger = logging.getLogger(__name__)

MAX_PORT = 65535


def _check_model(flag: str, name: str) -> None:
    """A model that cannot be found stops ``asr serve`` here, with one line, not in uvicorn's log.

    Raises:
        ConfigError: ``name`` is neither a bundled model nor an existing path.
    """
    from asr.api import BUNDLED_MODELS

    if name not in BUNDLED_MODELS and not Path(name).exists():
        raise ConfigError(f"{flag} {name}: no such checkpoint, and no bundled model has that name; "
                          f"bundled: {', '.join(BUNDLED_MODELS)}")  # fmt: skip


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """The :class:`ServeConfig` that ``asr serve``'s flags ask for."""
    return ServeConfig(
        host=args.host, port=args.port, model=args.model, streaming_model=args.streaming_model, api_key=args.api_key,
        max_upload_mb=args.max_upload_mb, max_streams=args.max_streams, threads=args.threads,
        stream_quantize=None if args.stream_quantize == NO_QUANTIZATION else args.stream_quantize,
    )  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> int:
    from asr.serve.app import run_server

    _check_model("--model", args.model)
    _check_model("--streaming-model", args.streaming_model)

    config = serve_config(args)
    if config.host != ServeConfig.host and config.api_key is None:
        logger.warning("serving on %s without --api-key: anyone who can reach it may use it", config.host)
    run_server(config)
    return EXIT_OK


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve transcription over HTTP (OpenAI's /v1/audio/transcriptions), live streams and a dictation page",
    )
    p.add_argument(
        "--host",
        default=ServeConfig.host,
        help=f"address to listen on (default: {ServeConfig.host}, this machine only)",
    )
    p.add_argument(
        "--port", type=int_at_least(0, MAX_PORT), default=ServeConfig.port, help="TCP port (0: any free one)"
    )
    p.add_argument(
        "--model", default=ServeConfig.model, help="model for files: checkpoint directory or bundled model name"
    )
    p.add_argument(
        "--streaming-model", default=ServeConfig.streaming_model,
        help="unidirectional model for live streams: checkpoint directory or bundled model name",
    )  # fmt: skip
    p.add_argument(
        "--api-key", default=None,
        help="require 'Authorization: Bearer KEY' on every request and stream (default: no key)",
    )  # fmt: skip
    p.add_argument(
        "--max-upload-mb", type=positive_float, default=ServeConfig.max_upload_mb,
        help="largest request body in MiB; larger uploads get 413",
    )  # fmt: skip
    p.add_argument(
        "--max-streams", type=positive_int, default=ServeConfig.max_streams,
        help="live streams at once; one more is refused (WebSocket close 1013)",
    )  # fmt: skip
    p.add_argument(
        "--threads", type=positive_int, default=ServeConfig.threads, help="CPU threads for the file model's batches"
    )
    p.add_argument(
        "--stream-quantize", choices=(STREAM_QUANTIZATION, NO_QUANTIZATION), default=STREAM_QUANTIZATION,
        help=f"the live streams' network weights (default: {STREAM_QUANTIZATION}, as asr dictate; none: float32)",
    )  # fmt: skip
    p.set_defaults(func=cmd_serve)
