"""The stage runner and feature statistics every recipe shares (asr.train.recipe)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import soundfile
import torch

from asr.errors import AudioError
from asr.features import FeatureConfig, LogMel
from asr.manifest import Utterance
from asr.train.recipe import (
    Stage,
    add_stage_arguments,
    check_stage_range,
    compute_stats,
    marker_path,
    run_stages,
)


def recording_stages(calls: list[str], fail_at: int | None = None) -> list[Stage]:
    def step(number: int, name: str):
        def run(model: str | None = None) -> None:
            if number == fail_at:
                raise RuntimeError(f"stage {number} broke")
            calls.append(f"{number}{'-' + model if model else ''}")

        return run

    return [Stage(0, "prepare", step(0, "prepare")), Stage(1, "train", step(1, "train"), per_model=True),
            Stage(2, "report", step(2, "report"))]  # fmt: skip


def test_stages_run_in_order_once_per_model_and_a_rerun_skips_them(tmp_path):
    calls: list[str] = []
    ran = run_stages(recording_stages(calls), 0, 2, tmp_path, models=["a", "b"])
    assert calls == ["0", "1-a", "1-b", "2"]
    assert ran == ["0 prepare", "1 train-a", "1 train-b", "2 report"]
    assert marker_path(tmp_path, recording_stages([])[1], "b").exists()
    assert run_stages(recording_stages(calls), 0, 2, tmp_path, models=["a", "b"]) == []
    assert run_stages(recording_stages(calls), 1, 1, tmp_path, models=["a"], force=True) == ["1 train-a"]


def test_a_failed_stage_leaves_no_marker_and_runs_again(tmp_path):
    calls: list[str] = []
    with pytest.raises(RuntimeError, match="stage 1 broke"):
        run_stages(recording_stages(calls, fail_at=1), 0, 2, tmp_path, models=["a"])
    assert calls == ["0"]
    assert run_stages(recording_stages(calls), 0, 2, tmp_path, models=["a"]) == ["1 train-a", "2 report"]


def test_bad_ranges_and_missing_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="stage numbers 0-2"):
        run_stages(recording_stages([]), 0, 7, tmp_path)
    with pytest.raises(ValueError, match="per model"):
        run_stages(recording_stages([]), 1, 1, tmp_path)
    parser = argparse.ArgumentParser()
    add_stage_arguments(parser, recording_stages([]))
    args = parser.parse_args([])
    assert (args.stage, args.stop_stage, args.force) == (0, 2, False)


def test_a_stage_made_from_other_inputs_runs_again(tmp_path):
    calls: list[str] = []
    source = {"text": "train.jsonl sha256 aa"}
    stages = [
        Stage(0, "stats", lambda: calls.append("stats"), inputs=lambda: source["text"]),
        Stage(1, "train", lambda model: calls.append(f"train-{model}"), per_model=True, inputs=lambda model: model * 2),
    ]
    assert run_stages(stages, 0, 1, tmp_path, models=["a"]) == ["0 stats", "1 train-a"]
    assert marker_path(tmp_path, stages[0]).read_text() == "train.jsonl sha256 aa\n"
    assert marker_path(tmp_path, stages[1], "a").read_text() == "aa\n"
    assert run_stages(stages, 0, 1, tmp_path, models=["a"]) == []
    source["text"] = "train.jsonl sha256 bb"
    assert run_stages(stages, 0, 1, tmp_path, models=["a"]) == ["0 stats"]
    assert calls == ["stats", "train-a", "stats"]
    # A marker without inputs (every stage's before inputs existed) still counts for a stage without them.
    plain = Stage(2, "report", lambda: calls.append("report"))
    marker_path(tmp_path, plain).touch()
    assert run_stages([plain], 2, 2, tmp_path) == []


def test_the_inputs_are_taken_when_the_stage_comes(tmp_path):
    written = tmp_path / "train.jsonl"
    stages = [
        Stage(0, "prepare", lambda: written.write_text("one\n")),
        Stage(1, "stats", lambda: None, inputs=lambda: written.read_text().strip()),
    ]
    assert run_stages(stages, 0, 1, tmp_path) == ["0 prepare", "1 stats"]
    assert marker_path(tmp_path, stages[1]).read_text() == "one\n"


def test_a_stage_range_is_checked_before_anything_runs():
    stages = recording_stages([])
    check_stage_range(stages, 1, 2)
    for first, last in ((2, 1), (-1, 2), (0, 3)):
        with pytest.raises(ValueError, match="stage numbers 0-2, in order"):
            check_stage_range(stages, first, last)


def test_compute_stats_matches_the_features_of_the_audio(tmp_path, speechlike):
    good = tmp_path / "a.wav"
    soundfile.write(good, speechlike, 16000, subtype="FLOAT")  # exactly the samples
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    utterances = [Utterance(good, "A", "a"), Utterance(tmp_path / "broken.wav", "B", "b")]
    normalizer = compute_stats(utterances)
    feats = LogMel(FeatureConfig())(torch.from_numpy(speechlike)).numpy()
    np.testing.assert_allclose(normalizer.mean, feats.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(normalizer.std, feats.std(0), rtol=1e-3, atol=1e-3)
    with pytest.raises(AudioError, match="none of the 1"):
        compute_stats(utterances[1:])
