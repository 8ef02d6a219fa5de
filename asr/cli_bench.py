"""``asr bench``: speed, live recognition, and side-by-side comparison with peers."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli_common import EXIT_OK, add_decoder_flags, add_model_flags, decode_options
from asr.cli_live import recognizer_from_args
from asr.errors import ASRError


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
    recognizer = recognizer_from_args(args)
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


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
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
    add_model_flags(p)
    add_decoder_flags(p)
    p.set_defaults(func=cmd_bench)
