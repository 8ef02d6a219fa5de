"""What the ``asr`` subcommands share: exit codes, model and decoder flags.

Nothing here imports torch at import time or while building a parser, so ``asr --help`` and a
usage error are instant; the library is imported by the commands themselves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli.args import finite_float, non_negative_float, positive_int
from asr.errors import ConfigError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_ERROR = 2

# Where the decoder flags note which beam flags were given, and whether --decoder was.
BEAM_FLAGS_GIVEN = "beam_flags_given"
DECODER_GIVEN = "decoder_given"


class DecoderFlag(argparse.Action):
    """``--decoder``: stores the name and notes that it was given."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, DECODER_GIVEN, True)


class BeamFlag(argparse.Action):
    """Stores a beam flag's value (its ``const`` for a flag without one) and notes that the flag
    was given, so that a beam flag without ``--decoder`` implies beam search (resolve_decoder)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        setattr(namespace, BEAM_FLAGS_GIVEN, (*getattr(namespace, BEAM_FLAGS_GIVEN, ()), option_string))


def resolve_decoder(args: argparse.Namespace) -> None:
    """Without ``--decoder``, any beam flag means beam search (as whisper's ``--beam_size``
    does): ``args.decoder`` becomes the first registered decoder that searches a beam.

    Raises:
        ConfigError: beam flags with a ``--decoder`` that reads none of them.
    """
    from asr.decoding.registry import DECODERS, decoder_entry

    given = getattr(args, BEAM_FLAGS_GIVEN, ())
    if not hasattr(args, "decoder") or not given:
        return
    if not getattr(args, DECODER_GIVEN, False):
        args.decoder = next(name for name, entry in DECODERS.items() if entry.uses_beam)
    elif not decoder_entry(args.decoder).uses_beam:
        raise ConfigError(f"{', '.join(given)}: beam search flags, but --decoder {args.decoder} searches no beam")


def decode_options(args: argparse.Namespace) -> dict:
    """The keywords of :meth:`asr.api.Model.transcribe` given by the decoder flags (each flag's
    destination is the keyword's name); the beam flags only for a decoder that reads them."""
    from asr.api import BEAM_OPTIONS
    from asr.decoding.registry import decoder_entry

    options = {"decoder": args.decoder}
    if decoder_entry(args.decoder).uses_beam:
        options.update({name: getattr(args, name) for name in BEAM_OPTIONS})
    return options


def load_model_from_args(args: argparse.Namespace):
    """The :class:`asr.api.Model` that ``--model`` and ``--quantize`` name, on ``--threads`` threads.

    Raises:
        ConfigError: ``--model`` is neither a bundled model nor an existing path; the message
            lists the bundled models.
    """
    import torch

    from asr.api import BUNDLED_MODELS, load_model

    # The command owns its process: all of its torch work (resampling, features of audio read,
    # the model) runs on --threads, and the model's own blocks (asr.threads.torch_threads) then
    # find the count they want instead of switching it at every call, which on a busy machine
    # slowed live chunks enough to garble asr dictate's text.
    torch.set_num_threads(args.threads)
    name = args.model
    if name is not None and name not in BUNDLED_MODELS:
        try:
            exists = Path(name).exists()
        except OSError:  # a name too long to be a path: load_model says so
            exists = True
        if not exists:
            raise ConfigError(
                f"--model {name}: no such checkpoint, and no bundled model has that name; "
                f"bundled: {', '.join(BUNDLED_MODELS)} (asr models describes them)"
            )
    return load_model(name, loaded_quantization(args), threads=args.threads)


# ``--quantize none``: float32 weights, also where live recognition would quantize by default.
NO_QUANTIZATION = "none"


def loaded_quantization(args: argparse.Namespace) -> str | None:
    """The quantization ``--quantize`` asks :func:`asr.api.load_model` for (None: float32)."""
    return None if args.quantize == NO_QUANTIZATION else args.quantize


def stream_quantization(args: argparse.Namespace) -> str | None:
    """The network's quantization for live streams: ``--quantize``, else the streaming
    default (:data:`streaming.stream.DEFAULT_STREAM_QUANTIZATION`); None for ``none``."""
    from streaming.stream import DEFAULT_STREAM_QUANTIZATION

    return loaded_quantization(args) if args.quantize else DEFAULT_STREAM_QUANTIZATION


def add_model_flags(
    parser: argparse.ArgumentParser, model_required: bool = False, default: str | None = "default"
) -> None:
    """``--model``, ``--threads`` and ``--quantize``; a parser's ``set_defaults(model=...)``
    changes the default model, and its help with it."""
    from asr.quantize import QUANTIZATIONS
    from asr.threads import DEFAULT_THREADS

    parser.add_argument(
        "--model", required=model_required, default=None if model_required else default,
        help="checkpoint directory, or the name of a bundled model (asr models lists them)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=positive_int, default=DEFAULT_THREADS, help="CPU threads for the network while it computes"
    )
    parser.add_argument(
        "--quantize", choices=(*QUANTIZATIONS, NO_QUANTIZATION), default=None,
        help="quantize the network's weights when loading it: faster on CPUs, slightly different output "
        f"(default: {NO_QUANTIZATION}, except live streams, which run int8 unless told {NO_QUANTIZATION})",
    )  # fmt: skip


def add_decoder_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of :class:`asr.api.TranscribeOptions`' decoder and beam fields, with the defaults
    those fields take (:class:`BeamConfig`'s, read here without importing torch). Any beam flag
    without ``--decoder`` implies beam search (:func:`resolve_decoder`)."""
    from asr.decoding.config import BeamConfig
    from asr.decoding.registry import DECODERS, DEFAULT_DECODER

    beam = next(name for name, entry in DECODERS.items() if entry.uses_beam)
    group = parser.add_argument_group("decoding (a beam flag without --decoder implies --decoder beam)")
    group.add_argument(
        "--decoder", choices=tuple(DECODERS), default=DEFAULT_DECODER, action=DecoderFlag,
        help=f"decoding method (default: {DEFAULT_DECODER}, or {beam} if any beam flag below is given)",
    )  # fmt: skip
    flag = {"action": BeamFlag}
    group.add_argument(
        "--beam-size", type=positive_int, default=BeamConfig.beam_size, help="hypotheses kept per frame", **flag
    )
    group.add_argument(
        "--beam-threshold", type=non_negative_float, default=BeamConfig.beam_threshold,
        help="prune hypotheses scoring this far below the best", **flag,
    )  # fmt: skip
    group.add_argument(
        "--lm", default=None, help="KenLM language model, ARPA or binary (default: the model's own LM, if it has one)",
        **flag,
    )  # fmt: skip
    group.add_argument(
        "--no-lm", dest="use_lm", nargs=0, const=False, default=True, **flag,
        help="beam search without the model's own LM (lexicon-free unless --lexicon is given)",
    )  # fmt: skip
    group.add_argument(
        "--lexicon", default=None, **flag,
        help="lexicon (WORD<TAB>W O R D |, or WORD<TAB>▁WO RD for a BPE model); default with --lm: "
        "the lexicon.txt beside the LM",
    )  # fmt: skip
    group.add_argument(
        "--lm-weight", type=finite_float, default=None, **flag,
        help=f"language model weight (default: tuned for the model's own LM, else {BeamConfig.lm_weight})",
    )  # fmt: skip
    group.add_argument(
        "--word-score", type=finite_float, default=None, **flag,
        help=f"word insertion score (default: tuned for the model's own LM, else {BeamConfig.word_score})",
    )  # fmt: skip
    group.add_argument(
        "--nbest", type=positive_int, default=BeamConfig.nbest, help="hypotheses returned per segment, with scores",
        **flag,
    )  # fmt: skip
