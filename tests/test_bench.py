"""``asr bench``: its figures, their references and goals, and the JSON report.

Speeds themselves are never asserted here (a shared machine makes timed tests flaky); these
tests check that each figure measures what it says, against the reference it names.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import asr
from asr.bench.compute import ForwardShapes, bench_features, bench_forward, librosa_log_mel, lstm_flops
from asr.bench.report import SECTIONS, Figure, figures_table
from asr.cli.main import main
from asr.errors import ConfigError
from asr.features import FeatureConfig, LogMel
from asr.manifest import Utterance


def test_librosa_reference_computes_the_same_features(speechlike):
    config = FeatureConfig()
    ours = LogMel(config)(torch.from_numpy(speechlike)).numpy()
    theirs = librosa_log_mel(speechlike, config)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-2  # natural-log units; float32 rounding only


def test_lstm_flops_count_gates_of_every_layer_and_direction():
    shapes = ForwardShapes(batch=2, frames=10, input_size=8, hidden_size=4, num_layers=2, bidirectional=True)
    layer0 = 2 * 4 * 4 * (8 + 4)  # two directions, four gates, input and recurrent products
    layer1 = 2 * 4 * 4 * (2 * 4 + 4)
    head = 2 * 4 * 5
    assert lstm_flops(shapes, vocab_size=5) == 2 * (layer0 + layer1 + head) * 10 * 2


def test_figures_check_the_ratio_or_the_value_against_their_bounds():
    faster = Figure("compute", "x", 90.0, "frames/s", "bare", 100.0, floor=0.8)
    assert faster.ratio == pytest.approx(0.9) and faster.meets_bounds
    slower = Figure("compute", "x", 70.0, "frames/s", "bare", 100.0, floor=0.8)
    assert slower.meets_bounds is False
    change = Figure("quantization", "WER change", 4.0, "% relative", ceiling=3.0)
    assert change.ratio is None and change.meets_bounds is False
    assert Figure("streaming", "p50", 10.0, "ms").meets_bounds is None
    table = figures_table([faster, slower, change])
    assert "| 0.90 | ≥ 0.8 met |" in table and "| 0.70 | ≥ 0.8 **not met** |" in table
    assert "≤ 3 **not met**" in table


def test_forward_figures_time_the_model_against_the_bare_stack(tiny_checkpoint):
    model = asr.load_model(tiny_checkpoint)
    forward, arithmetic = bench_forward(model.network, input_frames=400, repeats=1)
    assert forward.reference == "bare torch.nn.LSTM stack" and forward.value > 0 and forward.reference_value > 0
    assert "batch 1 × 100 frames" in forward.note  # 400 feature frames stacked by 4
    assert arithmetic.unit == "GFLOP/s" and 0 < arithmetic.value and arithmetic.reference_value > 0


def test_feature_figure_counts_seconds_of_audio(speechlike):
    (figure,) = bench_features(speechlike, FeatureConfig(), repeats=1)
    assert figure.unit == "x real time" and figure.floor == 1.0 and "2 s of audio" in figure.note


def test_quantized_model_agrees_with_the_float_one_and_unknown_kinds_are_refused(tiny_checkpoint, speechlike):
    model = asr.load_model(tiny_checkpoint)
    quantized = asr.load_model(tiny_checkpoint, quantize="int8")
    assert isinstance(quantized.network.forward_layers[0], torch.ao.nn.quantized.dynamic.LSTM)
    assert not isinstance(model.network.forward_layers[0], torch.ao.nn.quantized.dynamic.LSTM)
    ours, theirs = model.log_probs(speechlike), quantized.log_probs(speechlike)
    assert ours.shape == theirs.shape
    assert (ours.argmax(-1) == theirs.argmax(-1)).float().mean() > 0.9
    with pytest.raises(ConfigError, match="'int4'"):
        asr.load_model(tiny_checkpoint, quantize="int4")


def test_a_gru_model_quantizes_its_gru_layers():
    from asr.network import CTCModel, ModelConfig
    from asr.quantize import quantize_network

    torch.manual_seed(0)
    network = CTCModel(ModelConfig(hidden_size=32, num_layers=2, cell="gru")).eval()
    quantized = quantize_network(network, "int8")
    assert isinstance(quantized.forward_layers[0], torch.ao.nn.quantized.dynamic.GRU)
    features, lengths = torch.randn(1, 200, 80), torch.tensor([200])
    ours, theirs = network(features, lengths)[0], quantized(features, lengths)[0]
    assert (ours.argmax(-1) == theirs.argmax(-1)).float().mean() > 0.9


def test_cli_writes_every_figure_of_the_chosen_sections_to_json(tiny_checkpoint, write_audio, speechlike, tmp_path):
    audio = write_audio("talk.flac", speechlike)
    report = tmp_path / "bench.json"
    args = ["bench", str(audio), "--model", str(tiny_checkpoint), "--sections", "offline,compute,features"]
    assert main([*args, "--repeats", "1", "--json", str(report)]) == 0
    document = json.loads(report.read_text())
    assert document["context"]["sections"] == ["offline", "compute", "features"]
    assert document["context"]["speed_files"] == [str(audio)]
    sections = {f["section"] for f in document["figures"]}
    assert sections == {"offline", "compute", "features"}
    greedy = next(f for f in document["figures"] if f["name"] == "transcribe, greedy, file by file, 1 thread")
    assert greedy["floor"] == 100.0 and greedy["value"] > 0


def test_a_section_that_stops_is_named_and_the_others_still_report(
    tiny_checkpoint, write_audio, speechlike, tmp_path, monkeypatch, caplog
):
    from asr.bench import suite

    def stops(*_args):
        raise ConfigError("model.aux_phone_layer needs data.cmudict")

    monkeypatch.setitem(suite.SECTION_RUNNERS, "compute", stops)
    audio = write_audio("talk.flac", speechlike)
    report = tmp_path / "bench.json"
    args = ["bench", str(audio), "--model", str(tiny_checkpoint), "--sections", "compute,features"]
    assert main([*args, "--repeats", "1", "--json", str(report)]) == 1
    assert {f["section"] for f in json.loads(report.read_text())["figures"]} == {"features"}
    assert "section compute stopped: model.aux_phone_layer needs data.cmudict" in caplog.text


def test_unknown_section_is_named(capsys):
    assert main(["bench", "--sections", "offline,warp"]) != 0
    assert "warp" in capsys.readouterr().err


def test_all_sections_are_known():
    from asr.bench.suite import SECTION_RUNNERS

    assert tuple(SECTION_RUNNERS) == SECTIONS


def test_training_figures_run_for_a_bundled_model_with_a_phone_head(write_audio, speechlike, tmp_path):
    """The bundled default model trains with an auxiliary phone head but ships no CMU dictionary:
    its training step is timed without the head, with the rest of its shapes."""
    from asr.bench.training import bench_config, bench_training_step

    checkpoint = asr.load_model().checkpoint
    assert checkpoint.model.config.aux_phone_layer, "the bundled default model no longer has a phone head"
    audio = write_audio("talk.flac", speechlike)
    config = bench_config(checkpoint, [Utterance(audio, "hello there", f"u{i}") for i in range(2)], tmp_path)
    assert config.model.aux_phone_layer == 0
    assert (config.model.num_layers, config.model.hidden_size) == (
        checkpoint.model.config.num_layers,
        checkpoint.model.config.hidden_size,
    )
    (step,) = bench_training_step(config, steps=1)
    assert step.value > 0 and step.reference_value > 0


@pytest.mark.slow
def test_training_figures_run_real_steps_and_a_real_gloo_job(tiny_checkpoint, write_audio, speechlike, tmp_path):
    """One process, then two Gloo processes spawned as torchrun would, on real training steps."""
    from asr.bench.training import bench_config, bench_gloo, bench_training_step

    audio = write_audio("talk.flac", speechlike)
    utterances = [Utterance(audio, "hello there", f"u{i}") for i in range(4)]
    config = bench_config(asr.load_model(tiny_checkpoint).checkpoint, utterances, tmp_path / "bench")
    (step,) = bench_training_step(config, steps=2)
    assert step.reference == "bare LSTM forward+backward" and step.value > 0 and step.reference_value > 0
    (gloo,) = bench_gloo(config, steps=2)
    assert gloo.name == "2 Gloo processes" and gloo.value > 0 and gloo.reference_value > 0
