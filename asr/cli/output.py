"""Where ``asr transcribe`` puts each input's transcript: files in ``--output-dir``, or stdout.

In ``--output-dir`` each input gets ``<stem>.<format>`` (``stdin.<format>`` for ``-``); with ``--keep-folders`` under the
input's folder relative to the inputs' common parent (TIMIT's ``dr1/fcjf0/sa1.wav`` and
``dr2/faem0/sa1.wav`` become ``out/dr1/fcjf0/sa1.json`` and ``out/dr2/faem0/sa1.json``).

On stdout JSON is always JSON Lines, one object per input naming it in ``input``, so one input
and many are read the same way (``jq``, ``pandas.read_json(lines=True)``); the other formats
print as they are for one input, and several inputs are told apart in each format's own way
(:func:`asr.formats.render_named`). ``all`` prints five formats per input, which nothing can
read back from one stream: it needs ``--output-dir``.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from asr.cli.errors import make_output_dir
from asr.errors import ConfigError
from asr.files import write_text_atomic
from asr.formats import FORMATS, json_line, render, render_named
from asr.transcript import Transcript

OUTPUT_FORMATS = (*FORMATS, "all")
"""The choices of ``--output-format``: each format, or all of them (``--output-dir`` only)."""

STDIN_OUTPUT_NAME = "stdin"
"""The name of standard input's outputs in ``--output-dir`` (``stdin.json``), at its top."""


def _folders(paths: Sequence[str], keep_folders: bool) -> dict[str, Path]:
    """The folder, relative to the output directory, of each input's outputs."""
    if not keep_folders or not paths:
        return {p: Path() for p in paths}
    parents = {p: os.path.dirname(os.path.abspath(p)) for p in paths}
    common = os.path.commonpath(list(parents.values()))
    return {p: Path(os.path.relpath(parent, common)) for p, parent in parents.items()}


def output_names(paths: Sequence[str], keep_folders: bool = False) -> dict[str, str]:
    """The name each input's outputs get in ``--output-dir``, without the extension: its stem
    (``talk`` for ``talk.flac``), or its whole file name where two inputs of one folder share a
    stem (``talk.flac``, ``talk.wav``), so that no output overwrites another. With
    ``keep_folders`` the name starts with the input's folder relative to the inputs' common
    parent (``dr1/fcjf0/sa1``). One file given twice has one name.

    Raises:
        ConfigError: two inputs would share outputs (the same file name in different folders,
            without ``keep_folders``; another input named like standard input's ``stdin``).
    """
    from asr.audio_decode import STDIN

    if STDIN in paths:
        others = output_names([p for p in paths if p != STDIN], keep_folders)
        if STDIN_OUTPUT_NAME in others.values():
            raise ConfigError(
                f"standard input's outputs are named {STDIN_OUTPUT_NAME!r}, as another input's would be: "
                "rename that input or run them separately"
            )
        return {p: STDIN_OUTPUT_NAME if p == STDIN else others[p] for p in paths}
    unique = list(dict.fromkeys(os.path.normpath(os.path.abspath(p)) for p in paths))
    folders = _folders(unique, keep_folders)
    stems = Counter((folders[p], Path(p).stem) for p in unique)
    by_file = {
        p: (folders[p] / (Path(p).stem if stems[folders[p], Path(p).stem] == 1 else Path(p).name)).as_posix()
        for p in unique
    }
    clashes = [name for name, count in Counter(by_file.values()).items() if count > 1]
    if clashes:
        raise ConfigError(
            f"inputs in different folders share the file name {Path(clashes[0]).name!r}, so their outputs would "
            "overwrite each other in --output-dir: add --keep-folders to mirror the input folders under it, "
            "or run them separately"
        )
    return {p: by_file[os.path.normpath(os.path.abspath(p))] for p in paths}


class TranscriptWriter:
    """Writes each input's transcript as ``--output-format``, ``--output-dir`` and
    ``--keep-folders`` say (see the module docstring).

    Raises:
        ConfigError: a combination that cannot be written (``all`` or ``--keep-folders``
            without ``--output-dir``, inputs that would share outputs, an output directory that
            cannot be made); raised before any input is transcribed.
    """

    def __init__(
        self, paths: Sequence[str], fmt: str, output_dir: str | None = None, keep_folders: bool = False
    ) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}")
        if output_dir is None and fmt == "all":
            raise ConfigError(
                "--output-format all writes five files per input: give --output-dir, or one format to print"
            )
        if output_dir is None and keep_folders:
            raise ConfigError("--keep-folders mirrors the input folders under --output-dir: give --output-dir")
        self.formats = FORMATS if fmt == "all" else (fmt,)
        self.several = len(paths) > 1
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.names = output_names(paths, keep_folders) if self.output_dir is not None else {}
        self.printed = 0  # inputs printed to stdout so far
        if self.output_dir is not None:
            make_output_dir(self.output_dir)

    def write(self, path: str, transcript: Transcript) -> None:
        """Write the transcript of input ``path`` (one of the ``paths`` given)."""
        if self.output_dir is None:
            sys.stdout.write(self._printed_text(path, transcript))
            sys.stdout.flush()
            self.printed += 1
            return
        target = self.output_dir / self.names[path]
        make_output_dir(target.parent)
        for fmt in self.formats:
            write_text_atomic(target.parent / f"{target.name}.{fmt}", render(transcript, fmt))

    def _printed_text(self, path: str, transcript: Transcript) -> str:
        (fmt,) = self.formats
        if fmt == "json":
            return json_line(transcript, str(path))
        if not self.several:
            return render(transcript, fmt)
        return render_named(transcript, fmt, str(path), first=self.printed == 0)
