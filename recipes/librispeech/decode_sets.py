"""Decoding dev and test sets with each configured decoder, and the results table.

``conf/decode.toml`` lists the decoders (``[[decoders]]`` tables: a name, greedy or beam, beam
size, and for beam search whether to use the recipe's language model with which weights). Per
test set and decoder, :func:`asr.evaluate.evaluate` writes ``recogs.jsonl`` (recognitions),
``errors.txt`` (aligned errors), ``wer-summary.txt`` and ``summary.json`` into
``<exp>/decode/<set>/<decoder>/``; the WERs are collected into ``<exp>/results.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from asr.api import Model
from asr.config import load_toml
from asr.decoding.beam import BeamConfig
from asr.decoding.registry import DEFAULT_DECODER, decoder_entry
from asr.errors import ConfigError
from asr.evaluate import evaluate
from asr.files import write_text_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecoderSetting:
    name: str
    decoder: str = DEFAULT_DECODER  # a name of asr.decoding.registry.DECODERS
    beam_size: int = BeamConfig.beam_size
    use_lm: bool = False  # beam search with the LM of stage 3, spelled by the lexicon in the model's units
    lm_weight: float = BeamConfig.lm_weight
    word_score: float = BeamConfig.word_score


@dataclass(frozen=True)
class DecodeConfig:
    decoders: tuple[DecoderSetting, ...] = (DecoderSetting("greedy"),)

    def __post_init__(self) -> None:
        names = [d.name for d in self.decoders]
        if len(set(names)) != len(names):
            raise ConfigError(f"decoder names must differ, got {names}")
        for setting in self.decoders:
            try:
                entry = decoder_entry(setting.decoder)
            except ConfigError as exc:
                raise ConfigError(f"decoder {setting.name!r}: {exc}") from exc
            if setting.use_lm and not entry.uses_beam:
                raise ConfigError(f"decoder {setting.name!r}: use_lm needs a beam decoder, not {setting.decoder!r}")


def load_decode_config(path: Path) -> DecodeConfig:
    return load_toml(DecodeConfig, path)


def transcribe_options(setting: DecoderSetting, lm: Path | None, lexicon: Path | None = None) -> dict | None:
    """Keywords for :meth:`Model.transcribe`, or None if the setting needs an LM there is not.

    ``lexicon`` spells the LM's words in the model's tokens (None: the one beside the LM)."""
    if not decoder_entry(setting.decoder).uses_beam:
        return {"decoder": setting.decoder}
    options = {"decoder": setting.decoder, "beam_size": setting.beam_size}
    if setting.use_lm:
        if lm is None:
            return None
        options.update(lm=lm, lexicon=lexicon, lm_weight=setting.lm_weight, word_score=setting.word_score)
    return options


def decode_sets(
    model: Model,
    manifests: dict[str, Path],
    config: DecodeConfig,
    lm: Path | None,
    exp_dir: Path,
    lexicon: Path | None = None,
) -> str:
    """Decode every set with every decoder; returns (and writes) the Markdown results table.

    ``lexicon`` goes with ``lm`` (None: the ``lexicon.txt`` beside it)."""
    rows = ["| set | decoder | WER % | CER % | utterances | RTF |", "|---|---|---|---|---|---|"]
    for set_name, manifest in manifests.items():
        for setting in config.decoders:
            options = transcribe_options(setting, lm, lexicon)
            if options is None:
                logger.warning("decoder %s needs the LM of stage 3, which is missing; skipped", setting.name)
                continue
            report = exp_dir / "decode" / set_name / setting.name
            summary = evaluate(model, manifest, report_dir=report, progress=False, **options)
            rtf = summary["decode_seconds"] / max(summary["audio_seconds"], 1e-9)
            rows.append(
                f"| {set_name} | {setting.name} | {100 * summary['wer']:.2f} | {100 * summary['cer']:.2f} "
                f"| {summary['utterances']} | {rtf:.4f} |"
            )
            logger.info("%s", rows[-1])
    table = "\n".join(rows) + "\n"
    write_text_atomic(exp_dir / "results.md", table)
    return table
