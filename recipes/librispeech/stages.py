"""The LibriSpeech recipe's data stages: manifests, feature statistics, language model and
lexicon, tokens (characters or a BPE model), and the training config with this run's paths and
tokenizer filled in; and what each stage is made from (its ``inputs`` for the stage runner,
:mod:`asr.train.recipe`), so that work made from other data is redone, never silently reused."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import shutil
from pathlib import Path

from asr.bpe import BPETokenizer, train_bpe
from asr.config import load_toml
from asr.errors import ConfigError
from asr.files import write_text_atomic
from asr.lm.build import arpa_vocabulary, build_lm, write_lexicon
from asr.manifest import read_manifest, write_manifest
from asr.tokenizer import CharTokenizer, Tokenizer, TokenizerConfig
from asr.train.config import TrainConfig
from asr.train.recipe import compute_stats
from recipes.librispeech.fetch import file_digest
from recipes.librispeech.prepare import prepare_subset

logger = logging.getLogger(__name__)

OFFICIAL_MIRROR = "https://www.openslr.org/resources/12"
# Feature statistics converge long before the whole of 960 h: a seeded sample is enough.
STATS_MAX_UTTERANCES = 2000
STATS_SEED = 12
# The official LMs of openslr.org/11, most preferred first (the pruned 3-gram loads fastest).
OFFICIAL_LMS = ("3-gram.pruned.1e-7.arpa.gz", "3-gram.arpa.gz", "4-gram.arpa.gz")
LM_TEXT = "librispeech-lm-norm.txt.gz"
BUILT_LM_ORDER = 3


def prepare_subsets(corpus: Path, subsets: list[str], data: Path, force: bool = False) -> None:
    """``<subset>.jsonl`` for each subset (kept from an earlier run unless ``force``: another
    ``--subsets`` adds only the new ones), then ``train.jsonl`` and ``valid.jsonl``.

    Raises:
        ConfigError: no training subset, or no dev subset to validate on, among ``subsets``.
    """
    for subset in subsets:
        manifest = data / f"{subset}.jsonl"
        if manifest.is_file() and not force:
            logger.info("%s exists; skipping", manifest)
            continue
        prepare_subset(corpus, subset, manifest)
    train = [s for s in subsets if s.startswith("train-")]
    dev = [s for s in subsets if s.startswith("dev-")]
    if not train or not dev:
        raise ConfigError(f"--subsets needs a train-* and a dev-* subset, got {' '.join(subsets)}")
    write_manifest(data / "train.jsonl", [u for s in train for u in read_manifest(data / f"{s}.jsonl")])
    valid = "dev-clean" if "dev-clean" in dev else dev[0]
    shutil.copyfile(data / f"{valid}.jsonl", data / "valid.jsonl")
    logger.info("training on %s; validating on %s", " ".join(train), valid)


def digest_of(path: Path, made_by: str) -> str:
    """``<file name> sha256 <hex>``, a stage's inputs as recorded in its marker.

    Raises:
        ConfigError: ``path`` is missing (names the stage ``made_by`` that writes it).
    """
    if not path.is_file():
        raise ConfigError(f"{path} is missing: run stage {made_by} first")
    return f"{path.name} sha256 {file_digest(path, 'sha256')}"


def write_stats(data: Path) -> None:
    """Global log-mel mean and std over a seeded sample of the training set -> ``stats.json``."""
    target = data / "stats.json"
    normalizer = compute_stats(
        read_manifest(data / "train.jsonl"), max_utterances=STATS_MAX_UTTERANCES, seed=STATS_SEED
    )
    write_text_atomic(target, json.dumps(normalizer.to_dict()) + "\n")
    logger.info("feature statistics -> %s", target)


def bpe_model_path(data: Path, bpe_size: int) -> Path:
    return data / f"bpe-{bpe_size}.model"


def recipe_tokenizer(data: Path, bpe_size: int) -> Tokenizer:
    """The output units of this run: characters (``bpe_size`` 0), else stage 4's BPE model."""
    return BPETokenizer.from_file(bpe_model_path(data, bpe_size)) if bpe_size else CharTokenizer()


def write_tokens(data: Path, bpe_size: int = 0) -> Tokenizer:
    """The model's output units, one per line, index order (blank first): ``tokens.txt``.

    With ``bpe_size`` > 0, first a SentencePiece BPE model of that many tokens (the blank
    included) trained on the training transcripts, ``bpe-<bpe_size>.model``, and afterwards the
    words of the LM's character lexicon spelled in its pieces (:func:`write_bpe_lexicon`).

    Raises:
        ConfigError: BPE units, and no character lexicon (stage 3, lm) to spell in them.
    """
    if bpe_size:
        chars = data / "lm" / "lexicon.txt"
        if not chars.is_file():
            raise ConfigError(f"{chars} is missing: run stage 3 (lm) before BPE units, which spell its words")
        train_bpe((u.text for u in read_manifest(data / "train.jsonl")), bpe_size, bpe_model_path(data, bpe_size))
    tokenizer = recipe_tokenizer(data, bpe_size)
    write_text_atomic(data / "tokens.txt", "".join(f"{t}\n" for t in tokenizer.tokens))
    if bpe_size:
        write_bpe_lexicon(data / "lm", tokenizer)
    return tokenizer


def tokens_inputs(data: Path, bpe_size: int) -> str:
    """What stage 4 is made from: the transcripts and the lexicon its BPE units spell."""
    if not bpe_size:
        return "characters"
    made_from = f"{digest_of(data / 'train.jsonl', '1 (prepare)')}, {digest_of(data / 'lm' / 'lexicon.txt', '3 (lm)')}"
    return f"BPE of {bpe_size} tokens from {made_from}"


def _gunzip(source: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    with gzip.open(source, "rb") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst)
    partial.replace(target)


def _lm_source(data_dir: Path, data: Path) -> Path:
    """The file stage 3 builds from: an official LM, else the LM text, else the transcripts."""
    for name in OFFICIAL_LMS + (LM_TEXT,):
        for folder in (data_dir / "lm", data_dir):
            if (folder / name).is_file():
                return folder / name
    return data / "train.jsonl"


def lm_inputs(data_dir: Path, data: Path) -> str:
    """What stage 3 is made from (the official files by name and size: hashing GBs is slow)."""
    path = _lm_source(data_dir, data)
    if path.name in OFFICIAL_LMS + (LM_TEXT,):
        return f"{path.name} size {path.stat().st_size}"
    return digest_of(path, "1 (prepare)")


def lexicon_path(lm_dir: Path, tokenizer: Tokenizer) -> Path:
    """The lexicon that spells the LM's words in ``tokenizer``'s tokens: ``lexicon.txt`` for
    characters, ``lexicon-bpe-<size>.txt`` for a BPE model."""
    return lm_dir / (
        "lexicon.txt" if isinstance(tokenizer, CharTokenizer) else f"lexicon-bpe-{tokenizer.vocab_size}.txt"
    )


def write_bpe_lexicon(lm_dir: Path, tokenizer: BPETokenizer) -> None:
    """Re-spell the words of the character lexicon (every word of the LM) in BPE pieces."""
    chars = lm_dir / "lexicon.txt"
    target = lexicon_path(lm_dir, tokenizer)
    words = [line.split("\t", 1)[0] for line in chars.read_text(encoding="utf-8").splitlines() if line]
    written, skipped = write_lexicon(words, target, tokenizer)
    logger.info("BPE lexicon: %d words (%d the model cannot spell left out) -> %s", written, skipped, target)


def write_lm(data_dir: Path, data: Path) -> Path:
    """The n-gram LM and character lexicon ``lexicon.txt`` of stage 3 into ``data/lm``;
    returns the LM file.

    In order of preference: an official LM, an LM built from the official LM text, an LM built
    from the training transcripts (see the module docstring of ``run.py``). Stage 4 spells the
    lexicon's words in BPE pieces too when the model's units are a BPE model.
    """
    lm_dir = data / "lm"
    lexicon = lm_dir / "lexicon.txt"
    path = _lm_source(data_dir, data)
    lm_dir.mkdir(parents=True, exist_ok=True)
    for stale in (lm_dir / "lm.arpa", lm_dir / "lm.bin"):
        stale.unlink(missing_ok=True)
    if path.name in OFFICIAL_LMS:
        logger.info("using the official LM %s", path)
        _gunzip(path, lm_dir / "lm.arpa")
        written, skipped = write_lexicon(arpa_vocabulary(path), lexicon, CharTokenizer())
        logger.info("lexicon: %d words (%d the model cannot spell left out)", written, skipped)
        lm = lm_dir / "lm.arpa"
    elif path.name == LM_TEXT:  # 4 GB of text: read line by line, never whole
        lm = build_lm([path], lm_dir, order=BUILT_LM_ORDER, layout="lines").lm
    else:
        logger.info("no official LM or LM text in %s: building one from the training transcripts", data_dir)
        text = lm_dir / "train-transcripts.txt"
        write_text_atomic(text, "".join(u.text + "\n" for u in read_manifest(path)))
        lm = build_lm([text], lm_dir, order=BUILT_LM_ORDER, layout="lines").lm
    return lm


def training_config(config_path: Path, data: Path, exp_dir: Path, bpe_size: int = 0) -> TrainConfig:
    """The recipe config with this run's manifests, statistics and experiment folder; with
    ``bpe_size`` > 0, stage 4's BPE model as the tokenizer and its size as ``model.vocab_size``."""
    config = load_toml(TrainConfig, config_path)
    if not config.data.attribution:
        raise ConfigError(f"{config_path}: data.attribution must credit LibriSpeech")
    data_config = dataclasses.replace(
        config.data,
        train_manifest=str(data / "train.jsonl"),
        valid_manifest=str(data / "valid.jsonl"),
        stats=str(data / "stats.json"),
    )
    tokenizer, model = config.tokenizer, config.model
    if bpe_size:
        tokenizer = TokenizerConfig(kind="bpe", bpe_model=str(bpe_model_path(data, bpe_size)))
        model = dataclasses.replace(model, vocab_size=bpe_size)
    elif tokenizer.bpe_model:  # the derived config is read from elsewhere: make the path absolute
        tokenizer = dataclasses.replace(tokenizer, bpe_model=str((config_path.parent / tokenizer.bpe_model).resolve()))
    return dataclasses.replace(config, data=data_config, exp_dir=str(exp_dir), tokenizer=tokenizer, model=model)
