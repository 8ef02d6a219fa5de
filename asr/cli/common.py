"""What the ``asr`` subcommands share: exit codes, model and decoder flags."""

from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2


def decode_options(args: argparse.Namespace) -> dict:
    """The keywords of :meth:`asr.api.Model.transcribe` given by the decoder flags (each beam
    flag's destination is the keyword's name)."""
    from asr.api import BEAM_OPTIONS

    options = {"decoder": args.decoder}
    if args.decoder == "beam":
        options.update({name: getattr(args, name) for name in BEAM_OPTIONS})
    return options


def add_model_flags(parser: argparse.ArgumentParser, model_required: bool = False) -> None:
    from asr.quantize import QUANTIZATIONS

    parser.add_argument(
        "--model", required=model_required, default=None,
        help="checkpoint directory, or the name of a bundled model (default: the bundled 'default')",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the network (default 1)")
    parser.add_argument(
        "--quantize", choices=QUANTIZATIONS, default=None,
        help="quantize the network's weights when loading it: faster on CPUs, slightly different output",
    )  # fmt: skip


def add_decoder_flags(parser: argparse.ArgumentParser) -> None:
    from asr.decoding.beam import BeamConfig

    defaults = BeamConfig()
    group = parser.add_argument_group("decoding")
    group.add_argument("--decoder", choices=("greedy", "beam"), default="greedy", help="decoding method")
    group.add_argument("--beam-size", type=int, default=defaults.beam_size, help="hypotheses kept per frame (beam)")
    group.add_argument(
        "--beam-threshold", type=float, default=defaults.beam_threshold,
        help="prune hypotheses scoring this far below the best (beam)",
    )  # fmt: skip
    group.add_argument(
        "--lm", default=None,
        help="KenLM language model, ARPA or binary (beam); default: the model's own LM, if it has one",
    )  # fmt: skip
    group.add_argument(
        "--no-lm", dest="use_lm", action="store_false",
        help="beam search without the model's own LM (lexicon-free unless --lexicon is given)",
    )  # fmt: skip
    group.add_argument(
        "--lexicon", default=None,
        help="lexicon (WORD<TAB>W O R D |, or WORD<TAB>▁WO RD for a BPE model); default with --lm: "
        "the lexicon.txt beside the LM (beam)",
    )  # fmt: skip
    group.add_argument(
        "--lm-weight", type=float, default=None,
        help=f"language model weight (beam; default: tuned for the model's own LM, else {defaults.lm_weight})",
    )  # fmt: skip
    group.add_argument(
        "--word-score", type=float, default=None,
        help=f"word insertion score (beam; default: tuned for the model's own LM, else {defaults.word_score})",
    )  # fmt: skip
    group.add_argument("--nbest", type=int, default=1, help="hypotheses returned per segment, with scores (beam)")
