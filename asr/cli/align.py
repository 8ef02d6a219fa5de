"""``asr align``: word times of a known transcript, by CTC forced alignment.

The forced aligner that ESPnet, NeMo and Kaldi offer: the model's output over the whole
recording, and the Viterbi path of the given words through it (:mod:`asr.alignment`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from asr.alignment import AlignmentError, timed_words
from asr.api import Model
from asr.audio import AudioInput, load_audio
from asr.errors import ASRError
from asr.files import write_text_atomic
from asr.formats import render
from asr.manifest import read_manifest
from asr.text import normalize_text
from asr.transcript import Segment, Transcript

logger = logging.getLogger(__name__)


def align_file(model: Model, audio: AudioInput, text: str) -> Transcript:
    """Align ``text`` (normalised here) to ``audio``; each word gets start, end and confidence.

    Raises:
        AudioError: the audio cannot be used.
        AlignmentError: the text is too long for the audio; the message names the audio file.
    """
    waveform = load_audio(audio, model.sample_rate, min_samples=model.min_samples)
    duration = waveform.size / model.sample_rate
    normalized = normalize_text(text)
    try:
        words = timed_words(
            model.log_probs(waveform),
            waveform,
            normalized,
            model.tokenizer,
            model.sample_rate,
            model.seconds_per_output_frame,
        )
    except AlignmentError as exc:
        if isinstance(audio, str | os.PathLike):
            raise AlignmentError(f"{audio}: {exc}") from exc
        raise
    segments = (Segment(normalized, 0.0, round(duration, 3), words),) if words else ()
    return Transcript(normalized, duration, words, segments)


def align_manifest(model: Model, manifest: str | os.PathLike, output_dir: Path) -> int:
    """Align every utterance of ``manifest`` into ``<output_dir>/<id>.json``; returns failures.

    An utterance that cannot be aligned is logged and skipped; the others are still written.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for utt in read_manifest(manifest):
        try:
            transcript = align_file(model, utt.audio, utt.text)
        except ASRError as exc:
            logger.error("%s: %s", utt.id, exc)
            failed += 1
            continue
        write_text_atomic(output_dir / f"{utt.id}.json", render(transcript, "json"))
    return failed
