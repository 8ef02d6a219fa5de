"""The overfit-one-batch check on real speech: the model, loss and pipeline can learn at all."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import asr
from asr.audio import audio_duration
from asr.config import load_toml
from asr.manifest import Utterance
from asr.train.config import TrainConfig
from asr.train.overfit import overfit_one_batch


def real_utterances(shared_data, count: int) -> list[Utterance]:
    tsv = shared_data / "kathleen" / "train.tsv"
    with open(tsv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))[:count]
    return [
        Utterance(tsv.parent / r["path"], r["transcript"], r["path"], audio_duration(tsv.parent / r["path"]))
        for r in rows
    ]


@pytest.mark.parametrize("phones", [False, True])
def test_model_overfits_one_batch_of_real_speech(shared_data, tmp_path, phones):
    # The bundled model's feature statistics: those of real training speech.
    bundled = json.loads((Path(asr.__file__).parent / "models" / "default" / "model.json").read_text())
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps(bundled["normalizer"]))
    config_file = tmp_path / "c.toml"
    config_file.write_text(
        f'[data]\ntrain_manifest = "x"\nvalid_manifest = "x"\nstats = "{stats}"\n'
        f'cmudict = "{shared_data / "text" / "cmudict" / "cmudict.dict"}"\n'
        f"[model]\nhidden_size = 96\nnum_layers = 2\naux_phone_layer = {1 if phones else 0}\n"
    )
    config = load_toml(TrainConfig, config_file)
    result = overfit_one_batch(config, real_utterances(shared_data, 4), steps=150)
    assert result.utterances == 4
    assert result.losses[-1] < 0.05 * result.losses[0]
    assert result.cer < 0.05 and result.wer < 0.15
