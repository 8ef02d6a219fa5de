#!/usr/bin/env python3
"""A copy of a manifest's audio played at another level, to measure how much a model's WER
depends on the recording level (timit_sample, for one, is about 10 dB quieter than every
training set).

Each utterance is scaled by ``--gain-db`` (clipped at full scale), or, with ``--rms-db``, to that
RMS level; the copies are written as FLAC under ``--out`` beside a manifest ``manifest.jsonl``.

Usage: python recipes/english/level_shift.py data/valid.jsonl --gain-db -10 --out data/valid_-10db
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from pathlib import Path

import numpy as np
import soundfile

from asr.audio import SAMPLE_RATE, load_audio
from asr.manifest import read_manifest, write_manifest

logger = logging.getLogger("level_shift")

# Below this RMS (-120 dB of full scale) audio is silence: no level to move it to.
SILENCE_RMS = 1e-6
MANIFEST_NAME = "manifest.jsonl"


def rms_db(audio: np.ndarray) -> float:
    """The RMS level of ``(T,)`` audio in dB of full scale."""
    return 20 * math.log10(max(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))), SILENCE_RMS))


def shifted(audio: np.ndarray, gain_db: float | None, target_rms_db: float | None) -> np.ndarray:
    """``(T,)`` audio scaled by ``gain_db``, or to ``target_rms_db``; clipped to [-1, 1]."""
    gain = gain_db if target_rms_db is None else target_rms_db - rms_db(audio)
    return np.clip(audio * 10 ** (gain / 20), -1.0, 1.0).astype(np.float32)


def write_shifted(manifest: Path, out: Path, gain_db: float | None = None, target_rms_db: float | None = None) -> Path:
    """Write ``manifest``'s audio scaled by ``gain_db`` (or to ``target_rms_db``) as FLAC under
    ``out``, beside ``out/manifest.jsonl``, which is returned."""
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for utt in read_manifest(manifest):
        audio = shifted(load_audio(utt.audio), gain_db, target_rms_db)
        path = out / (utt.id.replace("/", "_") + ".flac")
        soundfile.write(path, audio, SAMPLE_RATE)
        copies.append(dataclasses.replace(utt, audio=path.resolve()))
    write_manifest(out / MANIFEST_NAME, copies)
    logger.info("%d utterances written to %s", len(copies), out)
    return out / MANIFEST_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    level = parser.add_mutually_exclusive_group(required=True)
    level.add_argument("--gain-db", type=float, help="scale every utterance by this gain")
    level.add_argument("--rms-db", type=float, help="scale every utterance to this RMS level")
    parser.add_argument("--out", type=Path, required=True, help="folder for the copies and manifest.jsonl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    write_shifted(args.manifest, args.out, args.gain_db, args.rms_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
