"""The ``asr`` command: a thin layer over the library, one flag per keyword."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from asr.errors import ASRError
from asr.files import write_text_atomic

if TYPE_CHECKING:
    from asr.tokenizer import Tokenizer

logger = logging.getLogger("asr")

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2
OUTPUT_FORMATS = ("txt", "json", "srt", "vtt", "tsv")


def decode_options(args: argparse.Namespace) -> dict:
    """The keywords of :meth:`asr.api.Model.transcribe` given by the decoder flags."""
    options = {"decoder": args.decoder}
    if args.decoder == "beam":
        options.update(
            beam_size=args.beam_size, beam_threshold=args.beam_threshold, lm=args.lm, lexicon=args.lexicon,
            lm_weight=args.lm_weight, word_score=args.word_score, nbest=args.nbest,
        )  # fmt: skip
    return options


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.api import load_model
    from asr.formats import FORMATS, render

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    failed = 0
    formats = FORMATS if args.output_format == "all" else (args.output_format,)
    if args.output_dir:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    for path in args.files:
        try:
            transcript = model.transcribe(
                path, word_timestamps=args.word_timestamps or args.output_format in ("srt", "vtt", "tsv", "all"),
                max_segment_seconds=args.max_segment_seconds, progress=sys.stderr.isatty(), **decode_options(args),
            )  # fmt: skip
        except ASRError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if args.output_dir:
            for fmt in formats:
                write_text_atomic(Path(args.output_dir) / f"{Path(path).stem}.{fmt}", render(transcript, fmt))
        elif args.output_format == "txt":
            prefix = f"{path}: " if len(args.files) > 1 else ""
            sys.stdout.write(prefix + render(transcript, "txt"))
        else:
            for fmt in formats:
                sys.stdout.write(render(transcript, fmt))
        sys.stdout.flush()
    if failed:
        print(f"{failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asr.evaluate import evaluate

    torch.set_num_threads(args.threads)
    summary = evaluate(args.model, args.manifest, report_dir=args.report_dir, **decode_options(args))
    print(
        f"WER {100 * summary['wer']:.2f}% CER {100 * summary['cer']:.2f}% "
        f"({summary['utterances']} utterances, {summary['words']} words, {len(summary['failed'])} failed, "
        f"RTF {summary['decode_seconds'] / max(summary['audio_seconds'], 1e-9):.4f})"
    )
    return EXIT_SOME_FAILED if summary["failed"] else EXIT_OK


def cmd_align(args: argparse.Namespace) -> int:
    from asr.align import align_file, align_manifest
    from asr.api import load_model
    from asr.formats import render

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if args.manifest:
        failed = align_manifest(model, args.manifest, Path(args.output_dir))
        return EXIT_SOME_FAILED if failed else EXIT_OK
    if not args.audio or args.text is None:
        raise ASRError("give AUDIO and TEXT, or --manifest")
    text = Path(args.text).read_text(encoding="utf-8") if Path(args.text).is_file() else args.text
    transcript = align_file(model, args.audio, text)
    sys.stdout.write(render(transcript, "json"))
    return EXIT_OK


def _recognizer(args: argparse.Namespace, endpoint=None):
    """A :class:`streaming.Recognizer` for ``--model`` with the decoder flags."""
    from asr.api import load_model
    from asr.beam import BeamConfig
    from streaming.endpoint import EndpointConfig
    from streaming.stream import Recognizer, RecognizerConfig

    options = decode_options(args)
    beam = (
        BeamConfig(**{k: v for k, v in options.items() if k != "decoder"}) if args.decoder == "beam" else BeamConfig()
    )
    config = RecognizerConfig(args.decoder, beam, endpoint or EndpointConfig())
    return Recognizer(load_model(args.model), config)


def cmd_dictate(args: argparse.Namespace) -> int:
    from streaming.audio_source import FileSource, Microphone, list_devices
    from streaming.dictate import Display, dictate
    from streaming.endpoint import EndpointConfig

    if args.list_devices:
        print(list_devices())
        return EXIT_OK
    torch.set_num_threads(args.threads)
    endpoint = EndpointConfig(silence_after_speech=args.silence_after_speech, max_segment=args.max_segment)
    recognizer = _recognizer(args, endpoint)
    source = FileSource(args.input, realtime=args.realtime) if args.input else Microphone(args.device)
    if not args.input:
        print(f"listening on {source.name} ({source.sample_rate} Hz); Ctrl+C to stop", file=sys.stderr)
    report = dictate(
        recognizer, source, source.sample_rate, Display(sys.stdout, live=sys.stdout.isatty()),
        Path(args.output) if args.output else None,
    )  # fmt: skip
    print(
        f"dictated {report.transcript.duration:.1f} s of audio in {len(report.transcript.segments)} segment(s); "
        f"{report.overflows} input overflow(s)" + (" (audio was lost)" if report.overflows else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from asr.distributed import context_from_env
    from asr.train import train
    from asr.train_config import load_train_config

    main_process = context_from_env().is_main
    if not main_process:  # under torchrun rank 0 speaks for the job; the others would repeat it
        logging.getLogger().setLevel(logging.ERROR)
    progress = train(load_train_config(args.config), resume=args.resume, progress_bars=main_process)
    if main_process:
        print(json.dumps(progress.history[-1] if progress.history else {}, indent=2))
    return EXIT_OK


def cmd_average(args: argparse.Namespace) -> int:
    from asr.average import average_last_epochs

    result = average_last_epochs(args.exp_dir, args.last, args.output)
    print(f"{result.output}: the mean of {', '.join(str(s) for s in result.sources)}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from asr.api import load_model
    from asr.bench import bench_transcribe
    from asr.manifest import read_manifest
    from asr.text import normalize_text

    paths = [Path(p) for p in args.files]
    texts = None
    if args.manifest:
        utterances = read_manifest(args.manifest)
        paths += [u.audio for u in utterances]
        texts = None if args.files else [normalize_text(u.text) for u in utterances]
    if not paths:
        raise ASRError("give audio files or --manifest to benchmark")
    if args.streaming:
        return _bench_streaming(args, paths, texts)
    if args.peers:
        return _bench_peers(args, paths, texts)
    result = bench_transcribe(
        load_model(args.model), paths, threads=args.threads, repeats=args.repeats, **decode_options(args)
    )
    print(result.report())
    return EXIT_OK


def _bench_peers(args: argparse.Namespace, paths: list[Path], texts: list[str] | None) -> int:
    from asr.api import load_model
    from asr.audio import load_audio
    from asr.bench import compare_systems, scores_table
    from asr.peers import PocketSphinx

    if texts is None:
        raise ASRError("--peers scores accuracy: give --manifest (with transcripts) and no loose files")
    model = load_model(args.model)
    options = decode_options(args)
    peer = PocketSphinx()
    waveforms = [load_audio(p, model.sample_rate) for p in paths]
    ours = f"{model.name or args.model} ({args.decoder})"
    systems = [(ours, lambda w: model.transcribe(w, **options).text), (peer.name, peer.transcribe)]
    print(scores_table(compare_systems(systems, waveforms, texts, model.sample_rate, args.threads)))
    return EXIT_OK


def _bench_streaming(args: argparse.Namespace, paths: list[Path], texts: list[str] | None) -> int:
    import numpy as np

    from asr.audio import load_audio
    from streaming.bench import bench_streaming, memory_growth
    from streaming.latency import boundaries_beside

    if args.model is None:
        args.model = "streaming"
    recognizer = _recognizer(args)
    waveforms = [load_audio(p, recognizer.sample_rate) for p in paths]
    result = bench_streaming(recognizer, waveforms, args.threads, [boundaries_beside(p) for p in paths], texts)
    print(result.report())
    if args.soak_seconds > 0:
        before, after = memory_growth(recognizer, np.concatenate(waveforms), args.soak_seconds)
        print(
            f"memory: one stream of {args.soak_seconds:.0f} s (the audio repeated): resident {before:.1f} MB after "
            f"the first minute, {after:.1f} MB at the end: growth {after - before:+.1f} MB"
        )
    return EXIT_OK


def _lexicon_tokenizer(model: str | None) -> Tokenizer:
    """The tokenizer that spells a lexicon: ``model``'s (a checkpoint or bundled name), else characters."""
    from asr.api import BUNDLED_MODELS, bundled_model_path
    from asr.checkpoint import load_tokenizer
    from asr.text import CharTokenizer

    if model is None:
        return CharTokenizer()
    return load_tokenizer(bundled_model_path(model) if model in BUNDLED_MODELS else model)


def cmd_lm_build(args: argparse.Namespace) -> int:
    from asr.lm import build_lm

    files = build_lm(
        [Path(p) for p in args.text], Path(args.output_dir), order=args.order, prune=args.prune,
        binary=args.binary, keep_arpa=args.keep_arpa, layout=args.layout, tokenizer=_lexicon_tokenizer(args.model),
    )  # fmt: skip
    print(f"language model: {files.lm}\nlexicon: {files.lexicon}\nprovenance: {files.metadata}")
    return EXIT_OK


def cmd_lm_lexicon(args: argparse.Namespace) -> int:
    from asr.lm import arpa_vocabulary, write_lexicon

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


def _add_model_flags(parser: argparse.ArgumentParser, model_required: bool = False) -> None:
    parser.add_argument(
        "--model", required=model_required, default=None,
        help="checkpoint directory, or the name of a bundled model (default: the bundled 'default')",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the network (default 1)")


def _add_decoder_flags(parser: argparse.ArgumentParser) -> None:
    from asr.beam import BeamConfig

    defaults = BeamConfig()
    group = parser.add_argument_group("decoding")
    group.add_argument("--decoder", choices=("greedy", "beam"), default="greedy", help="decoding method")
    group.add_argument("--beam-size", type=int, default=defaults.beam_size, help="hypotheses kept per frame (beam)")
    group.add_argument(
        "--beam-threshold", type=float, default=defaults.beam_threshold,
        help="prune hypotheses scoring this far below the best (beam)",
    )  # fmt: skip
    group.add_argument("--lm", default=None, help="KenLM language model, ARPA or binary (beam)")
    group.add_argument(
        "--lexicon", default=None,
        help="lexicon (WORD<TAB>W O R D |, or WORD<TAB>▁WO RD for a BPE model); default with --lm: "
        "the lexicon.txt beside the LM (beam)",
    )  # fmt: skip
    group.add_argument("--lm-weight", type=float, default=defaults.lm_weight, help="language model weight (beam)")
    group.add_argument("--word-score", type=float, default=defaults.word_score, help="word insertion score (beam)")
    group.add_argument("--nbest", type=int, default=1, help="hypotheses returned per segment, with scores (beam)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Speech recognition: transcribe, evaluate, train.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG/Opus, MP3)")
    _add_model_flags(p)
    _add_decoder_flags(p)
    p.add_argument("--word-timestamps", action="store_true", help="align words: start, end and confidence")
    p.add_argument(
        "--max-segment-seconds", type=float, default=30.0,
        help="longer audio is cut at quiet moments into pieces of at most this length",
    )  # fmt: skip
    p.add_argument("--output-format", choices=OUTPUT_FORMATS + ("all",), default="txt", help="output format")
    p.add_argument("--output-dir", default=None, help="write <stem>.<ext> per input here instead of printing")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("evaluate", help="WER and CER of a model on a manifest")
    _add_model_flags(p)
    _add_decoder_flags(p)
    p.add_argument("--manifest", required=True, help="JSONL manifest with audio and reference text")
    p.add_argument("--report-dir", default=None, help="write recogs, aligned errors and summaries here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("align", help="forced alignment: word times of a known transcript")
    p.add_argument("audio", nargs="?", metavar="AUDIO", help="audio file")
    p.add_argument("text", nargs="?", metavar="TEXT", help="its transcript, or a file holding it")
    p.add_argument("--manifest", default=None, help="align every utterance of this manifest instead")
    p.add_argument("--output-dir", default="alignments", help="with --manifest: <id>.json per utterance here")
    _add_model_flags(p)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("dictate", help="live transcription from the microphone (or a replayed file)")
    p.add_argument("--list-devices", action="store_true", help="list capture devices and exit")
    p.add_argument("--device", default=None, help="capture device index or name (default: the system default)")
    p.add_argument("--input", default=None, metavar="FILE", help="replay this audio file instead of a microphone")
    p.add_argument("--realtime", action="store_true", help="with --input: pace the file like a live microphone")
    p.add_argument("--output", default=None, metavar="FILE", help="append each finalized segment to this file")
    p.add_argument(
        "--silence-after-speech", type=float, default=0.8,
        help="seconds of silence after speech that end a segment",
    )  # fmt: skip
    p.add_argument("--max-segment", type=float, default=20.0, help="longest segment in seconds")
    _add_model_flags(p)
    _add_decoder_flags(p)
    p.set_defaults(func=cmd_dictate, model="streaming")

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
    p.add_argument("--last", type=int, required=True, metavar="N", help="average the newest N epoch checkpoints")
    p.add_argument("--output", required=True, metavar="DIR", help="checkpoint directory to write")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("bench", help="measure transcription speed (audio seconds per compute second)")
    p.add_argument("files", nargs="*", metavar="FILE", help="audio files to transcribe")
    p.add_argument("--manifest", default=None, help="also every file of this manifest")
    p.add_argument("--repeats", type=int, default=1, help="passes over the files")
    p.add_argument(
        "--streaming", action="store_true",
        help="measure live recognition instead: 100 ms chunks through a Stream (model default: 'streaming'); "
        "finalization latency uses hand-labelled word ends from <audio>.wrd where present",
    )  # fmt: skip
    p.add_argument(
        "--peers", action="store_true",
        help="also run pocketsphinx (pip install pocketsphinx) on the same audio: WER and RTF of each",
    )  # fmt: skip
    p.add_argument(
        "--soak-seconds", type=float, default=0.0,
        help="with --streaming: also feed one stream this long (the audio repeated) and report memory growth",
    )  # fmt: skip
    _add_model_flags(p)
    _add_decoder_flags(p)
    p.set_defaults(func=cmd_bench)

    lm = sub.add_parser("lm", help="n-gram language models for beam search")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("build", help="estimate a KenLM n-gram LM and its lexicon from text files")
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text files (Gutenberg books too)")
    p.add_argument("--order", type=int, default=3, help="n-gram order, 2 to 6 (default 3)")
    p.add_argument(
        "--output", dest="output_dir", required=True, metavar="DIR",
        help="directory for lm.bin, lexicon.txt, corpus.txt and lm.json",
    )  # fmt: skip
    p.add_argument("--no-binary", dest="binary", action="store_false", help="keep the model as lm.arpa only")
    p.add_argument("--keep-arpa", action="store_true", help="keep lm.arpa beside lm.bin")
    p.add_argument(
        "--prune", nargs="+", type=int, default=None, metavar="N",
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

    p = sub.add_parser("bpe", help="train a SentencePiece BPE model (output units) on manifests' transcripts")
    p.add_argument("--manifest", nargs="+", required=True, metavar="FILE", help="JSONL manifests whose text to use")
    p.add_argument(
        "--vocab-size", type=int, required=True, metavar="N",
        help="tokens of the model, the CTC blank included (its training config's model.vocab_size)",
    )  # fmt: skip
    p.add_argument("--output", required=True, metavar="FILE", help="the .model file to write")
    p.set_defaults(func=cmd_bpe)
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
