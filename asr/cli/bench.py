"""``asr bench``: speed, live recognition, and side-by-side comparison with peers."""

from __future__ import annotations

import argparse
import logging
from importlib import resources
from pathlib import Path

from asr.bench.report import SECTIONS
from asr.cli.args import non_negative_float, positive_float, positive_int
from asr.cli.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_decoder_flags,
    add_model_flags,
    decode_options,
    loaded_quantization,
)
from asr.cli.live import recognizer_from_args
from asr.errors import ASRError
from asr.text import normalize_text

logger = logging.getLogger(__name__)


def cmd_bench(args: argparse.Namespace) -> int:
    from asr.manifest import Utterance, read_manifest

    if args.no_peer and not args.peers:
        raise ASRError("--no-peer leaves pocketsphinx out of --peers: give --peers too")
    utterances = [Utterance(Path(p), "", Path(p).stem) for p in args.files]
    for manifest in args.manifest or []:
        utterances += read_manifest(manifest)
    if not utterances:  # the bundled sample and its transcript, as many times as fill --seconds
        import math

        from asr.audio import audio_duration

        sample = Path(str(resources.files("asr") / "samples" / "sample.wav"))
        copies = 1 if args.streaming or args.peers else math.ceil(args.seconds / audio_duration(sample))
        text = sample.with_suffix(".txt").read_text()
        utterances = [Utterance(sample, text, f"sample-{i}") for i in range(copies)]
    if args.peers:
        return _bench_peers(args)
    if args.streaming:
        if not (args.files or args.manifest):
            raise ASRError("give audio files or --manifest to benchmark")
        paths = [u.audio for u in utterances]
        texts = None if args.files else [normalize_text(u.text) for u in utterances]
        return _bench_streaming(args, paths, texts)
    return _bench_suite(args, utterances)


def _bench_suite(args: argparse.Namespace, utterances: list) -> int:
    from asr.bench.report import figures_table, write_json
    from asr.bench.suite import BenchInputs, SuiteConfig, bench_context, run_suite, speed_subset

    sections = tuple(args.sections.split(",")) if args.sections else SECTIONS
    config = SuiteConfig(sections=sections, seconds=args.seconds, repeats=args.repeats)
    options = decode_options(args)
    lm_options = {k: options[k] for k in ("lm", "lexicon", "lm_weight", "word_score") if options.get(k) is not None}
    inputs = BenchInputs(tuple(utterances), speed_subset(utterances, config.seconds), lm_options)
    result = run_suite(args.model, inputs, config)
    figures = result.figures
    print(figures_table(figures))
    if args.json:
        write_json(figures, Path(args.json), bench_context(args.model, inputs, config))
    unmet = [f"{f.section}: {f.name}" for f in figures if f.meets_bounds is False]
    if unmet:  # a benchmark reports; a busy machine can miss a goal, so the exit status stays 0
        logger.warning("goals not met on this run: %s", "; ".join(unmet))
    if result.failed:
        logger.error("sections that stopped with an error: %s", ", ".join(result.failed))
        return EXIT_SOME_FAILED
    return EXIT_OK


def _bench_peers(args: argparse.Namespace) -> int:
    """pocketsphinx beside the bundled models (or only ``--model`` with the decoder flags), set by set."""
    from asr.api import load_model
    from asr.audio import load_audio
    from asr.bench.peers import PocketSphinx
    from asr.bench.side_by_side import EvalSet, bundled_systems, side_by_side, side_by_side_table
    from asr.manifest import read_manifest

    if args.files or not args.manifest:
        raise ASRError("--peers scores accuracy: give one or more --manifest (with transcripts) and no loose files")
    if args.model is None:
        systems = bundled_systems(with_peer=not args.no_peer)
    else:
        model = load_model(args.model, loaded_quantization(args), threads=args.threads)
        options = decode_options(args)
        systems = [(f"{model.name or args.model} ({args.decoder})", lambda w: model.transcribe(w, **options).text)]
        if not args.no_peer:
            peer = PocketSphinx()
            systems.append((peer.name, peer.transcribe))
    sets = []
    for manifest in args.manifest:
        utterances = read_manifest(manifest)
        waveforms = tuple(load_audio(u.audio, PocketSphinx.sample_rate) for u in utterances)
        sets.append(EvalSet(Path(manifest).stem, waveforms, tuple(normalize_text(u.text) for u in utterances)))
    print(side_by_side_table(side_by_side(systems, sets, PocketSphinx.sample_rate, args.threads)))
    return EXIT_OK


def _bench_streaming(args: argparse.Namespace, paths: list[Path], texts: list[str] | None) -> int:
    import numpy as np

    from asr.audio import load_audio
    from asr.bench.latency import boundaries_beside
    from asr.bench.streaming import bench_streaming, memory_growth

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
    p = sub.add_parser(
        "bench", help="measure speed against references run alongside (asr.bench.suite lists the sections)"
    )
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="audio files (default: the bundled sample, repeated to --seconds)"
    )
    p.add_argument(
        "--manifest", action="append", default=None,
        help="also every utterance of this manifest (repeatable); its transcripts score the int8 model's WER, "
        "and with --peers each manifest is one evaluation set",
    )  # fmt: skip
    p.add_argument("--sections", default=None, help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    p.add_argument("--seconds", type=positive_float, default=60.0, help="audio for the speed figures (the first files)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed passes; the fastest counts")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every figure and its context here")
    p.add_argument(
        "--streaming", action="store_true",
        help="measure live recognition instead: 100 ms chunks through a Stream (model default: 'streaming'); "
        "finalization latency uses hand-labelled word ends from <audio>.wrd where present",
    )  # fmt: skip
    p.add_argument(
        "--peers", action="store_true",
        help="side by side on each --manifest: pocketsphinx (pip install pocketsphinx) and the bundled models "
        "(offline greedy and beam+LM, streamed greedy and beam+LM), or only --model with the decoder flags: "
        "WER, CER and RTF of each",
    )  # fmt: skip
    p.add_argument(
        "--no-peer", action="store_true",
        help="with --peers: leave pocketsphinx out, to measure the bundled models (or --model) again alone",
    )  # fmt: skip
    p.add_argument(
        "--soak-seconds", type=non_negative_float, default=0.0,
        help="with --streaming: also feed one stream this long (the audio repeated) and report memory growth",
    )  # fmt: skip
    add_model_flags(p, default=None)
    add_decoder_flags(p)
    p.set_defaults(func=cmd_bench)
