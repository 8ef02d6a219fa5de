#!/usr/bin/env python3
"""speechocean762 recipe: numbered, resumable stages from raw corpus to evaluated model.

Stages (each leaves ``data/.stage-N-NAME.done``, or ``data/.stage-N-NAME-MODEL.done`` for the
per-model stages, when it finishes, and is skipped afterwards unless ``--force``):

  0  prepare    JSONL manifests: train (minus held-out validation speakers), valid, test, and
                timit_sample (eval only)
  1  synthesize speech of the training transcripts and of Gutenberg sentences with flite,
                festival and espeak-ng voices (synthesize.py), added to the training set
  2  stats      global log-mel mean and std over the real training audio
  3  train      train conf/bilstm.toml (--models default) and/or conf/unilstm.toml
                (--models streaming); resumes on its own after an interruption
  4  lm         a KenLM 3-gram and lexicon from the Gutenberg books and the training transcripts
                (not the validation speakers', on which its weights are tuned)
  5  evaluate   LM weight and word score tuned on the validation speakers; then greedy, beam and
                beam+LM WER, CER and speed of the best checkpoint on speechocean762 test and
                timit_sample (exp/.../eval/results.md)
  6  bundle     copy each best checkpoint into the package (asr/models/default, asr/models/streaming),
                with the LM and its tuned weights in <model>/lm (what --decoder beam uses)

Usage: python recipes/speechocean762/run.py --stage 0 --stop-stage 6 [--data-root DIR]
           [--models default streaming]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import shutil
import sys
from pathlib import Path

import torch
from decode import build_recipe_lm, compare_decoders, decoder_settings, tune_lm_weights
from synthesize import (
    APT_PACKAGES,
    Synthesizer,
    available_voices,
    gutenberg_sentences,
    synthesize_corpus,
    write_sentences,
)

from asr.api import load_model
from asr.audio import audio_duration, load_audio
from asr.beam import LEXICON_NAME
from asr.checkpoint import load_checkpoint, save_checkpoint
from asr.features import FeatureConfig, LogMel, StatsAccumulator
from asr.files import write_text_atomic
from asr.manifest import Utterance, read_manifest, write_manifest
from asr.model_lm import DECODING_FILE, LM_DIR, LM_FILE
from asr.text import normalize_text
from asr.train import train
from asr.train_config import load_train_config

logger = logging.getLogger("recipe")

RECIPE_DIR = Path(__file__).resolve().parent
REPO_ROOT = RECIPE_DIR.parents[1]
DATA_DIR = RECIPE_DIR / "data"
# The models this recipe trains, by the name they are bundled under.
CONFIGS = {"default": RECIPE_DIR / "conf" / "bilstm.toml", "streaming": RECIPE_DIR / "conf" / "unilstm.toml"}
# Stages that run once per model; their done-markers carry the model's name.
PER_MODEL_STAGES = (3, 5, 6)
# Train speakers held out for validation (checkpoint selection and LM weights), about 6% of the
# set, drawn from children and adults alike: the test set's 125 speakers are 42% children (under
# 15), and one of adults alone (the earlier split: 5 adults aged 20 to 21) says little about them.
VALID_CHILDREN = 3
VALID_ADULTS = 5
VALID_SPEAKERS = VALID_CHILDREN + VALID_ADULTS
CHILD_AGE_BELOW = 15
SPLIT_SEED = 762
# Synthetic speech: one rendition of each training transcript, plus this many book sentences.
GUTENBERG_SENTENCES = 6000
SYNTH_SEED = 2024
SYNTH_WORKERS = 2


def default_data_root() -> Path:
    return Path(os.environ.get("ASR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def read_tsv(tsv: Path) -> list[Utterance]:
    with open(tsv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        Utterance(
            audio=(tsv.parent / row["path"]).resolve(),
            text=row["transcript"],
            id=Path(row["path"]).with_suffix("").as_posix().replace("/", "-"),
            duration=audio_duration(tsv.parent / row["path"]),
            speaker=row["speaker"],
        )
        for row in rows
    ]


def speaker_ages(spk2age: Path) -> dict[str, int]:
    """``SPEAKER0001`` -> age, from the corpus's ``<id> <age>`` lines (ids without the prefix)."""
    ages = {}
    for line in spk2age.read_text(encoding="utf-8").splitlines():
        if line.strip():
            speaker, age = line.split()
            ages[f"SPEAKER{speaker}"] = int(age)
    return ages


def is_child(speaker: str, ages: dict[str, int]) -> bool:
    """Under ``CHILD_AGE_BELOW``; a speaker whose age is not listed counts as an adult."""
    return ages.get(speaker, CHILD_AGE_BELOW) < CHILD_AGE_BELOW


def validation_speakers(speakers: list[str], ages: dict[str, int]) -> set[str]:
    """``VALID_CHILDREN`` children and ``VALID_ADULTS`` adults, drawn with a fixed seed."""
    children, adults = [], []
    for speaker in sorted(speakers):
        (children if is_child(speaker, ages) else adults).append(speaker)
    rng = random.Random(SPLIT_SEED)
    return set(rng.sample(children, VALID_CHILDREN)) | set(rng.sample(adults, VALID_ADULTS))


def stage_prepare(data_root: Path) -> None:
    corpus = data_root / "speechocean762"
    train_all = read_tsv(corpus / "train.tsv")
    speakers = sorted({u.speaker for u in train_all})
    valid_speakers = validation_speakers(speakers, speaker_ages(corpus / "train_spk2age"))
    write_manifest(DATA_DIR / "train.jsonl", [u for u in train_all if u.speaker not in valid_speakers])
    write_manifest(DATA_DIR / "valid.jsonl", [u for u in train_all if u.speaker in valid_speakers])
    write_manifest(DATA_DIR / "test.jsonl", read_tsv(corpus / "test.tsv"))
    timit = data_root / "timit_sample" / "test.tsv"
    if timit.is_file():
        write_manifest(DATA_DIR / "timit.jsonl", read_tsv(timit))


def stage_synthesize(data_root: Path) -> None:
    voices = available_voices()
    if not voices:
        raise SystemExit(f"stage 1 needs a speech engine: apt-get install {' '.join(APT_PACKAGES.values())}")
    logger.info("synthesizing with %d voices", len(voices))
    train = read_manifest(DATA_DIR / "train.jsonl")
    sentences = gutenberg_sentences(data_root / "text" / "gutenberg", GUTENBERG_SENTENCES, SYNTH_SEED)
    write_sentences(DATA_DIR / "gutenberg_sentences.txt", sentences)
    out_dir = DATA_DIR / "synth"
    synth = synthesize_corpus(
        [normalize_text(u.text) for u in train],
        out_dir,
        "transcript",
        Synthesizer(tuple(voices), SYNTH_SEED),
        SYNTH_WORKERS,
    )
    synth += synthesize_corpus(
        sentences, out_dir, "gutenberg", Synthesizer(tuple(voices), SYNTH_SEED + 1), SYNTH_WORKERS
    )
    logger.info("%d synthetic utterances, %.1f hours", len(synth), sum(u.duration for u in synth) / 3600)
    write_manifest(DATA_DIR / "train_synth.jsonl", synth)
    write_manifest(DATA_DIR / "train_all.jsonl", train + synth)


def stage_stats() -> None:
    config = FeatureConfig()
    logmel = LogMel(config)
    stats = StatsAccumulator(config.n_mels)
    for utt in read_manifest(DATA_DIR / "train.jsonl"):
        stats.add(logmel(torch.from_numpy(load_audio(utt.audio, config.sample_rate))))
    (DATA_DIR / "stats.json").write_text(json.dumps(stats.result().to_dict()) + "\n")
    logger.info("feature statistics over %d frames written to %s", stats.count, DATA_DIR / "stats.json")


def stage_train(name: str) -> None:
    config = load_train_config(CONFIGS[name])
    train(config, resume=(Path(config.exp_dir) / "last").exists())


def stage_lm(data_root: Path) -> None:
    files = build_recipe_lm(data_root, DATA_DIR, [DATA_DIR / "train.jsonl"])
    logger.info("language model %s, lexicon %s", files.lm, files.lexicon)


def stage_evaluate(name: str) -> None:
    exp_dir = Path(load_train_config(CONFIGS[name]).exp_dir)
    model = load_model(exp_dir / "best")
    lm = DATA_DIR / "lm" / "lm.bin"
    tuned = tune_lm_weights(model, DATA_DIR / "valid.jsonl", lm, exp_dir / "lm-tuning.json")
    manifests = {"speechocean762 test": DATA_DIR / "test.jsonl", "timit_sample": DATA_DIR / "timit.jsonl"}
    manifests = {name: path for name, path in manifests.items() if path.is_file()}
    table = compare_decoders(model, manifests, decoder_settings(lm, tuned), exp_dir / "eval")
    logger.info("results (also in %s):\n%s", exp_dir / "eval" / "results.md", table)


def stage_bundle(name: str) -> None:
    best_dir = Path(load_train_config(CONFIGS[name]).exp_dir) / "best"
    best = load_checkpoint(best_dir)
    provenance = dict(best.provenance)
    provenance["recipe"] = f"recipes/speechocean762 (conf/{CONFIGS[name].name})"
    # The training config names paths on the machine that trained; keep only their file names.
    config = provenance.pop("train_config", {})
    provenance["train_config"] = {
        **config,
        "exp_dir": Path(config.get("exp_dir", "")).name,
        "data": {k: Path(v).name if k != "attribution" else v for k, v in config.get("data", {}).items()},
    }
    target = REPO_ROOT / "asr" / "models" / name
    save_checkpoint(target, best.model, best.features, best.normalizer, best.tokenizer, provenance)
    logger.info("bundled %s into %s", best_dir, target)
    bundle_lm(DATA_DIR / "lm", Path(load_train_config(CONFIGS[name]).exp_dir) / "lm-tuning.json", target)


def bundle_lm(lm_dir: Path, tuning: Path, target: Path) -> None:
    """Copy stage 4's LM into ``<target>/lm`` with the weights stage 5 tuned for the model."""
    best = json.loads(tuning.read_text())["best"]
    out = target / LM_DIR
    out.mkdir(exist_ok=True)
    for name in (LM_FILE, LEXICON_NAME, "lm.json"):
        shutil.copyfile(lm_dir / name, out / name)
    decoding = {
        "lm_weight": best["lm_weight"], "word_score": best["word_score"],
        "tuned_on": f"validation WER {100 * best['wer']:.2f}% on the speakers held out of training (recipe stage 5)",
    }  # fmt: skip
    write_text_atomic(out / DECODING_FILE, json.dumps(decoding, indent=2) + "\n")
    logger.info("bundled the LM into %s (LM weight %s, word score %s)", out, best["lm_weight"], best["word_score"])


STAGES = {0: "prepare", 1: "synthesize", 2: "stats", 3: "train", 4: "lm", 5: "evaluate", 6: "bundle"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", type=int, default=0, help="first stage to run")
    parser.add_argument("--stop-stage", type=int, default=max(STAGES), help="last stage to run")
    parser.add_argument("--data-root", type=Path, default=default_data_root(), help="the shared data folder")
    parser.add_argument("--force", action="store_true", help="rerun stages already marked done")
    parser.add_argument(
        "--models", nargs="+", choices=sorted(CONFIGS), default=["default"],
        help="models to train, evaluate and bundle in stages 3, 5 and 6 (default: default)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    actions = {
        0: lambda: stage_prepare(args.data_root),
        1: lambda: stage_synthesize(args.data_root),
        2: stage_stats,
        3: stage_train,
        4: lambda: stage_lm(args.data_root),
        5: stage_evaluate,
        6: stage_bundle,
    }
    for stage in range(args.stage, args.stop_stage + 1):
        for model in args.models if stage in PER_MODEL_STAGES else [None]:
            suffix = f"-{model}" if model else ""
            marker = DATA_DIR / f".stage-{stage}-{STAGES[stage]}{suffix}.done"
            if marker.exists() and not args.force:
                logger.info("stage %d (%s%s) already done; skipping", stage, STAGES[stage], suffix)
                continue
            logger.info("stage %d: %s%s", stage, STAGES[stage], suffix)
            if model:
                actions[stage](model)
            else:
                actions[stage]()
            marker.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
