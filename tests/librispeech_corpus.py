"""A tiny corpus in the LibriSpeech layout, built from speechocean762 *training* recordings.

``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` beside
``<speaker>-<chapter>.trans.txt``, as the real corpus has them, so that every recipe stage can
run here. Each subset takes different speakers. Only the training half of speechocean762 is
used (its test half is for evaluation only), and nothing of it lands in the repository.
"""

from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import soundfile as sf

from asr.text import normalize_text

CHAPTER = 100


def _training_rows(shared_data: Path) -> dict[str, list[dict]]:
    """speechocean762 train rows grouped by speaker, in file order."""
    tsv = shared_data / "speechocean762" / "train.tsv"
    with open(tsv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_speaker: dict[str, list[dict]] = {}
    for row in rows:
        by_speaker.setdefault(row["speaker"], []).append(row)
    return by_speaker


def build_tiny_librispeech(shared_data: Path, root: Path, subsets: dict[str, tuple[int, int]]) -> Path:
    """Write ``root/LibriSpeech/<subset>`` for each ``subset: (speakers, utterances each)``.

    Returns:
        ``root / "LibriSpeech"``.
    """
    by_speaker = iter(sorted(_training_rows(shared_data).items()))
    corpus = root / "LibriSpeech"
    for speaker_number, (subset, (speakers, per_speaker)) in enumerate(subsets.items()):
        for index in range(speakers):
            _, rows = next(by_speaker)
            speaker = str(1000 + 10 * speaker_number + index)
            chapter_dir = corpus / subset / speaker / str(CHAPTER)
            chapter_dir.mkdir(parents=True)
            lines = []
            for number, row in enumerate(rows[:per_speaker]):
                utterance = f"{speaker}-{CHAPTER}-{number:04d}"
                audio, rate = sf.read(shared_data / "speechocean762" / row["path"], dtype="float32")
                sf.write(chapter_dir / f"{utterance}.flac", audio, rate)
                lines.append(f"{utterance} {normalize_text(row['transcript'])}\n")
            (chapter_dir / f"{speaker}-{CHAPTER}.trans.txt").write_text("".join(lines))
    return corpus


def tar_subset(corpus: Path, subset: str, archive: Path) -> Path:
    """``<subset>.tar.gz`` with members under ``LibriSpeech/<subset>/``, as openslr serves them."""
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(corpus / subset, arcname=f"LibriSpeech/{subset}")
    return archive
