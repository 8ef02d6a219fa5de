"""A model's own language model: what beam search uses when no ``--lm`` is named.

A checkpoint directory may carry a word LM in ``lm/``, as ``asr lm build`` writes it (``lm.bin``,
``lexicon.txt``, ``lm.json``), with ``lm/decoding.json`` holding the LM weight and word score
tuned for this model on its validation data::

    {"lm_weight": 1.5, "word_score": 0.0, "tuned_on": "5 validation speakers held out of training"}

The bundled models carry one each, so ``asr transcribe --decoder beam`` uses it with no further
flags; ``--no-lm`` (``use_lm=False``) turns it off.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from asr.decoding.beam import LEXICON_NAME
from asr.errors import CheckpointError

LM_DIR = "lm"
LM_FILE = "lm.bin"
DECODING_FILE = "decoding.json"


@dataclass(frozen=True)
class ModelLM:
    """A model's LM, its lexicon and the weights tuned for the model."""

    lm: Path
    lexicon: Path
    lm_weight: float
    word_score: float


def find_model_lm(model_dir: Path) -> ModelLM | None:
    """The LM in ``<model_dir>/lm``, or None if the model has none.

    Raises:
        CheckpointError: the LM directory is incomplete, or its ``decoding.json`` is unreadable
            or lacks finite weights.
    """
    directory = model_dir / LM_DIR
    if not directory.is_dir():
        return None
    lm, lexicon, decoding = directory / LM_FILE, directory / LEXICON_NAME, directory / DECODING_FILE
    for required in (lm, lexicon, decoding):
        if not required.is_file():
            raise CheckpointError(f"{directory}: the model's LM lacks {required.name}")
    try:
        weights = json.loads(decoding.read_text(encoding="utf-8"))
        lm_weight, word_score = float(weights["lm_weight"]), float(weights["word_score"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{decoding}: not a decoding file with lm_weight and word_score ({exc})") from exc
    if not (math.isfinite(lm_weight) and math.isfinite(word_score)):
        raise CheckpointError(f"{decoding}: lm_weight and word_score must be finite numbers")
    return ModelLM(lm, lexicon, lm_weight, word_score)
