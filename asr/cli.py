"""The ``asr`` command: a thin layer over the library, one flag per keyword."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.errors import ASRError
from asr.files import write_text_atomic

logger = logging.getLogger("asr")

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2
OUTPUT_FORMATS = ("txt", "json")


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.api import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    failed = 0
    if args.output_dir:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    for path in args.files:
        try:
            transcript = model.transcribe(path, decoder=args.decoder)
        except ASRError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        rendered = {"txt": transcript.text + "\n", "json": json.dumps(transcript.to_dict(), indent=2) + "\n"}
        if args.output_dir:
            for fmt in OUTPUT_FORMATS if args.output_format == "all" else (args.output_format,):
                write_text_atomic(Path(args.output_dir) / f"{Path(path).stem}.{fmt}", rendered[fmt])
        elif args.output_format == "json":
            sys.stdout.write(rendered["json"])
        else:
            prefix = f"{path}: " if len(args.files) > 1 else ""
            sys.stdout.write(prefix + rendered["txt"])
        sys.stdout.flush()
    if failed:
        print(f"{failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asr.evaluate import evaluate

    torch.set_num_threads(args.threads)
    summary = evaluate(args.model, args.manifest, report_dir=args.report_dir, decoder=args.decoder)
    print(
        f"WER {100 * summary['wer']:.2f}% CER {100 * summary['cer']:.2f}% "
        f"({summary['utterances']} utterances, {summary['words']} words, {len(summary['failed'])} failed)"
    )
    return EXIT_SOME_FAILED if summary["failed"] else EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from asr.train import train
    from asr.train_config import load_train_config

    progress = train(load_train_config(args.config), resume=args.resume)
    print(json.dumps(progress.history[-1] if progress.history else {}, indent=2))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from asr.api import load_model
    from asr.bench import bench_transcribe
    from asr.manifest import read_manifest

    paths = [Path(p) for p in args.files]
    if args.manifest:
        paths += [u.audio for u in read_manifest(args.manifest)]
    if not paths:
        raise ASRError("give audio files or --manifest to benchmark")
    result = bench_transcribe(
        load_model(args.model), paths, threads=args.threads, decoder=args.decoder, repeats=args.repeats
    )
    print(result.report())
    return EXIT_OK


def _add_model_flags(parser: argparse.ArgumentParser, model_required: bool = False) -> None:
    parser.add_argument(
        "--model", required=model_required, default=None,
        help="checkpoint directory, or the name of a bundled model (default: the bundled 'default')",
    )  # fmt: skip
    parser.add_argument("--decoder", choices=("greedy",), default="greedy", help="decoding method")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the network (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Speech recognition: transcribe, evaluate, train.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG/Opus, MP3)")
    _add_model_flags(p)
    p.add_argument("--output-format", choices=OUTPUT_FORMATS + ("all",), default="txt", help="output format")
    p.add_argument("--output-dir", default=None, help="write <stem>.<ext> per input here instead of printing")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("evaluate", help="WER and CER of a model on a manifest")
    _add_model_flags(p)
    p.add_argument("--manifest", required=True, help="JSONL manifest with audio and reference text")
    p.add_argument("--report-dir", default=None, help="write recogs, aligned errors and summaries here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model from a TOML config")
    p.add_argument("--config", required=True, help="training config (TOML)")
    p.add_argument("--resume", action="store_true", help="continue from <exp_dir>/last")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bench", help="measure transcription speed (audio seconds per compute second)")
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files to transcribe")
    p.add_argument("--manifest", default=None, help="also every file of this manifest")
    p.add_argument("--repeats", type=int, default=1, help="passes over the files")
    _add_model_flags(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ASRError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
