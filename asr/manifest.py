"""JSON Lines manifests: one utterance per line, ``{"audio": PATH, "text": STR}``.

Optional keys: ``id``, ``duration`` (seconds), ``speaker``. A relative ``audio`` path is
relative to the manifest file's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ManifestError
from asr.files import write_text_atomic


@dataclass(frozen=True)
class Utterance:
    audio: Path
    text: str
    id: str
    duration: float | None = None
    speaker: str | None = None

    def to_json(self, relative_to: Path | None = None) -> str:
        audio = self.audio
        if relative_to is not None:
            audio = Path(os.path.relpath(audio, relative_to))
        record = {"id": self.id, "audio": str(audio), "text": self.text}
        if self.duration is not None:
            record["duration"] = round(self.duration, 4)
        if self.speaker is not None:
            record["speaker"] = self.speaker
        return json.dumps(record, ensure_ascii=False)


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read every utterance of a manifest.

    Raises:
        ManifestError: the file is missing, or a line is not a JSON object with string
            ``audio`` and ``text``; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    utterances = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{where}: not valid JSON ({exc})") from exc
            if not isinstance(record, dict):
                raise ManifestError(f"{where}: expected a JSON object")
            audio, text = record.get("audio"), record.get("text")
            if not isinstance(audio, str) or not isinstance(text, str):
                raise ManifestError(f"{where}: needs string fields 'audio' and 'text'")
            duration = record.get("duration")
            utterances.append(
                Utterance(
                    audio=(path.parent / audio) if not os.path.isabs(audio) else Path(audio),
                    text=text,
                    id=str(record.get("id", f"{path.stem}-{number}")),
                    duration=float(duration) if duration is not None else None,
                    speaker=record.get("speaker"),
                )
            )
    return utterances


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> None:
    """Write utterances atomically, with audio paths relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    write_text_atomic(path, "".join(utt.to_json(relative_to=base) + "\n" for utt in utterances))
