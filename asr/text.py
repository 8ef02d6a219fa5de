"""Text normalisation in the LibriSpeech style, and the character set the tokenizers spell it in.

(The tokenizers themselves, characters and SentencePiece BPE, are in :mod:`asr.tokenizer` and
:mod:`asr.bpe`.)

Normalised text holds only the upper-case letters A-Z, the apostrophe and single spaces, the
form of LibriSpeech's transcripts. The rules, in order:

1. Unicode is decomposed and accents are dropped (``café`` -> ``CAFE``); curly quotes become
   straight ones.
2. ``&`` reads as ``and``, ``%`` as ``percent``, ``+`` as ``plus``, ``@`` as ``at``.
3. Numbers are spelled out: ``42`` -> ``FORTY TWO``; ordinals ``1st``/``22nd`` -> ``FIRST``/
   ``TWENTY SECOND``; money ``$3.50`` -> ``THREE DOLLARS AND FIFTY CENTS``; decimals ``3.5`` -> ``THREE POINT FIVE``; digit groups ``1,000`` ->
   ``ONE THOUSAND``. Years are read as cardinals (``1990`` -> ``ONE THOUSAND NINE HUNDRED
   NINETY``), which is what LibriSpeech's own normalisation did for most book text.
4. Hyphens, slashes and other punctuation separate words; apostrophes survive only inside a
   word (``DON'T``, ``O'CLOCK``), so quotation marks vanish.
5. Case is upper; runs of whitespace become one space; ends are trimmed.
"""

from __future__ import annotations

import re
import unicodedata

BLANK = "<blk>"
WORD_DELIMITER = "|"
APOSTROPHE = "'"
LETTERS = tuple(chr(c) for c in range(ord("A"), ord("Z") + 1))

_ONES = (
    "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN "
    "FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN"
).split()
_TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()
_SCALES = ((10**12, "TRILLION"), (10**9, "BILLION"), (10**6, "MILLION"), (1000, "THOUSAND"))
_HUNDRED = 100
_TEN = 10
_ORDINAL_EXCEPTIONS = {
    "ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH", "EIGHT": "EIGHTH",
    "NINE": "NINTH", "TWELVE": "TWELFTH",
}  # fmt: skip
_SYMBOLS = {"&": " AND ", "%": " PERCENT ", "+": " PLUS ", "@": " AT "}
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'"}

_MONEY_RE = re.compile(r"\$(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?\b")
_ORDINAL_RE = re.compile(r"\b(\d+)(ST|ND|RD|TH)\b")
_DECIMAL_RE = re.compile(r"\b(\d+)\.(\d+)\b")
_GROUPED_RE = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_INTEGER_RE = re.compile(r"\d+")
_NOT_ALLOWED_RE = re.compile(r"[^A-Z' ]+")
_EDGE_APOSTROPHE_RE = re.compile(r"(?<![A-Z])'+|'+(?![A-Z])")
_SPACES_RE = re.compile(r"\s+")


def number_to_words(number: int) -> str:
    """Spell out a non-negative integer: ``342`` -> ``THREE HUNDRED FORTY TWO``."""
    if number < 0:
        raise ValueError(f"number must be non-negative, got {number}")
    if number < len(_ONES):
        return _ONES[number]
    if number < _HUNDRED:
        tens, ones = divmod(number, _TEN)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if number < _SCALES[-1][0]:
        hundreds, rest = divmod(number, _HUNDRED)
        return _ONES[hundreds] + " HUNDRED" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_EXCEPTIONS:
        last = _ORDINAL_EXCEPTIONS[last]
    elif last.endswith("Y"):
        last = last[:-1] + "IETH"
    else:
        last += "TH"
    return f"{head} {last}".strip()


def _plural(count: int, unit: str) -> str:
    return f"{number_to_words(count)} {unit}{'' if count == 1 else 'S'}"


def _money(match: re.Match) -> str:
    dollars = int(match.group(1).replace(",", ""))
    cents = int(match.group(2) or 0)
    spoken = _plural(dollars, "DOLLAR")
    if cents:
        spoken += " AND " + _plural(cents, "CENT")
    return f" {spoken} "


def _digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text)


def normalize_text(text: str) -> str:
    """Normalise ``text`` as described in this module's docstring."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    for quote, straight in _QUOTES.items():
        text = text.replace(quote, straight)
    text = text.upper()
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _MONEY_RE.sub(_money, text)
    text = _ORDINAL_RE.sub(lambda m: " " + _ordinal(number_to_words(int(m.group(1)))) + " ", text)
    text = _DECIMAL_RE.sub(lambda m: f" {number_to_words(int(m.group(1)))} POINT {_digits(m.group(2))} ", text)
    text = _GROUPED_RE.sub(lambda m: " " + number_to_words(int(m.group(0).replace(",", ""))) + " ", text)
    text = _INTEGER_RE.sub(lambda m: " " + number_to_words(int(m.group(0))) + " ", text)
    text = _NOT_ALLOWED_RE.sub(" ", text)
    text = _EDGE_APOSTROPHE_RE.sub(" ", text)
    return _SPACES_RE.sub(" ", text).strip()
