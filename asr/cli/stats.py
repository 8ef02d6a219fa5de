"""``asr stats``: the feature statistics (``stats.json``) that ``asr train`` normalises with.

The global log-mel mean and standard deviation over a training manifest, computed by the
recipes' own :func:`asr.train.recipe.compute_stats`; a training config names the file as
``data.stats``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.cli.args import non_negative_int, positive_int
from asr.cli.common import EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from asr.files import write_text_atomic
    from asr.manifest import read_manifest
    from asr.train.recipe import compute_stats

    utterances = [utt for manifest in args.manifest for utt in read_manifest(manifest)]
    normalizer = compute_stats(utterances, max_utterances=args.max_utterances, seed=args.seed)
    write_text_atomic(Path(args.output), json.dumps(normalizer.to_dict()) + "\n")
    used = len(utterances) if args.max_utterances is None else min(len(utterances), args.max_utterances)
    print(f"feature statistics of {used} utterance(s): {args.output} (data.stats of a training config)")
    return EXIT_OK


def add_stats_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="feature statistics of a training manifest: the stats.json asr train needs")
    p.add_argument("--manifest", nargs="+", required=True, metavar="FILE", help="JSONL manifests of the training set")
    p.add_argument("--output", required=True, metavar="FILE", help="stats.json to write")
    p.add_argument(
        "--max-utterances", type=positive_int, default=None, metavar="N",
        help="a seeded random sample of N utterances (the LibriSpeech recipe uses 2000); default: all of them",
    )  # fmt: skip
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of that sample")
    p.set_defaults(func=cmd_stats)
