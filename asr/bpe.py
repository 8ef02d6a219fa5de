"""SentencePiece BPE output units: an alternative to characters, trained on normalised text.

A word is spelled as a few pieces (``HELLO WORLD`` -> ``▁HEL LO ▁WORLD``); a piece that starts
with SentencePiece's meta symbol ``▁`` begins a word, so there is no word-delimiter token.

Token ids: SentencePiece requires an unknown piece ``<unk>`` and :func:`train_bpe` gives it id 0.
That id is the CTC blank here (``<blk>``), so every other piece keeps its SentencePiece id and
the model's ``vocab_size`` is the SentencePiece vocabulary size. The model is never trained to
emit ``<unk>``: text that would need it (a character the pieces do not cover) is refused by
:meth:`BPETokenizer.encode`, as :class:`asr.tokenizer.CharTokenizer` refuses a character it has no
token for. SentencePiece's ``<s>``, ``</s>`` and ``<pad>`` are disabled: CTC has no use for
them, and each would be an output unit that is never a target.

The serialized SentencePiece model travels inside the checkpoint's ``model.json`` (base64, with
its SHA-256), so a checkpoint never refers to a file outside itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sentencepiece

from asr.errors import ConfigError
from asr.text import BLANK, normalize_text

logger = logging.getLogger(__name__)

WORD_START = "\u2581"
"""SentencePiece's meta symbol for the space before a word (``▁``)."""
MODEL_TYPE = "bpe"
UNK_ID = 0  # SentencePiece's <unk>; the CTC blank takes its id
DISABLED_ID = -1  # SentencePiece's way to leave a special piece out
# SentencePiece's log level for warnings and errors only (0 would log every training step).
SENTENCEPIECE_QUIET = 2


def _processor(model: bytes) -> sentencepiece.SentencePieceProcessor:
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model)
    except (RuntimeError, OSError, TypeError) as exc:
        raise ValueError(f"not a SentencePiece model ({exc})") from exc
    return processor


@dataclass(frozen=True)
class BPETokenizer:
    """Pieces of a SentencePiece model as token ids, with the CTC blank at index 0.

    Args:
        model: the serialized SentencePiece model (the bytes of a ``.model`` file).

    Raises:
        ValueError: ``model`` is not a SentencePiece model, its ``<unk>`` is not id 0, or it
            has ``<s>``/``</s>``/``<pad>`` pieces (train it with :func:`train_bpe`).
    """

    model: bytes = field(repr=False)
    tokens: tuple[str, ...] = field(init=False)
    _processor: sentencepiece.SentencePieceProcessor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        processor = _processor(self.model)
        if processor.unk_id() != UNK_ID:
            raise ValueError(f"the SentencePiece model's <unk> must have id {UNK_ID}, got {processor.unk_id()}")
        special = [
            processor.id_to_piece(i) for i in (processor.bos_id(), processor.eos_id(), processor.pad_id()) if i >= 0
        ]
        if special:
            raise ValueError(
                f"the SentencePiece model has {', '.join(special)}; train it with bos, eos and pad disabled"
            )
        pieces = tuple(processor.id_to_piece(i) for i in range(UNK_ID + 1, processor.get_piece_size()))
        object.__setattr__(self, "_processor", processor)
        object.__setattr__(self, "tokens", (BLANK, *pieces))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> BPETokenizer:
        """The tokenizer of a SentencePiece ``.model`` file.

        Raises:
            ConfigError: the file is missing or is not a usable SentencePiece model (named).
        """
        try:
            return cls(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the SentencePiece model ({exc})") from exc
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def word_delimiter(self) -> str | None:
        """None: words begin at pieces starting with ``▁``; no token stands between them."""
        return None

    def encode(self, text: str) -> list[int]:
        """Token ids of already-normalised ``text``.

        Raises:
            ValueError: a character of ``text`` is not covered by the pieces (normalise it first).
        """
        ids = self._processor.encode(text)
        if UNK_ID in ids:
            unknown = sorted({c for c in text if c != " " and self._processor.piece_to_id(c) == UNK_ID})
            raise ValueError(f"{text!r} has characters {unknown} that no BPE piece covers; normalise the text first")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (blanks skipped; no CTC collapsing is done here)."""
        return " ".join(self._processor.decode([i for i in ids if i != self.blank_id]).split())

    def word_spans(self, ids: Sequence[int]) -> list[tuple[int, int]]:
        """``[start, end)`` positions in ``ids`` (blank-free) of each word: a word begins at a
        ``▁`` piece (or at the first piece, if the ids start inside a word)."""
        starts = [i for i, token in enumerate(ids) if i == 0 or self.tokens[token].startswith(WORD_START)]
        return list(zip(starts, [*starts[1:], len(ids)]))

    def spell(self, word: str) -> list[str]:
        """``["▁HEL", "LO"]``: the pieces of ``word``, its spelling in a lexicon.

        Raises:
            ValueError: ``word`` is empty, holds a space, or has a character no piece covers.
        """
        if not word or " " in word:
            raise ValueError(f"a lexicon spells one word, got {word!r}")
        return [self.tokens[i] for i in self.encode(word)]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model).hexdigest()

    def to_dict(self) -> dict:
        """``{"type": "bpe", "model": <base64>, "sha256", "tokens"}`` for a checkpoint's JSON."""
        return {
            "type": "bpe",
            "model": base64.b64encode(self.model).decode("ascii"),
            "sha256": self.sha256,
            "tokens": list(self.tokens),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BPETokenizer:
        """Rebuild from :meth:`to_dict`, verifying the model against its SHA-256 and tokens.

        Raises:
            ValueError: another tokenizer type, or a model that is corrupt or was edited.
        """
        if data.get("type") != "bpe":
            raise ValueError(f"unknown tokenizer type {data.get('type')!r}")
        try:
            model = base64.b64decode(data["model"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise ValueError(f"the BPE model is not valid base64 ({exc})") from exc
        if hashlib.sha256(model).hexdigest() != data.get("sha256"):
            raise ValueError("the BPE model does not match its SHA-256; it was edited or corrupted")
        tokenizer = cls(model)
        if list(tokenizer.tokens) != data.get("tokens"):
            raise ValueError("the BPE model's pieces differ from the tokens recorded beside it")
        return tokenizer


def train_bpe(texts: Iterable[str], vocab_size: int, output: str | os.PathLike) -> BPETokenizer:
    """Train a SentencePiece BPE model of ``vocab_size`` tokens (the blank included) on ``texts``.

    Each text is normalised with :func:`asr.text.normalize_text` first, as transcripts are for
    training, so the pieces cover exactly the characters of normalised text. The model is
    written to ``output`` (a ``.model`` file, through a temporary file renamed into place).

    Raises:
        ConfigError: no text has words, or ``vocab_size`` does not fit the text (too small for
            its characters, or more pieces than it has; SentencePiece's message says which).
    """
    sentences = [s for s in map(normalize_text, texts) if s]
    if not sentences:
        raise ConfigError("no text to train a BPE model on")
    buffer = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=buffer, model_type=MODEL_TYPE, vocab_size=vocab_size,
            # Every character of normalised text gets a piece, so no transcript needs <unk>.
            character_coverage=1.0, unk_id=UNK_ID, bos_id=DISABLED_ID, eos_id=DISABLED_ID, pad_id=DISABLED_ID,
            # The text is normalised already; NFKC would only be a slower no-op.
            normalization_rule_name="identity", num_threads=1, minloglevel=SENTENCEPIECE_QUIET,
        )  # fmt: skip
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot train a BPE model of {vocab_size} tokens on {len(sentences)} sentences: {exc}"
        ) from exc
    tokenizer = BPETokenizer(buffer.getvalue())
    output = Path(output)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(tokenizer.model)
    os.replace(tmp, output)
    logger.info("BPE model of %d tokens from %d sentences -> %s", vocab_size, len(sentences), output)
    return tokenizer
