"""Stage 6 of the recipe: a trained checkpoint and its tuned LM copied into a bundled model's
folder (``asr/models/<name>``), with provenance that names no path of the training machine.

Bundled weights are stored as float16 (:data:`BUNDLE_STORAGE`): half the bytes of float32, so a
model and its LM fit the 40 MB budget with room for a deeper network, for WER within a
hundredth of a point or two of the float32 checkpoint's (README.md, "float16 storage")."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from asr.checkpoint import load_checkpoint, save_checkpoint
from asr.decoding.beam import LEXICON_NAME
from asr.files import write_text_atomic
from asr.lm.bundled import DECODING_FILE, LM_DIR, LM_FILE

logger = logging.getLogger("recipe")

BUNDLE_STORAGE = "float16"  # the precision of the bundled weights (asr.checkpoint.STORAGE_DTYPES)


def bundle_model(best_dir: Path, recipe: str, target: Path, recipe_dir: Path) -> None:
    """Copy the checkpoint in ``best_dir`` to ``target`` (a bundled model's folder), its
    provenance naming ``recipe`` and its paths made machine-independent."""
    best = load_checkpoint(best_dir)
    provenance = dict(best.provenance)
    provenance["recipe"] = recipe
    # The training config names paths on the machine that trained; keep only their file names.
    config = provenance.pop("train_config", {})
    provenance["train_config"] = {
        **config,
        "exp_dir": Path(config.get("exp_dir", "")).name,
        "init_from": recipe_relative(config.get("init_from", ""), recipe_dir),
        "data": {k: Path(v).name if k in DATA_PATHS else v for k, v in config.get("data", {}).items()},
    }
    save_checkpoint(
        target, best.model, best.features, best.normalizer, best.tokenizer, provenance, storage=BUNDLE_STORAGE
    )
    logger.info("bundled %s into %s (%s weights)", best_dir, target, BUNDLE_STORAGE)


# The training config's [data] entries that are paths on the machine that trained.
DATA_PATHS = ("train_manifest", "valid_manifest", "stats", "cmudict")


def recipe_relative(path: str, recipe_dir: Path) -> str:
    """``path`` relative to ``recipe_dir`` when it lies inside it (machine paths stay out of a
    shipped checkpoint), else as given."""
    if path and Path(path).is_relative_to(recipe_dir):
        return Path(path).relative_to(recipe_dir).as_posix()
    return path


def bundle_lm(lm_dir: Path, tuning: Path, target: Path) -> None:
    """Copy stage 4's LM into ``<target>/lm`` with the weights stage 5 tuned for the model."""
    tuned = json.loads(tuning.read_text())
    best = tuned["best"]
    out = target / LM_DIR
    out.mkdir(exist_ok=True)
    for name in (LM_FILE, LEXICON_NAME, "lm.json"):
        shutil.copyfile(lm_dir / name, out / name)
    decoding = {
        "lm_weight": best["lm_weight"], "word_score": best["word_score"],
        "tuned_on": f"validation WER {100 * best['wer']:.2f}% on the speakers held out of training "
        f"(recipe stage 5, beam {tuned.get('beam_size', 'size unrecorded')})",
    }  # fmt: skip
    write_text_atomic(out / DECODING_FILE, json.dumps(decoding, indent=2) + "\n")
    logger.info("bundled the LM into %s (LM weight %s, word score %s)", out, best["lm_weight"], best["word_score"])
