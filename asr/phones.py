"""Phones as a second CTC target: the CMU Pronouncing Dictionary and a phone tokenizer.

Characters learn English spelling slowly from a few hours of speech; phones are what the audio
carries. Training can add a CTC loss over phones on an intermediate layer (see
:class:`asr.network.ModelConfig.aux_phone_layer`), which the character head above it then
builds on. The phone targets come from the dictionary (first pronunciation, stress removed);
an utterance with a word the dictionary lacks gets no phone target, and its phone loss is
masked out, so missing words never break training.

Token ids: the CTC blank is 0, the word delimiter ``|`` 1, then the 39 ARPAbet phones.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.errors import ConfigError

BLANK = "<blank>"
WORD_DELIMITER = "|"
PHONES = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH"
).split()
PHONE_TOKENS = (BLANK, WORD_DELIMITER, *PHONES)
_PHONE_INDEX = {token: i for i, token in enumerate(PHONE_TOKENS)}
_STRESS = re.compile(r"\d")
# Alternate pronunciations are listed as WORD(2), WORD(3), ...
_ALTERNATE = re.compile(r"\(\d+\)$")


def load_cmudict(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Upper-case word -> its first pronunciation, stress marks removed.

    Reads the ``cmudict.dict`` format: ``word PH1 PH2 ...`` a line, ``#`` comments after.

    Raises:
        ConfigError: the file cannot be read, or holds no entries.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pronouncing dictionary ({exc.strerror or exc})") from exc
    lexicon: dict[str, tuple[str, ...]] = {}
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        word = _ALTERNATE.sub("", fields[0]).upper()
        phones = tuple(_STRESS.sub("", p) for p in fields[1:])
        if word not in lexicon and all(p in PHONES for p in phones):
            lexicon[word] = phones
    if not lexicon:
        raise ConfigError(f"{path}: no pronunciations found (expected 'word PH1 PH2 ...' lines)")
    return lexicon


@functools.cache
def cached_cmudict(path: str) -> dict[str, tuple[str, ...]]:
    """:func:`load_cmudict`, read once per process."""
    return load_cmudict(path)


@dataclass(frozen=True)
class PhoneTargets:
    """Normalised transcripts to padded phone-id targets for CTC."""

    lexicon: dict[str, tuple[str, ...]]

    @property
    def vocab_size(self) -> int:
        return len(PHONE_TOKENS)

    def encode(self, text: str) -> list[int] | None:
        """Phone ids of ``text`` (normalised, upper case) with ``|`` between words, or None
        if a word is not in the dictionary."""
        ids: list[int] = []
        for n, word in enumerate(text.split()):
            phones = self.lexicon.get(word)
            if phones is None:
                return None
            if n:
                ids.append(_PHONE_INDEX[WORD_DELIMITER])
            ids.extend(_PHONE_INDEX[p] for p in phones)
        return ids or None

    def batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(targets (N, P), lengths (N,), known (N,) bool)`` for ``N`` texts; a text with a
        word outside the dictionary has length 0 and ``known`` False."""
        encoded = [self.encode(text) for text in texts]
        lengths = torch.tensor([len(ids) if ids else 0 for ids in encoded])
        targets = torch.zeros(len(texts), max(1, int(lengths.max()) if len(texts) else 1), dtype=torch.long)
        for row, ids in enumerate(encoded):
            if ids:
                targets[row, : len(ids)] = torch.tensor(ids)
        return targets, lengths, lengths > 0
