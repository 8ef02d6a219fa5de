"""Word n-gram language models for CTC beam search, estimated with KenLM.

:func:`build_lm` turns plain-text files into a directory that torchaudio's ``ctc_decoder`` uses
in lexicon mode::

    corpus.txt    the training text, one normalised sentence per line
    lm.bin        the KenLM binary (probing hash tables, the fastest to query); with
                  ``binary=False`` the ARPA file ``lm.arpa`` is the model instead
    lm.arpa       beside ``lm.bin`` only with ``keep_arpa=True``: it is several times larger,
                  and its n-gram counts are recorded in ``lm.json`` anyway
    lexicon.txt   ``WORD<TAB>W O R D |`` for every word of the LM that the tokenizer can spell
                  (with a BPE tokenizer, the word's pieces: ``WORD<TAB>▁WO RD``)
    lm.json       provenance: source files and their SHA-256, order, pruning, counts, KenLM version

Use it as ``BeamConfig(lm=str(files.lm), lexicon=str(files.lexicon))`` (:mod:`asr.decoding.beam`).

The text is normalised and cut into sentences by :mod:`asr.lm.corpus`, exactly as transcripts
are normalised, so the words of the LM are the words the acoustic model spells.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ConfigError
from asr.files import write_text_atomic
from asr.lm.corpus import LAYOUTS, Corpus, Layout, LMError, prepare_corpus
from asr.lm.kenlm import KenLMBinaries, kenlm_binaries
from asr.tokenizer import CharTokenizer, Tokenizer

logger = logging.getLogger(__name__)

FORMAT_NAME = "asr-ngram-lm"
FORMAT_VERSION = 1
CORPUS_FILE = "corpus.txt"
ARPA_FILE = "lm.arpa"
BINARY_FILE = "lm.bin"
LEXICON_FILE = "lexicon.txt"
METADATA_FILE = "lm.json"
TEMP_SUBDIR = "tmp"

DEFAULT_ORDER = 3
MIN_ORDER = 2  # KenLM's binary format and query code need at least bigrams
MAX_ORDER = 6  # KenLM's compiled-in KENLM_MAX_ORDER
# lmplz sorts n-grams in memory; a fifth of the RAM leaves room for a training job beside it.
LMPLZ_MEMORY = "20%"
# Hash tables: the fastest queries, which is what a beam search does all day.
BINARY_STRUCTURE = "probing"
# For an LM shipped in a package: a trie with probabilities and backoffs quantised to 8 bits,
# several times smaller than the hash tables (KenLM's documented size/speed trade-off).
COMPACT_STRUCTURE = "trie"
COMPACT_OPTIONS = ("-q", "8", "-b", "8")
ERROR_TAIL_LINES = 20
SKIPPED_EXAMPLES = 5


@dataclass(frozen=True)
class LMFiles:
    """The files of a built LM; ``lm`` is what to pass to ``ctc_decoder(lm=...)``."""

    directory: Path
    lm: Path
    lexicon: Path
    metadata: Path
    corpus: Path
    arpa: Path | None


# --- lexicon ------------------------------------------------------------------------------------


def spelling(word: str, tokenizer: Tokenizer) -> str | None:
    """``word``'s lexicon spelling in the tokenizer's tokens (``W O R D |`` with characters,
    ``▁WO RD`` with BPE); None if the tokenizer cannot spell it."""
    try:
        return " ".join(tokenizer.spell(word))
    except ValueError:
        return None


def write_lexicon(words: Iterable[str], path: Path, tokenizer: Tokenizer) -> tuple[int, int]:
    """Write ``WORD<TAB>spelling`` per word (see :func:`spelling`), sorted, for ``ctc_decoder``.
    Words the tokenizer cannot spell are skipped (the decoder could never emit them).

    Returns:
        ``(written, skipped)`` word counts.
    """
    lines, skipped = [], []
    for word in sorted(set(words)):
        spelled = spelling(word, tokenizer)
        if spelled is None:
            skipped.append(word)
        else:
            lines.append(f"{word}\t{spelled}\n")
    write_text_atomic(path, "".join(lines))
    if skipped:
        logger.warning(
            "%d words have characters the tokenizer cannot spell and are left out of %s (e.g. %s)",
            len(skipped), path, ", ".join(skipped[:SKIPPED_EXAMPLES]),
        )  # fmt: skip
    return len(lines), len(skipped)


# --- KenLM --------------------------------------------------------------------------------------


def _check_options(order: int, prune: Sequence[int] | None, layout: str) -> None:
    if not MIN_ORDER <= order <= MAX_ORDER:
        raise ConfigError(f"LM order must be between {MIN_ORDER} and {MAX_ORDER}, got {order}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if prune is None:
        return
    thresholds = list(prune)
    if not thresholds or len(thresholds) > order:
        raise ConfigError(f"prune needs 1 to {order} thresholds (one per order), got {thresholds}")
    if any(t < 0 for t in thresholds) or thresholds != sorted(thresholds):
        raise ConfigError(f"prune thresholds must be non-negative and non-decreasing, got {thresholds}")
    if thresholds[0] != 0:
        raise ConfigError(f"KenLM cannot prune unigrams: the first prune threshold must be 0, got {thresholds}")


def _run(command: Sequence[str], what: str) -> None:
    """Run a KenLM program; raise :class:`LMError` with the tail of its stderr if it fails."""
    logger.info("running %s", " ".join(command))
    try:
        result = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    except OSError as exc:
        raise LMError(f"cannot run {what} ({command[0]}): {exc}") from exc
    logger.debug("%s stderr:\n%s", what, result.stderr)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-ERROR_TAIL_LINES:])
        raise LMError(f"{what} failed with exit status {result.returncode}:\n{tail}")


def lmplz_options(order: int, prune: Sequence[int] | None) -> list[str]:
    """lmplz's options other than file names (recorded in ``lm.json``)."""
    options = ["-o", str(order), "--discount_fallback", "-S", LMPLZ_MEMORY]
    return options + (["--prune", *map(str, prune)] if prune else [])


def estimate_arpa(
    binaries: KenLMBinaries, corpus: Path, arpa: Path, order: int, prune: Sequence[int] | None = None
) -> None:
    """Estimate a modified Kneser-Ney ``order``-gram model of ``corpus`` into the ARPA file ``arpa``.

    ``--discount_fallback`` lets lmplz estimate from small corpora whose count-of-counts cannot
    give discounts. Temporary files go to a directory beside ``arpa``.
    """
    temp_dir = arpa.parent / TEMP_SUBDIR
    temp_dir.mkdir(exist_ok=True)
    tmp = arpa.with_name(arpa.name + ".tmp")
    command = [str(binaries.lmplz), *lmplz_options(order, prune)]
    command += ["-T", str(temp_dir) + os.sep, "--text", str(corpus), "--arpa", str(tmp)]
    try:
        _run(command, "lmplz")
        os.replace(tmp, arpa)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(temp_dir, ignore_errors=True)


def binary_options(compact: bool) -> list[str]:
    """build_binary's options other than file names (recorded in ``lm.json``)."""
    return [*COMPACT_OPTIONS, COMPACT_STRUCTURE] if compact else [BINARY_STRUCTURE]


def compile_binary(binaries: KenLMBinaries, arpa: Path, binary: Path, compact: bool = False) -> None:
    """Convert the ARPA file ``arpa`` to KenLM's binary format at ``binary``: probing hash tables,
    or with ``compact`` a quantised trie (see :data:`COMPACT_OPTIONS`)."""
    tmp = binary.with_name(binary.name + ".tmp")
    try:
        _run([str(binaries.build_binary), *binary_options(compact), str(arpa), str(tmp)], "build_binary")
        os.replace(tmp, binary)
    finally:
        tmp.unlink(missing_ok=True)


def read_ngram_counts(arpa: Path) -> list[int]:
    """The n-gram counts of the ``\\data\\`` header of an ARPA file, unigrams first."""
    counts = {}
    with open(arpa, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("ngram "):
                order, count = line[len("ngram ") :].split("=")
                counts[int(order)] = int(count)
            elif line.startswith("\\1-grams:"):
                break
    if not counts:
        raise LMError(f"{arpa} has no \\data\\ header with n-gram counts; it is not an ARPA file")
    return [counts[n] for n in sorted(counts)]


ARPA_SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>"})


def arpa_vocabulary(arpa: Path) -> list[str]:
    """The words of an ARPA file's unigram section (``<s>``, ``</s>`` and ``<unk>`` left out).

    Plain or gzipped (``.gz``), as the official LibriSpeech LMs are distributed.
    """
    opener = gzip.open if arpa.suffix == ".gz" else open
    words, in_unigrams = [], False
    with opener(arpa, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("\\1-grams:"):
                in_unigrams = True
            elif in_unigrams and line.startswith("\\"):
                break
            elif in_unigrams and line.strip():
                word = line.split("\t")[1].strip()
                if word not in ARPA_SPECIAL_WORDS:
                    words.append(word)
    if not words:
        raise LMError(f"{arpa} has no unigrams; it is not an ARPA file")
    return words


# --- the whole build ----------------------------------------------------------------------------


def build_lm(
    texts: Sequence[Path],
    output_dir: Path,
    order: int = DEFAULT_ORDER,
    prune: Sequence[int] | None = None,
    binary: bool = True,
    compact: bool = False,
    keep_arpa: bool = False,
    layout: Layout = "auto",
    tokenizer: Tokenizer | None = None,
    binaries: KenLMBinaries | None = None,
) -> LMFiles:
    """Build a word n-gram LM and its lexicon from text files into ``output_dir``.

    Args:
        texts: UTF-8 text files (a BOM is dropped, invalid bytes replaced).
        output_dir: where the files listed in the module docstring go (created if needed;
            files of an earlier build there are replaced).
        order: n-gram order, 2 to 6 (default 3).
        prune: lmplz count thresholds per order, e.g. ``(0, 1, 1)`` drops bigrams and trigrams
            seen once; the first must be 0, the last applies to higher orders. None: no pruning.
        binary: convert the model to KenLM's binary format ``lm.bin`` (faster to load).
        keep_arpa: with ``binary``, keep ``lm.arpa`` too.
        compact: make ``lm.bin`` a quantised trie, several times smaller, for shipping.
        layout: how files are cut into sentences: ``"auto"``, ``"lines"`` or ``"prose"``.
        tokenizer: spells the lexicon: the acoustic model's (default: :class:`CharTokenizer`).
        binaries: KenLM programs (default: :func:`asr.lm.kenlm.kenlm_binaries`, which may
            build them).

    Raises:
        ConfigError: ``order``, ``prune`` or ``layout`` is out of range.
        LMError: a text file is missing or empty (named), or lmplz/build_binary failed (with the
            tail of its stderr).
        KenLMError: KenLM is not installed and cannot be built.
    """
    _check_options(order, prune, layout)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer or CharTokenizer()
    corpus = prepare_corpus(texts, output_dir / CORPUS_FILE, layout)
    binaries = binaries or kenlm_binaries()
    arpa = output_dir / ARPA_FILE
    estimate_arpa(binaries, corpus.path, arpa, order, prune)
    counts = read_ngram_counts(arpa)
    lm_path = arpa
    if binary:
        lm_path = output_dir / BINARY_FILE
        compile_binary(binaries, arpa, lm_path, compact)
    kept_arpa = arpa if (keep_arpa or not binary) else None
    _remove_stale(output_dir, keep={lm_path, kept_arpa})
    written, skipped = write_lexicon(corpus.vocabulary, output_dir / LEXICON_FILE, tokenizer)
    lexicon = {"words": written, "skipped": skipped, "tokenizer": _summary(tokenizer.to_dict())}
    metadata = _metadata(corpus, binaries, order, prune, layout, counts, (lm_path, kept_arpa), compact, lexicon)
    write_text_atomic(output_dir / METADATA_FILE, json.dumps(metadata, indent=2) + "\n")
    logger.info(
        "%d-gram LM of %d sentences, %d words, vocabulary %d, n-grams %s: %s",
        order, corpus.sentences, corpus.words, len(corpus.vocabulary), counts, lm_path,
    )  # fmt: skip
    return LMFiles(output_dir, lm_path, output_dir / LEXICON_FILE, output_dir / METADATA_FILE, corpus.path, kept_arpa)


def _metadata(
    corpus: Corpus,
    binaries: KenLMBinaries,
    order: int,
    prune: Sequence[int] | None,
    layout: Layout,
    counts: list[int],
    files: tuple[Path, Path | None],
    compact: bool,
    lexicon: dict,
) -> dict:
    """``lm.json`` of a build; ``files`` is ``(lm, kept arpa or None)``, the LM an ARPA file unless binary."""
    lm_path, kept_arpa = files
    binary = lm_path.name == BINARY_FILE
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "order": order,
        "prune": list(prune) if prune else None,
        "layout": layout,
        "normalization": "asr.text.normalize_text",
        "sources": [vars(source) for source in corpus.sources],
        "sentences": corpus.sentences,
        "words": corpus.words,
        "vocabulary": len(corpus.vocabulary),
        "ngram_counts": counts,
        "files": {
            "lm": lm_path.name, "arpa": kept_arpa.name if kept_arpa else None,
            "lexicon": LEXICON_FILE, "corpus": CORPUS_FILE,
        },
        "binary_structure": (COMPACT_STRUCTURE if compact else BINARY_STRUCTURE) if binary else None,
        "binary_options": binary_options(compact) if binary else None,
        "lexicon": lexicon,
        "tool": {"name": "kenlm", "version": binaries.version, "lmplz_options": lmplz_options(order, prune)},
    }  # fmt: skip


def _summary(tokenizer: dict) -> dict:
    """The tokenizer, without a BPE model's bytes (their SHA-256 stays)."""
    return {k: v for k, v in tokenizer.items() if k != "model"}


def _remove_stale(output_dir: Path, keep: set[Path | None]) -> None:
    """Delete model files of this or an earlier build that this build does not produce."""
    for name in (ARPA_FILE, BINARY_FILE):
        path = output_dir / name
        if path not in keep:
            path.unlink(missing_ok=True)
