"""``asr dictate``: live recognition from the microphone or a replayed file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.cli.args import positive_float
from asr.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_decoder_flags,
    add_model_flags,
    decode_options,
    load_model_from_args,
    stream_quantization,
)
from asr.formats import LIVE_FORMATS


def recognizer_from_args(args: argparse.Namespace, endpoint=None):
    """A :class:`streaming.Recognizer` for ``--model`` with the decoder and ``--quantize`` flags."""
    from asr.api import TranscribeOptions
    from streaming.endpoint import EndpointConfig
    from streaming.stream import Recognizer, RecognizerConfig

    options = TranscribeOptions(**decode_options(args))
    model = load_model_from_args(args)
    config = RecognizerConfig(
        options.decoder, model.beam_config(options), endpoint or EndpointConfig(), threads=args.threads,
        quantize=stream_quantization(args),
    )  # fmt: skip
    return Recognizer(model, config)


def cmd_dictate(args: argparse.Namespace) -> int:
    from streaming.audio_source import FileSource, Microphone, StopRequest, list_devices
    from streaming.dictate import Display, dictate, stop_on_interrupt
    from streaming.endpoint import EndpointConfig

    if args.list_devices:
        print(list_devices())
        return EXIT_OK
    endpoint = EndpointConfig(silence_after_speech=args.silence_after_speech, max_segment=args.max_segment)
    recognizer = recognizer_from_args(args, endpoint)
    with stop_on_interrupt(StopRequest()) as stop:  # before "listening": from then on Ctrl+C stops cleanly
        if args.input:
            source = FileSource(args.input, realtime=args.realtime, stop=stop)
        else:
            source = Microphone(args.device, stop=stop)
            print(f"listening on {source.name} ({source.sample_rate} Hz); Ctrl+C to stop", file=sys.stderr)
        report = dictate(
            recognizer, source, source.sample_rate, Display(sys.stdout, sys.stdout.isatty(), args.output_format),
            Path(args.output) if args.output else None, stop=stop,
        )  # fmt: skip
    _print_summary(report)
    if report.device_error:
        print(f"error: {report.device_error}; the text heard before it is kept", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _print_summary(report) -> None:
    """How much was dictated, and what was lost (overflows, audio dropped to keep up), on stderr."""
    lost = ""
    if report.dropped_seconds:
        lost = f"; dropped {report.dropped_seconds:.1f} s of audio it could not recognize in time"
    print(
        f"dictated {report.transcript.duration:.1f} s of audio in {len(report.transcript.segments)} segment(s); "
        f"{report.overflows} input overflow(s)" + (" (audio was lost)" if report.overflows else "") + lost,
        file=sys.stderr,
    )


def add_dictate_parser(sub: argparse._SubParsersAction) -> None:
    from streaming.endpoint import EndpointConfig

    p = sub.add_parser("dictate", help="live transcription from the microphone (or a replayed file)")
    p.add_argument("--list-devices", action="store_true", help="list capture devices and exit")
    p.add_argument("--device", default=None, help="capture device index or name (default: the system default)")
    p.add_argument("--input", default=None, metavar="FILE", help="replay this audio file instead of a microphone")
    p.add_argument("--realtime", action="store_true", help="with --input: pace the file like a live microphone")
    p.add_argument(
        "--output", default=None, metavar="FILE", help="append each finalized segment to this file (in --output-format)"
    )
    p.add_argument(
        "--output-format", choices=LIVE_FORMATS, default="txt",
        help="each finalized segment as its text (txt), or as a JSON Lines record with its start and end in "
        "seconds, text and words (json)",
    )  # fmt: skip
    p.add_argument(
        "--silence-after-speech", type=positive_float, default=EndpointConfig.silence_after_speech,
        help="seconds of silence after speech that end a segment",
    )  # fmt: skip
    p.add_argument(
        "--max-segment", type=positive_float, default=EndpointConfig.max_segment, help="longest segment in seconds"
    )
    add_model_flags(p)
    add_decoder_flags(p)
    p.set_defaults(func=cmd_dictate, model="streaming")
