#!/usr/bin/env python3
"""LibriSpeech recipe: numbered, resumable stages from the download to a WER table.

  0  download  the subsets' tarballs from --mirror (checksums, resumable, retried) and safe
               extraction into <data-dir>/LibriSpeech; extracted subsets are skipped; with
               --download-lm, official LM files into <data-dir>/lm
  1  prepare   <work>/data/<subset>.jsonl per subset, train.jsonl (all train-* subsets) and
               valid.jsonl (dev-clean, or the first dev set given)
  2  stats     global log-mel mean and std over up to 2,000 training utterances
  3  lm        the official LibriSpeech LM in <data-dir>/lm or <data-dir> if present (3-gram.pruned.1e-7.arpa.gz,
               3-gram.arpa.gz or 4-gram.arpa.gz), else `asr lm build` on librispeech-lm-norm.txt
               there, else on the training transcripts; with its lexicon, in <work>/data/lm
               (lexicon.txt, the words in characters)
  4  tokens    the output units, written to data/tokens.txt: the character set of
               asr.tokenizer.CharTokenizer or, with --bpe-size N, a SentencePiece BPE model of N
               tokens trained on the training transcripts (<work>/data/bpe-N.model), with the LM's
               words in its pieces (data/lm/lexicon-bpe-N.txt)
  5  train     --config through `asr train` (--nproc > 1: torchrun, Gloo on CPUs, NCCL on
               GPUs), with --bpe-size N the BPE model as its [tokenizer] and N as its
               model.vocab_size; resumes from <exp>/last after an interruption
  6  average   the last --average epoch checkpoints into <exp>/averaged
  7  decode    dev and test sets with each decoder of --decode-config; per set and decoder,
               recognitions, aligned errors and a WER summary; the table in <exp>/results.md

The stages are those of asr.train.recipe: each leaves <work>/data/.stage-N-NAME.done when it
finishes (.stage-N-NAME-EXP.done for stages 5-7, which run per experiment) and is skipped
afterwards unless --force. Stages 0-4 record in their marker what they were made from (the
subsets, the training transcripts' digest, the LM source, the units) and are redone when that
changes. The experiment folder EXP is <work>/exp/<config name> (<config name>-bpe-N with
--bpe-size N).

Usage, from the repository root:
       python -m recipes.librispeech.run --stage 0 --stop-stage 7 --data-dir DIR
           [--subsets train-clean-100 dev-clean ...] [--config conf/bilstm_100h.toml] [--bpe-size N] [--nproc N]
           [--nnodes N --node-rank R --rdzv-endpoint HOST:PORT] [--mirror URL] [--work-dir DIR]

Relative --config and --decode-config paths are looked up here when they are not found as given.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

from asr.api import load_model
from asr.config import dump_toml
from asr.files import write_text_atomic
from asr.train.average import average_last_epochs
from asr.train.experiment import epoch_checkpoints
from asr.train.recipe import Stage, add_stage_arguments, check_stage_range, run_stages
from recipes.librispeech.decode_sets import decode_sets, load_decode_config
from recipes.librispeech.download import CHECKSUMS, download_lm_files, download_subsets, lm_mirror, read_checksums
from recipes.librispeech.stages import (
    OFFICIAL_MIRROR,
    digest_of,
    lexicon_path,
    lm_inputs,
    prepare_subsets,
    tokens_inputs,
    training_config,
    write_lm,
    write_stats,
    write_tokens,
)

logger = logging.getLogger("recipe")

RECIPE_DIR = Path(__file__).resolve().parent
SETUP_100H = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")
EVAL_SETS = ("dev-clean", "dev-other", "test-clean", "test-other")


@dataclasses.dataclass(frozen=True)
class Paths:
    data_dir: Path  # the corpus: tarballs and LibriSpeech/
    work_dir: Path  # manifests, statistics, LM, experiments
    config: Path
    bpe_size: int = 0  # output units: characters (0) or a BPE model of this many tokens

    @property
    def corpus(self) -> Path:
        return self.data_dir / "LibriSpeech"

    @property
    def data(self) -> Path:
        return self.work_dir / "data"

    @property
    def exp(self) -> Path:
        return self.work_dir / "exp" / (self.config.stem + (f"-bpe-{self.bpe_size}" if self.bpe_size else ""))


def stage_download(paths: Paths, args: argparse.Namespace) -> None:
    checksums = read_checksums(args.checksums) if args.checksums else CHECKSUMS
    download_subsets(args.subsets, args.mirror, paths.data_dir, checksums)
    if args.download_lm:
        download_lm_files(args.download_lm, args.lm_mirror or lm_mirror(args.mirror), paths.data_dir)


def stage_train(paths: Paths, args: argparse.Namespace) -> None:
    config = training_config(paths.config, paths.data, paths.exp, paths.bpe_size)
    resolved = paths.exp / "train.toml"
    paths.exp.mkdir(parents=True, exist_ok=True)
    write_text_atomic(resolved, dump_toml(config))
    command = ["-m", "asr.cli", "-v", "train", "--config", str(resolved)]
    if (paths.exp / "last").exists():
        command.append("--resume")
    if args.nnodes > 1:  # run this same command on every node, each with its --node-rank
        rendezvous = ["--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}", f"--node-rank={args.node_rank}"]
        command = ["-m", "torch.distributed.run", f"--nnodes={args.nnodes}", *rendezvous,
                   f"--nproc-per-node={args.nproc}", *command]  # fmt: skip
    elif args.nproc > 1:
        command = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}", *command]
    logger.info("running %s", " ".join(command))
    subprocess.run([sys.executable, *command], check=True)


def stage_average(paths: Paths, args: argparse.Namespace) -> None:
    available = len(epoch_checkpoints(paths.exp))
    if available < args.average:
        logger.warning("only %d epoch checkpoints in %s; averaging those", available, paths.exp)
    average_last_epochs(paths.exp, min(args.average, available), paths.exp / "averaged")


def stage_decode(paths: Paths, args: argparse.Namespace) -> None:
    model_dir = paths.exp / "averaged" if (paths.exp / "averaged").exists() else paths.exp / "best"
    manifests = {s: paths.data / f"{s}.jsonl" for s in EVAL_SETS if (paths.data / f"{s}.jsonl").is_file()}
    model = load_model(model_dir)
    lm = paths.data / "lm" / "lm.arpa"
    lm = lm if lm.is_file() else paths.data / "lm" / "lm.bin"
    lexicon = lexicon_path(paths.data / "lm", model.tokenizer)  # spelled in the model's own tokens
    if lm.is_file() and not lexicon.is_file():
        logger.warning("%s is missing (stages 3 and 4 with this --bpe-size write it): no LM decoding", lexicon)
    found = lm.is_file() and lexicon.is_file()
    config = load_decode_config(args.decode_config)
    table = decode_sets(model, manifests, config, lm if found else None, paths.exp, lexicon if found else None)
    logger.info("results of %s:\n%s", model_dir, table)


def recipe_stages(paths: Paths, args: argparse.Namespace) -> list[Stage]:
    """The stages of this run; 5-7 run per experiment (``paths.exp``, the one model of a run)."""
    transcripts = paths.data / "train.jsonl"
    return [
        Stage(0, "download", lambda: stage_download(paths, args), inputs=lambda: download_inputs(args)),
        Stage(
            1,
            "prepare",
            lambda: prepare_subsets(paths.corpus, args.subsets, paths.data, force=args.force),
            inputs=lambda: f"{paths.corpus} subsets {' '.join(args.subsets)}",
        ),  # fmt: skip
        Stage(2, "stats", lambda: write_stats(paths.data), inputs=lambda: digest_of(transcripts, "1 (prepare)")),
        Stage(
            3, "lm", lambda: write_lm(paths.data_dir, paths.data), inputs=lambda: lm_inputs(paths.data_dir, paths.data)
        ),
        Stage(
            4,
            "tokens",
            lambda: write_tokens(paths.data, paths.bpe_size),
            inputs=lambda: tokens_inputs(paths.data, paths.bpe_size),
        ),  # fmt: skip
        Stage(5, "train", lambda _exp: stage_train(paths, args), per_model=True),
        Stage(6, "average", lambda _exp: stage_average(paths, args), per_model=True),
        Stage(7, "decode", lambda _exp: stage_decode(paths, args), per_model=True),
    ]


def download_inputs(args: argparse.Namespace) -> str:
    """What stage 0 fetches: another subset or LM file is fetched, finished ones are kept."""
    return f"subsets {' '.join(sorted(args.subsets))}; LM files {' '.join(sorted(args.download_lm)) or 'none'}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    numbered = recipe_stages(Paths(Path(), Path(), Path()), argparse.Namespace())  # numbers and names only
    add_stage_arguments(parser, numbered)
    parser.add_argument("--data-dir", type=Path, required=True, help="where tarballs go and LibriSpeech/ is")
    parser.add_argument(
        "--work-dir", type=Path, default=RECIPE_DIR, help="manifests, statistics, LM and exp/ (default: this folder)"
    )
    parser.add_argument("--subsets", nargs="+", default=list(SETUP_100H), help="LibriSpeech subsets to use")
    parser.add_argument(
        "--config", type=Path, default=RECIPE_DIR / "conf" / "bilstm_100h.toml", help="training config (TOML)"
    )
    parser.add_argument(
        "--decode-config", type=Path, default=RECIPE_DIR / "conf" / "decode.toml", help="decoders of stage 7"
    )
    parser.add_argument(
        "--bpe-size", type=int, default=0, metavar="N",
        help="output units: a SentencePiece BPE model of N tokens trained in stage 4 (0: characters)",
    )  # fmt: skip
    parser.add_argument("--nproc", type=int, default=1, help="training processes on this node (torchrun)")
    parser.add_argument("--nnodes", type=int, default=1, help="nodes training together (stage 5 runs on each)")
    parser.add_argument("--node-rank", type=int, default=0, help="this node's rank, 0 to --nnodes - 1")
    parser.add_argument("--rdzv-endpoint", default=None, help="HOST:PORT where the nodes meet (with --nnodes > 1)")
    parser.add_argument("--mirror", default=OFFICIAL_MIRROR, help="base URL of the tarballs")
    parser.add_argument(
        "--checksums", type=Path, default=None,
        help="sha256sum-style file of the tarballs, instead of the published LibriSpeech checksums "
        "(for repacked or custom subsets on a private mirror)",
    )  # fmt: skip
    parser.add_argument(
        "--download-lm", nargs="*", default=[], metavar="FILE",
        help="also fetch these official LM files (openslr.org/11) in stage 0, e.g. 3-gram.pruned.1e-7.arpa.gz",
    )  # fmt: skip
    parser.add_argument("--lm-mirror", default=None, help="base URL of the LM files (default: beside --mirror)")
    parser.add_argument("--average", type=int, default=5, help="epoch checkpoints to average in stage 6")
    args = parser.parse_args(argv)
    try:
        check_stage_range(numbered, args.stage, args.stop_stage)
    except ValueError as exc:
        parser.error(str(exc))
    if args.nproc < 1 or args.average < 1 or args.nnodes < 1:
        parser.error("--nproc, --nnodes and --average must be positive")
    if args.bpe_size < 0:
        parser.error("--bpe-size must be 0 (characters) or a number of BPE tokens")
    if args.nnodes > 1 and not args.rdzv_endpoint:
        parser.error("--nnodes > 1 needs --rdzv-endpoint HOST:PORT")
    args.config = find_config(args.config)
    args.decode_config = find_config(args.decode_config)
    return args


def find_config(path: Path) -> Path:
    """``path`` as given, or else inside this recipe (``--config conf/debug.toml`` from anywhere)."""
    if path.is_file() or path.is_absolute() or not (RECIPE_DIR / path).is_file():
        return path
    return RECIPE_DIR / path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    paths = Paths(args.data_dir.resolve(), args.work_dir.resolve(), args.config.resolve(), args.bpe_size)
    run_stages(recipe_stages(paths, args), args.stage, args.stop_stage, paths.data, [paths.exp.name], args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
