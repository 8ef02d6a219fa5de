"""Many files through one model, in order, with short files batched: what ``asr transcribe``
runs over its arguments.

Files no longer than one long-audio piece are read whole and transcribed
:data:`FILES_PER_BATCH` at a time with :meth:`asr.api.Model.transcribe_batch`; longer files
are transcribed on their own (read block by block, their pieces batched). Results come back in
the order of the files, each a transcript or the error that stopped that file alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from asr.api import Model, TranscribeOptions, transcribe_options
from asr.audio import STDIN, audio_info, load_audio
from asr.errors import AudioError
from asr.transcript import Transcript

FILES_PER_BATCH = 16  # short files read and run together: about a minute of speech


def _is_short(path: str | os.PathLike, max_seconds: float) -> bool:
    """Whether the file is read whole and batched: it fits one piece, or it is standard input
    (read once, whole; its waveform is then cut like any long array), or its header cannot be
    read (reading then says why). A file of unknown length is long: it is read block by block."""
    if os.fspath(path) == STDIN:
        return True
    try:
        info = audio_info(path)
    except AudioError:
        return True
    return info.frames is not None and info.frames <= max_seconds * info.samplerate


def transcribe_files(
    model: Model,
    paths: Sequence[str | os.PathLike],
    progress: bool = False,
    options: TranscribeOptions | None = None,
    **keywords,
) -> Iterator[tuple[str | os.PathLike, Transcript | AudioError]]:
    """``(path, transcript or error)`` for each of ``paths``, in order; ``options`` and
    ``keywords`` are those of :meth:`asr.api.Model.transcribe`. A file that cannot be read gives
    its :class:`AudioError` and the others go on; a ConfigError (a bad option) stops the whole
    run, as it would every file."""
    options = transcribe_options(options, **keywords)
    batch: list[tuple[str | os.PathLike, np.ndarray]] = []
    for path in paths:
        if not _is_short(path, options.max_segment_seconds):
            yield from _run_batch(model, batch, options)
            try:
                yield path, model.transcribe(path, options, progress=progress)
            except AudioError as exc:
                yield path, exc
            continue
        try:
            waveform = load_audio(path, model.sample_rate, model.min_samples)
        except AudioError as exc:
            yield from _run_batch(model, batch, options)
            yield path, exc
            continue
        batch.append((path, waveform))
        if len(batch) == FILES_PER_BATCH:
            yield from _run_batch(model, batch, options)
    yield from _run_batch(model, batch, options)


def _run_batch(
    model: Model, batch: list[tuple[str | os.PathLike, np.ndarray]], options: TranscribeOptions
) -> Iterator[tuple[str | os.PathLike, Transcript | AudioError]]:
    """Transcribe the files read into ``batch`` together, and empty it; a waveform the model
    refused gives its error, as a file that could not be read does."""
    if batch:
        transcripts = model.transcribe_batch([w for _, w in batch], options=options)
        for (path, _), transcript in zip(batch, transcripts):
            yield path, AudioError(f"{path}: {transcript.error}") if transcript.error is not None else transcript
        batch.clear()
