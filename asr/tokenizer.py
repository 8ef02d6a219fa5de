"""The tokenizer interface that training, decoding, alignment and lexicons rely on.

Two kinds satisfy it:

- ``char``: :class:`CharTokenizer`, the letters A-Z, the apostrophe and the word
  delimiter ``|`` (29 tokens).
- ``bpe``: :class:`asr.bpe.BPETokenizer`, the pieces of a SentencePiece BPE model; a piece
  starting with ``▁`` begins a word, and there is no delimiter token.

Both put the CTC blank at id 0. A checkpoint stores its tokenizer with :meth:`Tokenizer.to_dict`
(``"type"`` says which kind) and :func:`tokenizer_from_dict` rebuilds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from asr.bpe import BPETokenizer
from asr.errors import ConfigError
from asr.text import APOSTROPHE, BLANK, LETTERS, WORD_DELIMITER

TOKENIZER_KINDS = ("char", "bpe")


class Tokenizer(Protocol):
    """Normalised text <-> token ids, and where words begin and end among the ids."""

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token, in id order; ``tokens[blank_id]`` is the CTC blank."""
        ...

    @property
    def blank_id(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def word_delimiter(self) -> str | None:
        """The token that stands between words (``|``), or None if words begin at marked pieces."""
        ...

    def encode(self, text: str) -> list[int]:
        """Ids of normalised ``text``; ValueError if it holds what no token covers."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Normalised text of collapsed CTC ids (blanks are skipped)."""
        ...

    def word_spans(self, ids: Sequence[int]) -> list[tuple[int, int]]:
        """``[start, end)`` positions in blank-free ``ids`` of each word, in order."""
        ...

    def spell(self, word: str) -> list[str]:
        """The tokens that spell ``word`` in a beam-search lexicon; ValueError if it cannot."""
        ...

    def to_dict(self) -> dict: ...


@dataclass(frozen=True)
class TokenizerConfig:
    """The ``[tokenizer]`` table of a training config."""

    # "char": CharTokenizer; "bpe": the SentencePiece model at bpe_model (asr.bpe).
    kind: str = "char"
    # A SentencePiece .model file (train one with asr.bpe.train_bpe or `asr bpe`); with
    # kind = "bpe" only. model.vocab_size must equal its number of pieces.
    bpe_model: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TOKENIZER_KINDS:
            raise ConfigError(f"tokenizer.kind must be one of {', '.join(TOKENIZER_KINDS)}, got {self.kind!r}")
        if (self.kind == "bpe") != bool(self.bpe_model):
            raise ConfigError('tokenizer.bpe_model is needed with kind = "bpe", and only then')


def build_tokenizer(config: TokenizerConfig) -> Tokenizer:
    """The tokenizer a training config asks for.

    Raises:
        ConfigError: the BPE model file is missing or unusable (named).
    """
    if config.kind == "bpe":
        return BPETokenizer.from_file(config.bpe_model)
    return CharTokenizer()


def tokenizer_from_dict(data: dict) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_dict`.

    Raises:
        ValueError: an unknown type, or data that is corrupt or was edited.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a tokenizer is a JSON object, got {type(data).__name__}")
    if data.get("type") == "bpe":
        return BPETokenizer.from_dict(data)
    return CharTokenizer.from_dict(data)


@dataclass(frozen=True)
class CharTokenizer:
    """Characters of normalised text to token ids, with the CTC blank at index 0.

    The space between words is the token ``|``, the word delimiter that torchaudio's
    ``ctc_decoder`` expects.
    """

    tokens: tuple[str, ...] = (BLANK, WORD_DELIMITER, APOSTROPHE) + LETTERS

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != BLANK:
            raise ValueError(f"the first token must be the blank {BLANK!r}, got {self.tokens[:1]}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("tokens must be unique")

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def _index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def encode(self, text: str) -> list[int]:
        """Token ids of already-normalised ``text``.

        Raises:
            ValueError: ``text`` holds a character with no token (normalise it first).
        """
        index = self._index()
        ids = []
        for char in text:
            token = WORD_DELIMITER if char == " " else char
            if token not in index:
                raise ValueError(f"character {char!r} of {text!r} has no token; normalise the text first")
            ids.append(index[token])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (blanks skipped; no CTC collapsing is done here)."""
        chars = (self.tokens[i] for i in ids if i != self.blank_id)
        text = "".join(" " if c == WORD_DELIMITER else c for c in chars)
        return " ".join(text.split())

    @property
    def word_delimiter(self) -> str | None:
        """The token between words, ``|`` (None if this token set has none)."""
        return WORD_DELIMITER if WORD_DELIMITER in self.tokens else None

    def word_spans(self, ids: Sequence[int]) -> list[tuple[int, int]]:
        """``[start, end)`` positions in ``ids`` (blank-free) of each word: the runs between delimiters."""
        spans, start = [], 0
        for i, token in enumerate([*ids, None]):
            if token is None or self.tokens[token] == WORD_DELIMITER:
                if i > start:
                    spans.append((start, i))
                start = i + 1
        return spans

    def spell(self, word: str) -> list[str]:
        """``["W", "O", "R", "D", "|"]``: a lexicon spelling of ``word`` (the delimiter ends it).

        Raises:
            ValueError: ``word`` is empty or holds a character with no letter token.
        """
        letters = set(self.tokens) - {self.tokens[self.blank_id], WORD_DELIMITER}
        if not word or any(char not in letters for char in word):
            raise ValueError(f"the character tokenizer cannot spell {word!r}")
        return [*word, *([WORD_DELIMITER] if self.word_delimiter else [])]

    def to_dict(self) -> dict:
        return {"type": "char", "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: dict) -> CharTokenizer:
        if data.get("type") != "char":
            raise ValueError(f"unknown tokenizer type {data.get('type')!r}")
        return cls(tokens=tuple(data["tokens"]))
