"""The bundled models and pocketsphinx side by side on the same evaluation sets, in one run.

Each system maps a ``(T,)`` float32 waveform at 16 kHz to normalised text:

- the bundled offline model (``default``), greedy, and beam search with its own LM;
- the bundled streaming model (``streaming``) fed 100 ms chunks through a live
  :class:`streaming.Stream` (endpointing included, as ``asr dictate`` runs it), greedy and beam
  search with its own LM;
- pocketsphinx's default US English recogniser (:mod:`asr.bench.peers`).

A model without its own LM (``<model>/lm``) gets no "+ LM" row rather than a row that silently
decodes without one. Every system sees the same waveforms; :func:`asr.bench.speed.compare_systems`
times each and scores it. ``asr bench --peers`` prints the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from asr.api import Model, load_model
from asr.bench.speed import SystemScore, compare_systems

logger = logging.getLogger(__name__)

Transcribe = Callable[[np.ndarray], str]


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set: its name, ``(T,)`` waveforms at 16 kHz and normalised transcripts."""

    name: str
    waveforms: tuple[np.ndarray, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class SetScore:
    """One system on one set."""

    set_name: str
    score: SystemScore


def _with_lm(label: str, model: Model, greedy: Transcribe, beam: Transcribe) -> list[tuple[str, Transcribe]]:
    """The greedy system, and the beam one if the model has its own LM."""
    if model.lm is None:
        logger.warning("%s has no LM of its own: no beam + LM row", label)
        return [(f"{label}, greedy", greedy)]
    return [(f"{label}, greedy", greedy), (f"{label}, beam + LM", beam)]


def offline_systems(model: Model, label: str) -> list[tuple[str, Transcribe]]:
    """Greedy, and beam search with the model's own LM if it has one."""
    return _with_lm(
        label, model, lambda w: model.transcribe(w).text, lambda w: model.transcribe(w, decoder="beam").text
    )


def streamed(model: Model, decoder: str) -> Transcribe:
    """Transcribe by feeding 100 ms chunks through a live stream of ``model`` (unidirectional)."""
    from asr.bench.streaming import CHUNK_SECONDS
    from streaming.stream import Recognizer, RecognizerConfig

    config = RecognizerConfig(decoder, model.beam_config()) if decoder == "beam" else RecognizerConfig()
    recognizer = Recognizer(model, config)
    chunk = int(CHUNK_SECONDS * recognizer.sample_rate)

    def transcribe(waveform: np.ndarray) -> str:
        stream = recognizer.create_stream()
        for start in range(0, len(waveform), chunk):
            stream.accept_waveform(waveform[start : start + chunk])
        return stream.finish().text

    return transcribe


def streaming_systems(model: Model, label: str) -> list[tuple[str, Transcribe]]:
    """The streamed text, greedy, and beam search with the model's own LM if it has one."""
    return _with_lm(f"{label}, streamed", model, streamed(model, "greedy"), streamed(model, "beam"))


def bundled_systems(with_peer: bool = True) -> list[tuple[str, Transcribe]]:
    """Every bundled model's systems, then pocketsphinx (raises PeerUnavailableError if absent)."""
    systems = offline_systems(load_model("default"), "default") + streaming_systems(
        load_model("streaming"), "streaming"
    )
    if with_peer:
        from asr.bench.peers import PocketSphinx

        peer = PocketSphinx()
        systems.append((peer.name, peer.transcribe))
    return systems


def side_by_side(
    systems: Sequence[tuple[str, Transcribe]], sets: Sequence[EvalSet], sample_rate: int, threads: int = 1
) -> list[SetScore]:
    """Every system on every set, set by set."""
    return [
        SetScore(s.name, score)
        for s in sets
        for score in compare_systems(systems, s.waveforms, s.texts, sample_rate, threads)
    ]


def side_by_side_table(scores: Sequence[SetScore]) -> str:
    """A Markdown table: set, system, WER, CER, real-time factor."""
    rows = ["| set | system | WER % | CER % | RTF |", "|---|---|---|---|---|"]
    rows += [
        f"| {s.set_name} | {s.score.name} | {100 * s.score.wer:.2f} | {100 * s.score.cer:.2f} | {s.score.rtf:.4f} |"
        for s in scores
    ]
    return "\n".join(rows)
