"""Scoring a model on a manifest: WER, CER and per-utterance reports.

The report folder gets, in the manner of icefall's decode scripts:

- ``recogs.jsonl``: one line per utterance, ``{"id", "ref", "hyp"}``;
- ``errors.txt``: every utterance's reference and hypothesis aligned word by word (jiwer);
- ``wer-summary.txt`` and ``summary.json``: the totals.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
from tqdm import tqdm

from asr.api import Model, load_model
from asr.audio import load_audio
from asr.decoding.registry import DEFAULT_DECODER
from asr.errors import AudioError
from asr.files import write_text_atomic
from asr.manifest import Utterance, read_manifest
from asr.metrics import error_rates
from asr.text import normalize_text

logger = logging.getLogger(__name__)

# Utterances read and transcribed together (Model.transcribe_batch batches their network passes).
FILES_PER_CALL = 64


def evaluate(
    model: str | os.PathLike | Model | None,
    manifest: str | os.PathLike,
    report_dir: str | os.PathLike | None = None,
    decoder: str = DEFAULT_DECODER,
    progress: bool = True,
    **decode_options,
) -> dict:
    """Transcribe every utterance of ``manifest`` and score it against its normalised text.

    ``decode_options`` are passed to :meth:`asr.api.Model.transcribe` (beam size, LM, ...).
    Utterances whose audio cannot be read are logged, listed under ``"failed"`` and left out
    of the scores.

    Returns:
        ``{"wer", "cer", "utterances", "words", "substitutions", "deletions", "insertions",
        "failed", "audio_seconds", "decode_seconds"}``.
    """
    if not isinstance(model, Model):
        model = load_model(model)
    utterances = read_manifest(manifest)
    scored = _Scored()
    bar = tqdm(total=len(utterances), desc="evaluate", disable=not progress, leave=False)
    for first in range(0, len(utterances), FILES_PER_CALL):
        group = utterances[first : first + FILES_PER_CALL]
        _transcribe_group(model, group, scored, decoder=decoder, **decode_options)
        bar.update(len(group))
    bar.close()
    if not scored.records:
        raise AudioError(f"{manifest}: no utterance could be transcribed")
    summary = _summary(model, manifest, decoder, decode_options, scored)
    if report_dir is not None:
        write_report(Path(report_dir), scored.records, summary)
    return summary


@dataclass
class _Scored:
    """What an evaluation has gathered so far."""

    records: list[dict] = field(default_factory=list)  # {"id", "ref", "hyp"} per transcribed utterance
    failed: list[dict] = field(default_factory=list)  # {"id", "error"} per unreadable one
    audio_seconds: float = 0.0
    decode_seconds: float = 0.0


def _transcribe_group(model: Model, group: Sequence[Utterance], scored: _Scored, **decode_options) -> None:
    """Read and transcribe ``group`` in one batch, adding to ``scored`` (unreadable audio is logged)."""
    start = time.perf_counter()
    readable, waveforms = [], []
    for utt in group:
        try:
            waveforms.append(load_audio(utt.audio, model.sample_rate, model.min_samples))
            readable.append(utt)
        except AudioError as exc:
            logger.error("%s: %s", utt.id, exc)
            scored.failed.append({"id": utt.id, "error": str(exc)})
    transcripts = model.transcribe_batch(waveforms, **decode_options) if waveforms else []
    scored.decode_seconds += time.perf_counter() - start
    for utt, transcript in zip(readable, transcripts):
        scored.audio_seconds += transcript.duration
        scored.records.append({"id": utt.id, "ref": normalize_text(utt.text), "hyp": transcript.text})


def _summary(model: Model, manifest: str | os.PathLike, decoder: str, decode_options: dict, scored: _Scored) -> dict:
    rates = error_rates([r["ref"] for r in scored.records], [r["hyp"] for r in scored.records])
    return {
        "model": model.name,
        "manifest": str(manifest),
        "decoder": decoder,
        "decode_options": {k: str(v) if isinstance(v, os.PathLike) else v for k, v in decode_options.items()},
        "wer": rates.wer,
        "cer": rates.cer,
        "utterances": len(scored.records),
        "words": rates.words,
        "substitutions": rates.substitutions,
        "deletions": rates.deletions,
        "insertions": rates.insertions,
        "failed": scored.failed,
        "audio_seconds": round(scored.audio_seconds, 3),
        "decode_seconds": round(scored.decode_seconds, 3),
    }


def write_report(report_dir: Path, records: list[dict], summary: dict) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report_dir / "recogs.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    blocks = []
    for record in records:
        if not record["ref"]:
            continue
        aligned = jiwer.visualize_alignment(jiwer.process_words(record["ref"], record["hyp"]), show_measures=False)
        # Drop jiwer's "=== SENTENCE 1 ===" header: the utterance id names the block instead.
        body = "\n".join(line for line in aligned.strip().splitlines() if not line.startswith("=== SENTENCE"))
        blocks.append(f"{record['id']}\n{body.strip()}\n\n")
    write_text_atomic(report_dir / "errors.txt", "".join(blocks))
    write_text_atomic(
        report_dir / "wer-summary.txt",
        f"%WER {100 * summary['wer']:.2f} [ {summary['substitutions']} sub, {summary['deletions']} del, "
        f"{summary['insertions']} ins / {summary['words']} words ]\n"
        f"%CER {100 * summary['cer']:.2f}\n"
        f"utterances {summary['utterances']}, failed {len(summary['failed'])}\n",
    )
    write_text_atomic(report_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
