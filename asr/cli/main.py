"""The ``asr`` command: a thin layer over the library, one flag per keyword.

The live commands (``dictate``) are in :mod:`asr.cli.live`, the benchmarks in
:mod:`asr.cli.bench`, the flags they share in :mod:`asr.cli.common`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asr.cli.args import (
    MIN_SEGMENT_SECONDS,
    Parser,
    float_at_least,
    int_at_least,
    non_negative_int,
    positive_int,
)
from asr.cli.bench import add_bench_parser
from asr.cli.common import EXIT_ERROR as EXIT_ERROR  # tests and scripts import the statuses from here
from asr.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_decoder_flags,
    add_model_flags,
    decode_options,
    load_model_from_args,
)
from asr.cli.errors import make_output_dir, read_text_argument, run_command
from asr.cli.live import add_dictate_parser
from asr.cli.models import add_models_parser
from asr.cli.output import OUTPUT_FORMATS, TranscriptWriter
from asr.cli.serve import add_serve_parser
from asr.cli.stats import add_stats_parser
from asr.errors import ASRError, ConfigError
from asr.longform_config import SplitConfig

if TYPE_CHECKING:
    from asr.tokenizer import Tokenizer

logger = logging.getLogger("asr")


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.audio_decode import STDIN
    from asr.file_batches import transcribe_files

    if args.files.count(STDIN) > 1:
        raise ConfigError(f"{STDIN} (standard input) can be given once: it is read once")
    # Before any work: a combination that cannot be written is refused up front.
    writer = TranscriptWriter(args.files, args.output_format, args.output_dir, args.keep_folders)
    model = load_model_from_args(args)
    failed = 0
    word_timestamps = args.word_timestamps or args.output_format in ("srt", "vtt", "tsv", "all")
    results = transcribe_files(
        model, args.files, progress=sys.stderr.isatty(), word_timestamps=word_timestamps,
        max_segment_seconds=args.max_segment_seconds, **decode_options(args),
    )  # fmt: skip
    for path, transcript in results:
        if isinstance(transcript, ASRError):
            print(f"error: {transcript}", file=sys.stderr)
            failed += 1
            continue
        writer.write(path, transcript)
    if failed and len(args.files) > 1:  # one input's error line says it all
        print(f"{failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asr.evaluate import evaluate

    summary = evaluate(load_model_from_args(args), args.manifest, report_dir=args.report_dir, **decode_options(args))
    print(
        f"WER {100 * summary['wer']:.2f}% CER {100 * summary['cer']:.2f}% "
        f"({summary['utterances']} utterances, {summary['words']} words, {len(summary['failed'])} failed, "
        f"RTF {summary['decode_seconds'] / max(summary['audio_seconds'], 1e-9):.4f})"
    )
    return EXIT_SOME_FAILED if summary["failed"] else EXIT_OK


def cmd_align(args: argparse.Namespace) -> int:
    from asr.cli.align import align_file, align_manifest
    from asr.formats import render

    if not args.manifest and (not args.audio or args.text is None):
        raise ConfigError("give AUDIO and TEXT, or --manifest")
    text = None if args.manifest else read_text_argument(args.text)
    if args.manifest:
        make_output_dir(args.output_dir)
    model = load_model_from_args(args)
    if args.manifest:
        failed = align_manifest(model, args.manifest, Path(args.output_dir))
        return EXIT_SOME_FAILED if failed else EXIT_OK
    try:
        transcript = align_file(model, args.audio, text)
    except ASRError as exc:  # the input failed (audio unusable, transcript too long): not usage
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    sys.stdout.write(render(transcript, "json"))
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from asr.train.config import load_train_config
    from asr.train.distributed import context_from_env
    from asr.train.trainer import train

    main_process = context_from_env().is_main
    if not main_process:  # under torchrun rank 0 speaks for the job; the others would repeat it
        logging.getLogger().setLevel(logging.ERROR)
    progress = train(load_train_config(args.config), resume=args.resume, progress_bars=main_process)
    if main_process:
        print(json.dumps(progress.history[-1] if progress.history else {}, indent=2))
    return EXIT_OK


def cmd_average(args: argparse.Namespace) -> int:
    from asr.train.average import average_last_epochs

    result = average_last_epochs(args.exp_dir, args.last, args.output)
    print(f"{result.output}: the mean of {', '.join(str(s) for s in result.sources)}")
    return EXIT_OK


def _lexicon_tokenizer(model: str | None) -> Tokenizer:
    """The tokenizer that spells a lexicon: ``model``'s (a checkpoint or bundled name), else characters."""
    from asr.api import BUNDLED_MODELS, bundled_model_path
    from asr.checkpoint import load_tokenizer
    from asr.tokenizer import CharTokenizer

    if model is None:
        return CharTokenizer()
    return load_tokenizer(bundled_model_path(model) if model in BUNDLED_MODELS else model)


def cmd_lm_build(args: argparse.Namespace) -> int:
    from asr.lm.build import build_lm

    files = build_lm(
        [Path(p) for p in args.text], Path(args.output_dir), order=args.order, prune=args.prune,
        binary=args.binary, compact=args.compact, keep_arpa=args.keep_arpa, layout=args.layout, tokenizer=_lexicon_tokenizer(args.model),
    )  # fmt: skip
    print(f"language model: {files.lm}\nlexicon: {files.lexicon}\nprovenance: {files.metadata}")
    return EXIT_OK


def cmd_lm_lexicon(args: argparse.Namespace) -> int:
    from asr.lm.build import arpa_vocabulary, write_lexicon

    tokenizer = _lexicon_tokenizer(args.model)
    written, skipped = write_lexicon(arpa_vocabulary(Path(args.arpa)), Path(args.output), tokenizer)
    print(f"lexicon: {args.output} ({written} words, {skipped} left out: characters the model cannot spell)")
    return EXIT_OK


def cmd_bpe(args: argparse.Namespace) -> int:
    from asr.bpe import train_bpe
    from asr.manifest import read_manifest

    texts = [utt.text for manifest in args.manifest for utt in read_manifest(manifest)]
    tokenizer = train_bpe(texts, args.vocab_size, Path(args.output))
    print(f"BPE model: {args.output} ({tokenizer.vocab_size} tokens, the blank included)")
    return EXIT_OK


def _add_lexicon_model_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None,
        help="spell the lexicon with this model's tokenizer (checkpoint directory or bundled name; "
        "a BPE model needs its own lexicon); default: characters",
    )  # fmt: skip


def _add_transcribe_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument(
        "files", nargs="+", metavar="FILE",
        help="audio files (WAV, FLAC, OGG/Opus, MP3, and what FFmpeg reads: M4A/AAC, MP4, WebM, WMA, ...); "
        "- reads standard input (ffmpeg -i talk.mkv -f wav - | asr transcribe -)",
    )  # fmt: skip
    add_model_flags(p)
    add_decoder_flags(p)
    p.add_argument("--word-timestamps", action="store_true", help="align words: start, end and confidence")
    p.add_argument(
        "--max-segment-seconds", type=float_at_least(MIN_SEGMENT_SECONDS),
        default=SplitConfig.max_seconds,  # TranscribeOptions.max_segment_seconds' default
        help=f"longer audio is cut at pauses into pieces of at most this many seconds, {MIN_SEGMENT_SECONDS:g} or more",
    )  # fmt: skip
    p.add_argument(
        "--output-format", choices=OUTPUT_FORMATS, default="txt",
        help="output format; on stdout json is JSON Lines (one object per input) and several inputs are "
        "told apart in each format's way; all needs --output-dir",
    )  # fmt: skip
    p.add_argument("--output-dir", default=None, help="write <stem>.<ext> per input here instead of printing")
    p.add_argument(
        "--keep-folders", action="store_true",
        help="with --output-dir: mirror the inputs' folders (below their common parent) under it, so that "
        "inputs of the same name in different folders keep their own outputs",
    )  # fmt: skip
    p.set_defaults(func=cmd_transcribe)


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="WER and CER of a model on a manifest")
    add_model_flags(p)
    add_decoder_flags(p)
    p.add_argument("--manifest", required=True, help="JSONL manifest with audio and reference text")
    p.add_argument("--report-dir", default=None, help="write recogs, aligned errors and summaries here")
    p.set_defaults(func=cmd_evaluate)


def _add_align_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="forced alignment: word times of a known transcript")
    p.add_argument("audio", nargs="?", metavar="AUDIO", help="audio file")
    p.add_argument("text", nargs="?", metavar="TEXT", help="its transcript, or a file holding it")
    p.add_argument("--manifest", default=None, help="align every utterance of this manifest instead")
    p.add_argument("--output-dir", default="alignments", help="with --manifest: <id>.json per utterance here")
    add_model_flags(p)
    p.set_defaults(func=cmd_align)


def _add_training_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model from a TOML config (on many processes: torchrun ... -m asr.cli train ...)"
    )
    p.add_argument("--config", required=True, help="training config (TOML)")
    p.add_argument(
        "--resume", action="store_true",
        help="continue from <exp_dir>/last (also with another number of processes)",
    )  # fmt: skip
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("average", help="average the weights of the last N epoch checkpoints of a training run")
    p.add_argument("--exp-dir", required=True, help="the run's exp_dir, holding epoch-<n> checkpoints")
    p.add_argument(
        "--last", type=positive_int, required=True, metavar="N", help="average the newest N epoch checkpoints"
    )
    p.add_argument("--output", required=True, metavar="DIR", help="checkpoint directory to write")
    p.set_defaults(func=cmd_average)


def _add_bpe_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bpe", help="train a SentencePiece BPE model (output units) on manifests' transcripts")
    p.add_argument("--manifest", nargs="+", required=True, metavar="FILE", help="JSONL manifests whose text to use")
    p.add_argument(
        "--vocab-size", type=int_at_least(2), required=True, metavar="N",
        help="tokens of the model, the CTC blank included (its training config's model.vocab_size)",
    )  # fmt: skip
    p.add_argument("--output", required=True, metavar="FILE", help="the .model file to write")
    p.set_defaults(func=cmd_bpe)


def _add_lm_parser(sub: argparse._SubParsersAction) -> None:
    from asr.lm.build import DEFAULT_ORDER, MAX_ORDER, MIN_ORDER

    lm = sub.add_parser("lm", help="n-gram language models for beam search")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("build", help="estimate a KenLM n-gram LM and its lexicon from text files")
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text files (Gutenberg books too)")
    p.add_argument(
        "--order", type=int_at_least(MIN_ORDER, MAX_ORDER), default=DEFAULT_ORDER,
        help=f"n-gram order, {MIN_ORDER} to {MAX_ORDER}",
    )  # fmt: skip
    p.add_argument(
        "--output", dest="output_dir", required=True, metavar="DIR",
        help="directory for lm.bin, lexicon.txt, corpus.txt and lm.json",
    )  # fmt: skip
    p.add_argument("--no-binary", dest="binary", action="store_false", help="keep the model as lm.arpa only")
    p.add_argument("--keep-arpa", action="store_true", help="keep lm.arpa beside lm.bin")
    p.add_argument(
        "--compact", action="store_true",
        help="lm.bin as a trie with 8-bit quantised weights: several times smaller (for shipping), slower to query",
    )  # fmt: skip
    p.add_argument(
        "--prune", nargs="+", type=non_negative_int, default=None, metavar="N",
        help="lmplz count thresholds per order, first 0 (e.g. 0 1 1: drop singleton bigrams and trigrams)",
    )  # fmt: skip
    p.add_argument(
        "--layout", choices=("auto", "lines", "prose"), default="auto",
        help="sentences are lines, or prose split at punctuation (auto: prose for Gutenberg books)",
    )  # fmt: skip
    _add_lexicon_model_flag(p)
    p.set_defaults(func=cmd_lm_build)
    p = lm_sub.add_parser("lexicon", help="a lexicon for an existing ARPA LM (e.g. the official LibriSpeech LMs)")
    p.add_argument("--arpa", required=True, help="ARPA file, plain or .gz")
    p.add_argument("--output", required=True, help="lexicon file to write")
    _add_lexicon_model_flag(p)
    p.set_defaults(func=cmd_lm_lexicon)


def build_parser() -> argparse.ArgumentParser:
    """The ``asr`` parser; building it (and so ``--help`` and usage errors) imports no torch."""
    from asr import __version__

    parser = Parser(prog="asr", description="Speech recognition: transcribe, evaluate, train.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_models_parser(sub)
    _add_transcribe_parser(sub)
    _add_evaluate_parser(sub)
    _add_align_parser(sub)
    add_dictate_parser(sub)
    add_serve_parser(sub)
    _add_training_parsers(sub)
    add_stats_parser(sub)
    add_bench_parser(sub)
    _add_lm_parser(sub)
    _add_bpe_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
