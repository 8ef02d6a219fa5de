"""The recipe's language model and its decoder comparison.

- :func:`build_recipe_lm`: a KenLM 3-gram from the modern English text and the Gutenberg books
  in ``../shared/data/text`` and the training transcripts (never from an evaluation set, nor
  from the validation speakers' or prompts' text its weights are tuned on), with its lexicon;
  singleton trigrams pruned and the binary a quantised trie, so that it ships with the bundled
  models.
- :func:`tune_lm_weights`: LM weight and word score chosen by WER on the validation speakers
  (held out of the training set), not on a test set.
- :func:`compare_decoders`: WER, CER and real-time factor of greedy, beam and beam+LM on each
  evaluation set, as a Markdown table.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import torch

from asr.api import Model
from asr.audio import load_audio
from asr.evaluate import evaluate
from asr.files import write_text_atomic
from asr.lm.build import LMFiles, build_lm
from asr.manifest import read_manifest
from asr.metrics import error_rates
from asr.text import normalize_text
from recipes.english.synthesize import join_contractions

logger = logging.getLogger(__name__)

LM_ORDER = 3
# Singleton trigrams pruned, singleton bigrams kept: 13.1 MB and 32.84% pooled validation WER with
# the default model of 2026-12-07 (beam 64, best of a 12-point grid), against 7.2 MB and 33.33% with
# singleton bigrams pruned too and 21.8 MB (over the size budget) unpruned; a 4-gram gained nothing
# (README.md, "LM pruning").
LM_PRUNE = (0, 0, 1)
# Beam 64 against 16 is worth 2.3 points of validation WER with the LM for 1.6 times the search
# (128: 3.0 points for 5 times); see README.md, LM.
BEAM_SIZE = 64
# 24 points around the tunings' bests (LM weight 1.0 to 2.0, word score -1.0 to 0.0; lower word
# scores lost, README.md, LM; 2.5 and 3.0 since the third default cycle's best was 2.0, the edge of
# the grid before); the pooled validation set is an hour of audio.
LM_WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
WORD_SCORES = (-1.0, 0.0, 1.0)
TUNING_BATCH = 32  # utterances a network pass while tuning


def build_recipe_lm(
    data_root: Path,
    data_dir: Path,
    transcripts: list[Path],
    exclude: tuple[str, ...] = (),
    order: int = LM_ORDER,
    prune: tuple[int, ...] | None = LM_PRUNE,
) -> LMFiles:
    """A pruned, compact LM and lexicon in ``data_dir/lm`` from the modern text (less the files
    named in ``exclude``), the books and ``transcripts``; ``order`` and ``prune`` (lmplz count
    thresholds per order) default to the recipe's.

    The modern text and the transcripts are normalised here, a line at a time, by the project's
    normaliser (digits spelled out, tokenised contractions joined), into ``data_dir/lm_text``.
    """
    text_dir = data_dir / "lm_text"
    text_dir.mkdir(parents=True, exist_ok=True)
    lines = [normalize_text(u.text) for manifest in transcripts for u in read_manifest(manifest)]
    write_text_atomic(text_dir / "transcripts.txt", "".join(line + "\n" for line in lines if line))
    sources = [text_dir / "transcripts.txt"]
    for path in sorted((data_root / "text" / "modern").glob("*.txt")):
        if path.name in exclude:
            continue
        raw = path.read_text(encoding="utf-8", errors="replace").splitlines()
        normalised = (normalize_text(join_contractions(line)) for line in raw)
        write_text_atomic(text_dir / path.name, "".join(line + "\n" for line in normalised if line))
        sources.append(text_dir / path.name)
    books = sorted((data_root / "text" / "gutenberg").glob("*.txt"))
    logger.info("LM text: %d modern files, %d books, %d transcripts", len(sources) - 1, len(books), len(lines))
    return build_lm([*books, *sources], data_dir / "lm", order=order, prune=prune, compact=True)


def tune_lm_weights(
    model: Model,
    valid_manifest: Path,
    lm: Path,
    out: Path,
    lm_weights: tuple[float, ...] = LM_WEIGHTS,
    word_scores: tuple[float, ...] = WORD_SCORES,
) -> dict:
    """Grid-search LM weight and word score (``lm_weights`` by ``word_scores``, the recipe's grid
    by default) by validation WER; the grid and its best are written to ``out``.

    The network runs once over the validation set; each grid point is a beam search over the
    same ``(T, V)`` log-probabilities (about a third of an evaluation's time)."""
    utterances = read_manifest(valid_manifest)
    refs = [normalize_text(utt.text) for utt in utterances]
    log_probs: list[torch.Tensor] = []
    for first in range(0, len(utterances), TUNING_BATCH):
        group = utterances[first : first + TUNING_BATCH]
        log_probs += model.log_probs_batch([load_audio(u.audio, model.sample_rate, model.min_samples) for u in group])
    results = []
    for lm_weight, word_score in itertools.product(lm_weights, word_scores):
        decoder = model.decoder(decoder="beam", beam_size=BEAM_SIZE, lm=lm, lm_weight=lm_weight, word_score=word_score)
        hyps = [decoder.decode(lp)[0].text for lp in log_probs]
        wer = error_rates(refs, hyps).wer
        results.append({"lm_weight": lm_weight, "word_score": word_score, "wer": wer})
        logger.info("lm_weight %.2f word_score %.1f: valid WER %.2f%%", lm_weight, word_score, 100 * wer)
    best = min(results, key=lambda r: r["wer"])
    write_text_atomic(out, json.dumps({"best": best, "grid": results, "beam_size": BEAM_SIZE}, indent=2) + "\n")
    return best


def decoder_settings(lm: Path, tuned: dict) -> dict[str, dict]:
    """Greedy, and beam search with the LM at its tuned weights. Lexicon-free beam search without
    an LM is left out: it gave greedy's WER on every set of both bundled models' tables (README.md,
    2026-12-01 and 2026-12-02) for 4 to 20 times greedy's time."""
    return {
        "greedy": {"decoder": "greedy"},
        f"beam {BEAM_SIZE} + 3-gram LM": {
            "decoder": "beam", "beam_size": BEAM_SIZE, "lm": lm,
            "lm_weight": tuned["lm_weight"], "word_score": tuned["word_score"],
        },
    }  # fmt: skip


def compare_decoders(model: Model, manifests: dict[str, Path], settings: dict[str, dict], report_dir: Path) -> str:
    """Evaluate every decoder setting on every manifest (one thread); returns a Markdown table."""
    torch.set_num_threads(1)
    rows = ["| set | decoder | WER % | CER % | RTF (1 thread) |", "|---|---|---|---|---|"]
    for (set_name, manifest), (decoder_name, options) in itertools.product(manifests.items(), settings.items()):
        slug = f"{set_name}-{decoder_name}".replace(" ", "_").replace("+", "plus")
        summary = evaluate(model, manifest, report_dir=report_dir / slug, progress=False, **options)
        rtf = summary["decode_seconds"] / summary["audio_seconds"]
        rows.append(
            f"| {set_name} | {decoder_name} | {100 * summary['wer']:.2f} | {100 * summary['cer']:.2f} | {rtf:.4f} |"
        )
        logger.info(rows[-1])
    table = "\n".join(rows) + "\n"
    write_text_atomic(report_dir / "results.md", table)
    return table
