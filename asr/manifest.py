"""JSON Lines manifests: one utterance per line, ``{"audio": PATH, "text": STR}``.

Optional keys: ``id``, ``duration`` (seconds), ``speaker``. A relative ``audio`` path is
relative to the manifest file's folder.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ManifestError
from asr.files import read_error_message, write_text_atomic


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
        ManifestError: the file is missing or unreadable, or a line is not UTF-8, or not a JSON
            object with non-empty string ``audio`` and string ``text`` (and, if given, a finite,
            non-negative number ``duration`` and a string ``speaker``); the message names the
            file and line.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise ManifestError(f"{path}: no such manifest")
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
    except OSError as exc:
        raise ManifestError(read_error_message(path, exc, "cannot read the manifest")) from exc
    utterances = []
    for number, raw in enumerate(lines, start=1):
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(read_error_message(where, exc)) from exc
        if line.strip():
            utterances.append(_utterance(line, path, number, where))
    return utterances


def _utterance(line: str, path: Path, number: int, where: str) -> Utterance:
    """The utterance of manifest line ``number`` (see :func:`read_manifest`)."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ManifestError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    audio, text = record.get("audio"), record.get("text")
    if not isinstance(audio, str) or not isinstance(text, str) or not audio or "\0" in audio:
        raise ManifestError(f"{where}: needs string fields 'audio' (a path) and 'text'")
    duration, speaker = record.get("duration"), record.get("speaker")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or not 0 <= duration < math.inf
    ):
        raise ManifestError(f"{where}: 'duration' must be a non-negative number of seconds, got {duration!r}")
    if speaker is not None and not isinstance(speaker, str):
        raise ManifestError(f"{where}: 'speaker' must be a string, got {speaker!r}")
    return Utterance(
        audio=(path.parent / audio) if not os.path.isabs(audio) else Path(audio),
        text=text,
        id=str(record.get("id", f"{path.stem}-{number}")),
        duration=float(duration) if duration is not None else None,
        speaker=speaker,
    )


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> None:
    """Write utterances atomically, with audio paths relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    write_text_atomic(path, "".join(utt.to_json(relative_to=base) + "\n" for utt in utterances))
