"""What the ``asr`` subcommands share: exit codes, model and decoder flags."""

from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2


def decode_options(args: argparse.Namespace) -> dict:
    """The keywords of :meth:`asr.api.Model.transcribe` given by the decoder flags (each flag's
    destination is the keyword's name); the beam flags only for a decoder that reads them."""
    from asr.api import BEAM_OPTIONS
    from asr.decoding.registry import decoder_entry

    options = {"decoder": args.decoder}
    if decoder_entry(args.decoder).uses_beam:
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
    """The flags of :class:`asr.api.TranscribeOptions`' decoder and beam fields, with its defaults."""
    from asr.api import TranscribeOptions
    from asr.decoding.beam import BeamConfig
    from asr.decoding.registry import DECODERS

    defaults = TranscribeOptions()
    group = parser.add_argument_group("decoding")
    group.add_argument("--decoder", choices=tuple(DECODERS), default=defaults.decoder, help="decoding method")
    group.add_argument("--beam-size", type=int, default=defaults.beam_size, help="hypotheses kept per frame (beam)")
    group.add_argument(
        "--beam-threshold", type=float, default=defaults.beam_threshold,
        help="prune hypotheses scoring this far below the best (beam)",
    )  # fmt: skip
    group.add_argument(
        "--lm", default=defaults.lm,
        help="KenLM language model, ARPA or binary (beam); default: the model's own LM, if it has one",
    )  # fmt: skip
    group.add_argument(
        "--no-lm", dest="use_lm", action="store_false", default=defaults.use_lm,
        help="beam search without the model's own LM (lexicon-free unless --lexicon is given)",
    )  # fmt: skip
    group.add_argument(
        "--lexicon", default=defaults.lexicon,
        help="lexicon (WORD<TAB>W O R D |, or WORD<TAB>▁WO RD for a BPE model); default with --lm: "
        "the lexicon.txt beside the LM (beam)",
    )  # fmt: skip
    group.add_argument(
        "--lm-weight", type=float, default=defaults.lm_weight,
        help=f"language model weight (beam; default: tuned for the model's own LM, else {BeamConfig.lm_weight})",
    )  # fmt: skip
    group.add_argument(
        "--word-score", type=float, default=defaults.word_score,
        help=f"word insertion score (beam; default: tuned for the model's own LM, else {BeamConfig.word_score})",
    )  # fmt: skip
    group.add_argument(
        "--nbest", type=int, default=defaults.nbest, help="hypotheses returned per segment, with scores (beam)"
    )
