"""LibriSpeech layout to JSONL manifests.

``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` lists one utterance
per line, ``<speaker>-<chapter>-<utterance> TRANSCRIPT``, beside ``<utterance id>.flac``. Each
subset becomes ``<subset>.jsonl``: ``{"audio", "text", "id", "duration", "speaker"}`` with the
audio path relative to the manifest (:func:`asr.manifest.write_manifest` does that).
Transcripts are already upper case, letters, apostrophes and spaces; they are kept as they are.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import soundfile as sf

from asr.errors import ASRError
from asr.manifest import Utterance, write_manifest

logger = logging.getLogger(__name__)

# soundfile releases the GIL while reading headers; a few threads hide file-system latency.
HEADER_READERS = 8


class PrepareError(ASRError):
    """A subset folder is missing or holds nothing usable."""


def read_transcripts(subset_dir: Path) -> list[tuple[Path, str, str]]:
    """``(audio path, utterance id, transcript)`` of every line of every ``*.trans.txt``, sorted.

    Raises:
        PrepareError: a transcript line has no text after its id (names the file and line).
    """
    entries = []
    for trans in sorted(subset_dir.glob("*/*/*.trans.txt")):
        for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            utterance_id, _, text = line.strip().partition(" ")
            if not text.strip():
                raise PrepareError(f"{trans}:{number}: no transcript after {utterance_id!r}")
            entries.append((trans.parent / f"{utterance_id}.flac", utterance_id, " ".join(text.split())))
    return entries


def _duration(audio: Path) -> float | None:
    try:
        info = sf.info(str(audio))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        logger.warning("%s: unreadable, left out (%s)", audio, exc)
        return None
    return info.frames / info.samplerate


def prepare_subset(corpus_dir: Path, subset: str, manifest: Path) -> int:
    """Write the manifest of ``corpus_dir/<subset>``; returns the number of utterances.

    Utterances whose audio is missing or unreadable are logged and left out.

    Raises:
        PrepareError: the subset folder is missing or has no transcripts.
    """
    subset_dir = corpus_dir / subset
    if not subset_dir.is_dir():
        raise PrepareError(f"{subset_dir}: no such subset folder (download or extract {subset} first)")
    entries = read_transcripts(subset_dir)
    if not entries:
        raise PrepareError(f"{subset_dir}: no *.trans.txt files in <speaker>/<chapter>/ folders")
    with ThreadPoolExecutor(HEADER_READERS) as pool:
        durations = list(pool.map(_duration, [audio for audio, _, _ in entries]))
    utterances = [
        Utterance(audio.resolve(), text, utt_id, round(duration, 4), utt_id.split("-")[0])
        for (audio, utt_id, text), duration in zip(entries, durations)
        if duration is not None
    ]
    if len(utterances) < len(entries):
        logger.warning("%s: %d of %d utterances left out", subset, len(entries) - len(utterances), len(entries))
    manifest.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(manifest, utterances)
    hours = sum(u.duration for u in utterances) / 3600
    logger.info("%s: %d utterances, %.2f hours -> %s", subset, len(utterances), hours, manifest)
    return len(utterances)
