"""Text for language models: plain-text files into one normalised sentence per line.

Text is normalised with :func:`asr.text.normalize_text`, exactly as transcripts are, so the words
of the LM are the words the acoustic model spells. How a file is cut into sentences is its
*layout*: with ``"lines"`` every line is a sentence (split further at sentence-final
punctuation, for lines that hold several); with ``"prose"`` the lines of each paragraph (blocks
between blank lines) are joined and split at sentence-final punctuation, keeping abbreviations
such as ``Mr.`` and initials inside the sentence. ``"auto"`` reads Project Gutenberg books as
prose and everything else as lines. A Gutenberg book is recognised by its licence markers
(``*** START OF THE PROJECT GUTENBERG EBOOK ...``, or the older ``*END*THE SMALL PRINT!``); the
licence header and footer around the book are always dropped. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from asr.errors import ASRError
from asr.text import normalize_text

logger = logging.getLogger(__name__)

Layout = Literal["auto", "lines", "prose"]
LAYOUTS: tuple[str, ...] = get_args(Layout)

_GUTENBERG_START_RE = re.compile(r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG|^\*END\*?\s*THE SMALL PRINT", re.I)
_GUTENBERG_END_RE = re.compile(r"^\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|^END OF (THE )?PROJECT GUTENBERG", re.I)
# Sentence-final punctuation, with any closing quotes or brackets, before a space or the end.
_SENTENCE_END_RE = re.compile(r"[.!?]+[\"'\u2019\u201d)\]_]*(?=\s|$)")
_OPENING_PUNCTUATION = "\"'\u2018\u201c([_"
# Words whose full stop does not end a sentence (compared in lower case, without the stop).
_ABBREVIATIONS = frozenset("mr mrs messrs ms dr st jr sr prof rev capt col gen gov lt sgt mt hon".split())
_REPLACEMENT_CHAR = "\ufffd"


class LMError(ASRError):
    """Text for a language model is missing or empty, or a KenLM program failed on it."""


@dataclass(frozen=True)
class SourceText:
    """One input text file as recorded in ``lm.json``."""

    name: str
    sha256: str
    bytes: int
    sentences: int


@dataclass(frozen=True)
class Corpus:
    """The normalised training text written to ``path``, and what it holds."""

    path: Path
    sources: tuple[SourceText, ...]
    sentences: int
    words: int
    vocabulary: frozenset[str]


# --- text ---------------------------------------------------------------------------------------


def strip_gutenberg(text: str) -> str:
    """The book inside a Project Gutenberg file, without its licence header and footer.

    Text without Gutenberg markers is returned unchanged.
    """
    lines = text.splitlines()
    span = _gutenberg_span(lines)
    return text if span is None else "\n".join(lines[span[0] : span[1]])


def _gutenberg_span(lines: Sequence[str]) -> tuple[int, int] | None:
    """``(start, end)`` line indices of the book, or None if ``lines`` has no start marker."""
    start = next((i + 1 for i, line in enumerate(lines) if _GUTENBERG_START_RE.match(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if _GUTENBERG_END_RE.match(lines[i])), len(lines))
    return start, end


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after ``.``, ``!`` or ``?`` (and closing quotes), except after abbreviations
    (``Mr.``, ``Dr.``), single capital initials (``G. K. Chesterton``) and dotted forms (``U.S.``)."""
    sentences = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        before = text[start : match.start()].split()
        if match.group() == "." and before and _is_abbreviation(before[-1]):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    return [s for s in sentences if s] + ([tail] if tail else [])


def _is_abbreviation(word: str) -> bool:
    word = word.lstrip(_OPENING_PUNCTUATION)
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper()) or "." in word


def _paragraphs(lines: Iterable[str]) -> list[str]:
    """Join runs of non-blank lines with spaces: one string per paragraph."""
    paragraphs, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def text_sentences(text: str, layout: Layout = "auto") -> list[str]:
    """The normalised, non-empty sentences of ``text`` (see the module docstring for ``layout``)."""
    lines = text.splitlines()
    span = _gutenberg_span(lines)
    if span is not None:
        lines = lines[span[0] : span[1]]
    prose = layout == "prose" or (layout == "auto" and span is not None)
    chunks = _paragraphs(lines) if prose else lines
    normalised = (normalize_text(sentence) for chunk in chunks for sentence in split_sentences(chunk))
    return [sentence for sentence in normalised if sentence]


def _read_text(path: Path) -> tuple[bytes, str]:
    """The bytes of ``path`` and their UTF-8 decoding (a BOM dropped, bad bytes replaced)."""
    if not path.is_file():
        raise LMError(f"text file {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LMError(f"cannot read text file {path}: {exc}") from exc
    if not raw:
        raise LMError(f"text file {path} is empty")
    text = raw.decode("utf-8-sig", errors="replace")
    if _REPLACEMENT_CHAR in text:
        logger.warning("%s: %d invalid UTF-8 sequences replaced", path, text.count(_REPLACEMENT_CHAR))
    return raw, text


def _streamed_line_sentences(path: Path) -> tuple[Callable[[], str], Callable[[], int], Iterator[str]]:
    """Sentences of a one-sentence-per-line text of any size, plain or gzipped, read line by
    line (the LibriSpeech LM text is 4 GB). The SHA-256 and size of the (decompressed) text are
    ready once the sentences are consumed."""
    if not path.is_file():
        raise LMError(f"text file {path} does not exist" if not path.exists() else f"{path} is not a file")
    digest, size = hashlib.sha256(), [0]

    def sentences() -> Iterator[str]:
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as f:
                for raw in f:
                    digest.update(raw)
                    size[0] += len(raw)
                    line = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
                    yield from filter(None, map(normalize_text, split_sentences(line)))
        except (OSError, EOFError) as exc:
            raise LMError(f"cannot read text file {path}: {exc}") from exc
        if not size[0]:
            raise LMError(f"text file {path} is empty")

    return digest.hexdigest, lambda: size[0], sentences()


def prepare_corpus(texts: Sequence[Path], corpus_path: Path, layout: Layout = "auto") -> Corpus:
    """Write the normalised sentences of every file of ``texts`` to ``corpus_path``, one per line.

    Raises:
        LMError: no files are given, or a file is missing, unreadable, empty, or holds no words
            once normalised (the message names it).
    """
    if not texts:
        raise LMError("no text files given to build a language model from")
    sources, vocabulary, words = [], Counter(), 0
    tmp = corpus_path.with_name(corpus_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for path in map(Path, texts):
            if layout == "lines" or path.suffix == ".gz":  # gzipped texts are read as lines
                digest, size, sentences = _streamed_line_sentences(path)
            else:
                raw, text = _read_text(path)
                sentences = text_sentences(text, layout)
                digest, size = hashlib.sha256(raw).hexdigest, lambda raw=raw: len(raw)
            count = 0
            for sentence in sentences:
                out.write(sentence + "\n")
                tokens = sentence.split()
                words += len(tokens)
                vocabulary.update(tokens)
                count += 1
            if not count:
                raise LMError(f"text file {path} holds no words once normalised")
            sources.append(SourceText(path.name, digest(), size(), count))
            logger.info("%s: %d sentences", path, count)
    os.replace(tmp, corpus_path)
    total = sum(source.sentences for source in sources)
    return Corpus(corpus_path, tuple(sources), total, words, frozenset(vocabulary))
