#!/usr/bin/env python3
"""LibriSpeech recipe: numbered, resumable stages from the download to a WER table.

  1  download  the subsets' tarballs from --mirror (checksums, resumable, retried) and safe
               extraction into <data-dir>/LibriSpeech; extracted subsets are skipped; with
               --download-lm, official LM files into <data-dir>/lm
  2  prepare   <work>/data/<subset>.jsonl per subset, train.jsonl (all train-* subsets) and
               valid.jsonl (dev-clean, or the first dev set given)
  3  stats     global log-mel mean and std over up to 2,000 training utterances; the tokenizer
               is the character set of asr.tokenizer.CharTokenizer or, with --bpe-size N, a
               SentencePiece BPE model of N tokens trained on the training transcripts
               (<work>/data/bpe-N.model); its tokens are written to data/tokens.txt
  4  lm        the official LibriSpeech LM in <data-dir>/lm or <data-dir> if present (3-gram.pruned.1e-7.arpa.gz,
               3-gram.arpa.gz or 4-gram.arpa.gz), else `asr lm build` on librispeech-lm-norm.txt
               there, else on the training transcripts; with its lexicon, in <work>/data/lm
               (lexicon.txt; with --bpe-size N also lexicon-bpe-N.txt, the words in BPE pieces)
  5  train     --config through `asr train` (--nproc > 1: torchrun, Gloo on CPUs, NCCL on
               GPUs), with --bpe-size N the BPE model as its [tokenizer] and N as its
               model.vocab_size; resumes from <exp>/last after an interruption
  6  average   the last --average epoch checkpoints into <exp>/averaged
  7  decode    dev and test sets with each decoder of --decode-config; per set and decoder,
               recognitions, aligned errors and a WER summary; the table in <exp>/results.md

Every stage skips work already done (a subset already extracted or prepared, statistics or an
LM already written, a finished training run, an existing average or results table) unless
--force. The experiment folder is <work>/exp/<config name> (<config name>-bpe-N with --bpe-size N).

Usage: python recipes/librispeech/run.py --stage 1 --stop-stage 7 --data-dir DIR
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

from decode_sets import decode_sets, load_decode_config
from stages import (
    OFFICIAL_MIRROR,
    lexicon_path,
    prepare_subsets,
    recipe_tokenizer,
    training_config,
    write_lm,
    write_stats,
    write_tokens,
)

from asr.api import load_model
from asr.config import dump_toml
from asr.errors import ConfigError
from asr.files import write_text_atomic

logger = logging.getLogger("recipe")

RECIPE_DIR = Path(__file__).resolve().parent
STAGES = {1: "download", 2: "prepare", 3: "stats", 4: "lm", 5: "train", 6: "average", 7: "decode"}
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


def read_checksums(path: Path) -> dict:
    """``sha256sum`` output (``<hex>  <subset>.tar.gz`` per line) as download checksums."""
    from download import ARCHIVE_SUFFIX, Digest

    checksums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("*").endswith(ARCHIVE_SUFFIX):
            raise ConfigError(f"{path}:{number}: expected '<sha256>  <subset>{ARCHIVE_SUFFIX}', got {line!r}")
        checksums[fields[1].lstrip("*").removesuffix(ARCHIVE_SUFFIX)] = Digest("sha256", fields[0].lower())
    return checksums


def stage_download(paths: Paths, args: argparse.Namespace) -> None:
    from download import CHECKSUMS, download_lm_files, download_subsets, lm_mirror

    checksums = read_checksums(args.checksums) if args.checksums else CHECKSUMS
    download_subsets(args.subsets, args.mirror, paths.data_dir, checksums)
    if args.download_lm:
        download_lm_files(args.download_lm, args.lm_mirror or lm_mirror(args.mirror), paths.data_dir)


def stage_train(paths: Paths, args: argparse.Namespace) -> None:
    done = paths.exp / ".train.done"
    if done.exists() and not args.force:
        logger.info("training of %s finished earlier; skipping", paths.exp)
        return
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
    done.touch()


def stage_average(paths: Paths, args: argparse.Namespace) -> None:
    from asr.train.average import average_last_epochs
    from asr.train.experiment import epoch_checkpoints

    target = paths.exp / "averaged"
    if target.exists() and not args.force:
        logger.info("%s exists; skipping", target)
        return
    available = len(epoch_checkpoints(paths.exp))
    if available < args.average:
        logger.warning("only %d epoch checkpoints in %s; averaging those", available, paths.exp)
    average_last_epochs(paths.exp, min(args.average, available), target)


def stage_decode(paths: Paths, args: argparse.Namespace) -> None:
    results = paths.exp / "results.md"
    if results.exists() and not args.force:
        logger.info("%s exists; skipping", results)
        return
    model_dir = paths.exp / "averaged" if (paths.exp / "averaged").exists() else paths.exp / "best"
    manifests = {s: paths.data / f"{s}.jsonl" for s in EVAL_SETS if (paths.data / f"{s}.jsonl").is_file()}
    model = load_model(model_dir)
    lm = paths.data / "lm" / "lm.arpa"
    lm = lm if lm.is_file() else paths.data / "lm" / "lm.bin"
    lexicon = lexicon_path(paths.data / "lm", model.tokenizer)  # spelled in the model's own tokens
    if lm.is_file() and not lexicon.is_file():
        logger.warning("%s is missing (stage 4 with this --bpe-size writes it): no LM decoding", lexicon)
    found = lm.is_file() and lexicon.is_file()
    config = load_decode_config(args.decode_config)
    table = decode_sets(model, manifests, config, lm if found else None, paths.exp, lexicon if found else None)
    logger.info("results of %s:\n%s", model_dir, table)


def run_stage(stage: int, paths: Paths, args: argparse.Namespace) -> None:
    if stage == 1:
        stage_download(paths, args)
    elif stage == 2:
        prepare_subsets(paths.corpus, args.subsets, paths.data, force=args.force)
    elif stage == 3:
        write_stats(paths.data, force=args.force)
        write_tokens(paths.data, paths.bpe_size, force=args.force)
    elif stage == 4:
        write_lm(paths.data_dir, paths.data, force=args.force, tokenizer=recipe_tokenizer(paths.data, paths.bpe_size))
    elif stage == 5:
        stage_train(paths, args)
    elif stage == 6:
        stage_average(paths, args)
    elif stage == 7:
        stage_decode(paths, args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", type=int, default=1, help="first stage to run (1-7)")
    parser.add_argument("--stop-stage", type=int, default=max(STAGES), help="last stage to run")
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
        help="output units: a SentencePiece BPE model of N tokens trained in stage 3 (0: characters)",
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
        help="also fetch these official LM files (openslr.org/11) in stage 1, e.g. 3-gram.pruned.1e-7.arpa.gz",
    )  # fmt: skip
    parser.add_argument("--lm-mirror", default=None, help="base URL of the LM files (default: beside --mirror)")
    parser.add_argument("--average", type=int, default=5, help="epoch checkpoints to average in stage 6")
    parser.add_argument("--force", action="store_true", help="redo work that is already done")
    args = parser.parse_args(argv)
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
    for stage in range(args.stage, args.stop_stage + 1):
        logger.info("stage %d: %s", stage, STAGES[stage])
        run_stage(stage, paths, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
