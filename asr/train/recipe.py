"""What every recipe shares: numbered stages with done markers, and the feature statistics.

A recipe lists its :class:`Stage` objects and hands them to :func:`run_stages`, which runs
those from ``--stage`` to ``--stop-stage`` in order. Each finished stage leaves a marker file
``.stage-N-NAME.done`` (``.stage-N-NAME-MODEL.done`` for a stage run once per model) in the
recipe's data folder, and a re-run skips it unless ``force``; a stage that fails leaves no
marker, so the next run does it again (stages resume their own long work, such as training from
its last checkpoint). A stage that names its ``inputs`` (what its work is made from: a
manifest's digest, the subsets asked for) has them written into its marker, and a run whose
inputs differ redoes it instead of skipping it, so that work made from other data is never
silently reused. :func:`add_stage_arguments` gives the recipe's parser the flags.

:func:`compute_stats` is the global log-mel mean and standard deviation over a manifest, the
normalisation a model stores with its weights (see :mod:`asr.features`).
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.audio import load_audio
from asr.errors import AudioError
from asr.features import FeatureConfig, LogMel, Normalizer, StatsAccumulator
from asr.files import write_text_atomic
from asr.manifest import Utterance

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One numbered step of a recipe. ``run`` takes the model's name for a ``per_model`` stage
    and no argument otherwise; so does ``inputs``, if given, which describes what the stage's
    work is made from in one line, taken when the stage's turn comes (after the stages before it
    have run). The marker records that line; a marker with another one does not count as done.
    """

    number: int
    name: str
    run: Callable[..., None]
    per_model: bool = False
    inputs: Callable[..., str] | None = None


def marker_path(marker_dir: Path, stage: Stage, model: str | None = None) -> Path:
    """Where ``stage`` (for ``model``, if per model) records that it finished."""
    suffix = f"-{model}" if model else ""
    return marker_dir / f".stage-{stage.number}-{stage.name}{suffix}.done"


def run_stages(
    stages: Sequence[Stage],
    first: int,
    last: int,
    marker_dir: Path,
    models: Sequence[str] = (),
    force: bool = False,
) -> list[str]:
    """Run the stages numbered ``first`` to ``last`` in order, each per-model stage once for
    each of ``models``; returns what ran, as ``"N name[-model]"`` labels.

    Raises:
        ValueError: ``first`` or ``last`` names no stage, or a per-model stage has no models.
    """
    check_stage_range(stages, first, last)
    marker_dir.mkdir(parents=True, exist_ok=True)
    ran = []
    for stage in sorted(stages, key=lambda s: s.number):
        if not first <= stage.number <= last:
            continue
        if stage.per_model and not models:
            raise ValueError(f"stage {stage.number} ({stage.name}) runs per model, and no model was named")
        for model in models if stage.per_model else [None]:
            label = f"{stage.number} {stage.name}" + (f"-{model}" if model else "")
            marker = marker_path(marker_dir, stage, model)
            args = (model,) if stage.per_model else ()
            inputs = stage.inputs(*args) if stage.inputs else ""
            if not force and _is_done(marker, inputs, label):
                continue
            logger.info("stage %s", label)
            stage.run(*args)
            write_text_atomic(marker, f"{inputs}\n" if inputs else "")
            ran.append(label)
    return ran


def check_stage_range(stages: Sequence[Stage], first: int, last: int) -> None:
    """Refuse a ``--stage``/``--stop-stage`` pair before anything runs (a recipe's parser can
    report it as a usage error).

    Raises:
        ValueError: ``first`` or ``last`` names no stage, or ``first`` comes after ``last``.
    """
    numbers = {stage.number for stage in stages}
    if first not in numbers or last not in numbers or first > last:
        raise ValueError(f"--stage and --stop-stage must be stage numbers {min(numbers)}-{max(numbers)}, in order")


def _is_done(marker: Path, inputs: str, label: str) -> bool:
    """Whether ``marker`` says its stage finished, from these ``inputs``."""
    if not marker.is_file():
        return False
    if marker.read_text(encoding="utf-8").strip() != inputs:
        logger.info("stage %s was done from other inputs; redoing it", label)
        return False
    logger.info("stage %s already done; skipping", label)
    return True


def add_stage_arguments(parser: argparse.ArgumentParser, stages: Sequence[Stage]) -> None:
    """``--stage``, ``--stop-stage`` (default: all the stages) and ``--force``."""
    numbers = sorted(stage.number for stage in stages)
    parser.add_argument("--stage", type=int, default=numbers[0], help=f"first stage to run ({numbers[0]})")
    parser.add_argument("--stop-stage", type=int, default=numbers[-1], help=f"last stage to run ({numbers[-1]})")
    parser.add_argument("--force", action="store_true", help="rerun stages already marked done")


def compute_stats(
    utterances: Iterable[Utterance],
    config: FeatureConfig | None = None,
    max_utterances: int | None = None,
    seed: int = 0,
) -> Normalizer:
    """Global log-mel mean and std of ``(n_mels,)`` over ``utterances`` (a seeded sample of
    ``max_utterances`` of them, if given); unreadable audio is logged and left out.

    Raises:
        AudioError: none of the utterances could be read.
    """
    config = config or FeatureConfig()
    chosen = list(utterances)
    if max_utterances is not None and len(chosen) > max_utterances:
        chosen = random.Random(seed).sample(chosen, max_utterances)
    logmel = LogMel(config)
    stats = StatsAccumulator(config.n_mels)
    for utt in chosen:
        try:
            waveform = load_audio(utt.audio, config.sample_rate, min_samples=config.window_samples)
        except AudioError as exc:
            logger.warning("feature statistics: skipping %s: %s", utt.id, exc)
            continue
        stats.add(logmel(torch.from_numpy(waveform)))
    if stats.count == 0:
        raise AudioError(f"feature statistics: none of the {len(chosen)} utterances could be read")
    logger.info("feature statistics over %d utterances (%d frames)", len(chosen), stats.count)
    return stats.result()
