#!/usr/bin/env python3
"""The bundled models' recipe: every trainable English set of ``../shared/data`` plus synthetic
speech, in numbered, resumable stages from raw corpora to the models in ``asr/models``.

Stages (each leaves ``data/.stage-N-NAME.done``, or ``data/.stage-N-NAME-MODEL.done`` for the
per-model stages, when it finishes, and is skipped afterwards unless ``--force``):

  0  prepare    JSONL manifests per set: speechocean762 train, librispeech_train, kathleen and
                ljspeech, each minus its validation part (speakers held out where a set has
                several: children and adults of speechocean762, LibriSpeech speakers; held-out
                prompts where it has one); speechocean762 test and timit_sample (eval only)
  1  synthesize at least 30 hours of synthetic speech (synthesize.py) from the training
                transcripts, modern English text and the Gutenberg books, with every voice
                whose licence allows training and shipping
  2  stats      global log-mel mean and std over the real training audio
  3  train      conf/bilstm.toml (--models default) and/or conf/unilstm.toml (--models
                streaming); resumes on its own after an interruption
  4  lm         a KenLM model and lexicon from the modern text, the books and the training
                transcripts (never the validation or evaluation text)
  5  evaluate   LM weight and word score tuned on the pooled validation set; greedy and
                beam+LM WER, CER and speed per validation set, pooled, pooled 10 dB quieter,
                on a sample of the training utterances, on speechocean762 test and
                timit_sample (exp/.../eval/results.md)
  6  bundle     copy each best checkpoint into the package (asr/models/default,
                asr/models/streaming), with the LM and its tuned weights in <model>/lm

Usage, from the repository root:
       python -m recipes.english.run --stage 0 --stop-stage 6 [--data-root DIR]
           [--models default streaming] [--config MODEL=PATH ...]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import random
import sys
from pathlib import Path

from asr.api import load_model
from asr.audio import audio_duration
from asr.errors import ASRError
from asr.files import write_text_atomic
from asr.manifest import Utterance, read_manifest, write_manifest
from asr.text import normalize_text
from asr.train.config import load_train_config
from asr.train.recipe import Stage, add_stage_arguments, check_stage_range, compute_stats, run_stages
from asr.train.trainer import train
from recipes.english import level_shift
from recipes.english.bundle import bundle_lm, bundle_model, recipe_relative
from recipes.english.decode import build_recipe_lm, compare_decoders, decoder_settings, tune_lm_weights
from recipes.english.report import plot_runs, read_history
from recipes.english.synthesize import (
    APT_PACKAGES,
    Synthesizer,
    available_voices,
    draw_sentences,
    gutenberg_sentences,
    modern_pool,
    synthesize_corpus,
    write_sentences,
)

logger = logging.getLogger("recipe")

RECIPE_DIR = Path(__file__).resolve().parent
REPO_ROOT = RECIPE_DIR.parents[1]
DATA_DIR = RECIPE_DIR / "data"
# The models this recipe trains, by the name they are bundled under.
CONFIGS = {"default": RECIPE_DIR / "conf" / "bilstm.toml", "streaming": RECIPE_DIR / "conf" / "unilstm.toml"}
# The trainable real sets: folder under the data root -> how its validation part is held out.
REAL_SETS = ("speechocean762", "librispeech_train", "kathleen", "ljspeech")
# speechocean762 train speakers held out for validation (checkpoint selection and LM weights),
# about 6% of the set, drawn from children and adults alike: the test set's 125 speakers are 42%
# children (under 15), and a validation set of adults alone says little about them.
VALID_CHILDREN = 3
VALID_ADULTS = 5
VALID_SPEAKERS = VALID_CHILDREN + VALID_ADULTS
CHILD_AGE_BELOW = 15
# LibriSpeech speakers held out (of 30), drawn with the seed.
VALID_LIBRISPEECH_SPEAKERS = 3
# Single-speaker sets hold out prompts instead: this share of their distinct transcripts, every
# reading of each (kathleen reads many prompts twice, and a prompt must not be on both sides).
VALID_PROMPT_SHARE = 0.06
SPLIT_SEED = 762
# Synthetic speech: one rendition of each real training transcript, plus sentences of modern
# English (text/modern, less the CMU ARCTIC prompts that kathleen reads) and of the books:
# about 33 hours in all (stage 1 logs the figure).
MODERN_SENTENCES = 16000
EXTRA_MODERN_SENTENCES = 4000
GUTENBERG_SENTENCES = 6000
MODERN_EXCLUDED = ("cmu_arctic.txt",)
# The phone targets' dictionary, linked into data/ for the configs (data.cmudict).
CMUDICT_NAME = "cmudict.dict"
# Stage 5 scores every this-many-th real training utterance: does the model fit its own data?
TRAIN_SAMPLE_EVERY = 40
# Stage 5 also scores the pooled validation set played this many dB quieter (level_shift.py).
QUIET_DB = -10
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


def held_out_prompts(utterances: list[Utterance], share: float, seed: int) -> set[str]:
    """A seeded ``share`` of the distinct normalised transcripts of ``utterances``."""
    prompts = sorted({normalize_text(u.text) for u in utterances})
    rng = random.Random(seed)
    return set(rng.sample(prompts, max(1, round(share * len(prompts)))))


def split_set(name: str, data_root: Path) -> tuple[list[Utterance], list[Utterance]]:
    """The ``(train, valid)`` utterances of one real set (see :data:`REAL_SETS`)."""
    folder = data_root / name
    utterances = read_tsv(folder / "train.tsv")
    if name == "speechocean762":
        speakers = sorted({u.speaker for u in utterances})
        held = validation_speakers(speakers, speaker_ages(folder / "train_spk2age"))
        is_valid = [u.speaker in held for u in utterances]
    elif name == "librispeech_train":
        speakers = sorted({u.speaker for u in utterances})
        held = set(random.Random(SPLIT_SEED).sample(speakers, VALID_LIBRISPEECH_SPEAKERS))
        is_valid = [u.speaker in held for u in utterances]
    else:
        held = held_out_prompts(utterances, VALID_PROMPT_SHARE, SPLIT_SEED)
        is_valid = [normalize_text(u.text) in held for u in utterances]
    # Ids name their set, so that training reports validation WER per set (asr.train.trainer.validate).
    utterances = [dataclasses.replace(u, id=f"{name}/{u.id}") for u in utterances]
    train = [u for u, v in zip(utterances, is_valid) if not v]
    valid = [u for u, v in zip(utterances, is_valid) if v]
    return train, valid


def stage_prepare(data_root: Path) -> None:
    train_real, valid_all = [], []
    for name in REAL_SETS:
        if not (data_root / name / "train.tsv").is_file():
            raise SystemExit(f"stage 0: {data_root / name / 'train.tsv'} is missing")
        train, valid = split_set(name, data_root)
        write_manifest(DATA_DIR / f"train_{name}.jsonl", train)
        write_manifest(DATA_DIR / f"valid_{name}.jsonl", valid)
        logger.info(
            "%s: %d train utterances (%.2f h), %d validation (%.2f h, %d speakers)", name, len(train),
            hours(train), len(valid), hours(valid), len({u.speaker for u in valid}),
        )  # fmt: skip
        train_real += train
        valid_all += valid
    cmudict = DATA_DIR / CMUDICT_NAME
    cmudict.unlink(missing_ok=True)
    cmudict.symlink_to((data_root / "text" / "cmudict" / CMUDICT_NAME).resolve())
    write_manifest(DATA_DIR / "train.jsonl", train_real)
    write_manifest(DATA_DIR / "valid.jsonl", valid_all)
    write_manifest(DATA_DIR / "test.jsonl", read_tsv(data_root / "speechocean762" / "test.tsv"))
    timit = data_root / "timit_sample" / "test.tsv"
    if timit.is_file():
        write_manifest(DATA_DIR / "timit.jsonl", read_tsv(timit))


def hours(utterances: list[Utterance]) -> float:
    return sum(u.duration or 0.0 for u in utterances) / 3600


def stage_synthesize(data_root: Path) -> None:
    voices = available_voices()
    if not voices:
        raise SystemExit(f"stage 1 needs a speech engine: apt-get install {' '.join(APT_PACKAGES.values())}")
    logger.info("synthesizing with %d voices", len(voices))
    train = read_manifest(DATA_DIR / "train.jsonl")
    valid_texts = [u.text for u in read_manifest(DATA_DIR / "valid.jsonl")]
    modern_files = [f for f in sorted((data_root / "text" / "modern").glob("*.txt")) if f.name not in MODERN_EXCLUDED]
    pool = modern_pool(modern_files, exclude=valid_texts)
    modern = draw_sentences(pool, MODERN_SENTENCES, SYNTH_SEED)
    books = gutenberg_sentences(data_root / "text" / "gutenberg", GUTENBERG_SENTENCES, SYNTH_SEED)
    valid_normalised = [normalize_text(text) for text in valid_texts]
    books = [s for s in books if not any(s in text for text in valid_normalised)]
    write_sentences(DATA_DIR / "modern_sentences.txt", modern)
    write_sentences(DATA_DIR / "gutenberg_sentences.txt", books)
    out_dir = DATA_DIR / "synth"
    # A second draw of modern sentences (another seed, none of the first draw's) tops the
    # corpus up past 30 hours; it is its own source so that the first draw's files keep their
    # names (a source's files are named by index, and reused when a stage is rerun).
    first = set(modern)
    extra = draw_sentences(pool, MODERN_SENTENCES, SYNTH_SEED + 7)
    extra = [s for s in extra if s not in first][:EXTRA_MODERN_SENTENCES]
    write_sentences(DATA_DIR / "modern_extra_sentences.txt", extra)
    sources = {
        "transcript": [normalize_text(u.text) for u in train], "modern": modern, "gutenberg": books,
        "modern_extra": extra,
    }  # fmt: skip
    synth: list[Utterance] = []
    for offset, (prefix, sentences) in enumerate(sources.items()):
        synthesizer = Synthesizer(tuple(voices), SYNTH_SEED + offset)
        synth += synthesize_corpus(sentences, out_dir, prefix, synthesizer, SYNTH_WORKERS)
    logger.info(
        "%d synthetic utterances, %.1f hours, %d voices", len(synth), hours(synth), len({u.speaker for u in synth})
    )
    write_manifest(DATA_DIR / "train_synth.jsonl", synth)
    write_manifest(DATA_DIR / "train_all.jsonl", train + synth)


def stage_stats() -> None:
    normalizer = compute_stats(read_manifest(DATA_DIR / "train.jsonl"))
    write_text_atomic(DATA_DIR / "stats.json", json.dumps(normalizer.to_dict()) + "\n")
    logger.info("feature statistics of the real training speech written to %s", DATA_DIR / "stats.json")


def stage_train(name: str, configs: dict[str, Path]) -> None:
    config = load_train_config(configs[name])
    train(config, resume=(Path(config.exp_dir) / "last").exists())


def stage_lm(data_root: Path) -> None:
    files = build_recipe_lm(data_root, DATA_DIR, [DATA_DIR / "train.jsonl"], exclude=MODERN_EXCLUDED)
    logger.info("language model %s, lexicon %s", files.lm, files.lexicon)


def stage_evaluate(name: str, configs: dict[str, Path]) -> None:
    exp_dir = Path(load_train_config(configs[name]).exp_dir)
    model = load_model(exp_dir / "best")
    lm = DATA_DIR / "lm" / "lm.bin"
    tuned = tune_lm_weights(model, DATA_DIR / "valid.jsonl", lm, exp_dir / "lm-tuning.json")
    settings = decoder_settings(lm, tuned)
    # Validation per set and pooled, and a sample of the model's own training utterances (does
    # it fit its training data?), then the evaluation-only sets.
    write_manifest(DATA_DIR / "train_sample.jsonl", read_manifest(DATA_DIR / "train.jsonl")[::TRAIN_SAMPLE_EVERY])
    # The pooled validation set 10 dB quieter: how much the model leans on its training levels.
    quiet = DATA_DIR / f"valid_{QUIET_DB}db" / level_shift.MANIFEST_NAME
    if not quiet.is_file():
        level_shift.write_shifted(DATA_DIR / "valid.jsonl", quiet.parent, gain_db=QUIET_DB)
    manifests = {f"valid {s}": DATA_DIR / f"valid_{s}.jsonl" for s in REAL_SETS}
    manifests |= {
        "valid (pooled)": DATA_DIR / "valid.jsonl",
        f"valid (pooled), {QUIET_DB} dB": quiet,
        f"train sample (1 in {TRAIN_SAMPLE_EVERY})": DATA_DIR / "train_sample.jsonl",
        "speechocean762 test": DATA_DIR / "test.jsonl",
        "timit_sample": DATA_DIR / "timit.jsonl",
    }
    manifests = {set_name: path for set_name, path in manifests.items() if path.is_file()}
    table = compare_decoders(model, manifests, settings, exp_dir / "eval")
    logger.info("results (also in %s):\n%s", exp_dir / "eval" / "results.md", table)
    plot_runs({exp_dir.name: read_history(exp_dir)}, exp_dir / "eval" / "curves.png")


def stage_bundle(name: str, configs: dict[str, Path]) -> None:
    exp_dir = Path(load_train_config(configs[name]).exp_dir)
    target = REPO_ROOT / "asr" / "models" / name
    bundle_model(exp_dir / "best", f"recipes/english (conf/{configs[name].name})", target, RECIPE_DIR)
    bundle_lm(DATA_DIR / "lm", exp_dir / "lm-tuning.json", target)


def recipe_stages(data_root: Path, configs: dict[str, Path]) -> list[Stage]:
    def made_from(name: str) -> str:
        """A per-model stage's inputs: its training config, so that another --config redoes it."""
        return f"config {recipe_relative(str(configs[name]), RECIPE_DIR)}"

    return [
        Stage(0, "prepare", lambda: stage_prepare(data_root)),
        Stage(1, "synthesize", lambda: stage_synthesize(data_root)),
        Stage(2, "stats", stage_stats),
        Stage(3, "train", lambda name: stage_train(name, configs), per_model=True, inputs=made_from),
        Stage(4, "lm", lambda: stage_lm(data_root)),
        Stage(5, "evaluate", lambda name: stage_evaluate(name, configs), per_model=True, inputs=made_from),
        Stage(6, "bundle", lambda name: stage_bundle(name, configs), per_model=True, inputs=made_from),
    ]


def config_overrides(pairs: list[str]) -> dict[str, Path]:
    """``["default=conf/x.toml"]`` -> :data:`CONFIGS` with those entries replaced (a relative
    path is looked up in this recipe's folder).

    Raises:
        ValueError: a pair is not ``MODEL=PATH`` with a known model and an existing file.
    """
    configs = dict(CONFIGS)
    for pair in pairs:
        name, _, path = pair.partition("=")
        config = Path(path) if Path(path).is_file() else RECIPE_DIR / path
        if name not in CONFIGS or not config.is_file():
            raise ValueError(
                f"--config {pair!r}: expected MODEL=PATH with MODEL one of {', '.join(CONFIGS)} and an existing PATH"
            )
        configs[name] = config.resolve()
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=default_data_root(), help="the shared data folder")
    parser.add_argument(
        "--models", nargs="+", choices=sorted(CONFIGS), default=["default"],
        help="models to train, evaluate and bundle in stages 3, 5 and 6 (default: default)",
    )  # fmt: skip
    parser.add_argument(
        "--config", action="append", default=[], metavar="MODEL=PATH",
        help="train, evaluate or bundle MODEL from this training config instead of its own "
        "(e.g. default=conf/bilstm_warm.toml); repeatable",
    )  # fmt: skip
    add_stage_arguments(parser, recipe_stages(Path(), CONFIGS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        stages = recipe_stages(args.data_root, config_overrides(args.config))
        check_stage_range(stages, args.stage, args.stop_stage)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        run_stages(stages, args.stage, args.stop_stage, DATA_DIR, args.models, args.force)
    except ASRError as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
