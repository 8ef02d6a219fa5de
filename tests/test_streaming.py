"""Streams: any chunking gives the whole-file result; endpoints; finished streams refuse audio."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import asr
from asr.checkpoint import save_checkpoint
from asr.decoding.greedy import greedy_decode
from asr.errors import ConfigError
from asr.features import FeatureConfig, FeatureExtractor, LogMel, StatsAccumulator
from asr.network import CTCModel, ModelConfig
from asr.tokenizer import CharTokenizer
from asr.vad import blank_silence
from streaming import EndpointConfig, Recognizer, RecognizerConfig, StreamFinishedError

# float32 weights: streams then give the whole-file result bit for bit, however the audio is cut.
FLOAT32 = RecognizerConfig(quantize=None)
# How far int8 streams may stray from the float32 whole-file text (CER): int8 scales activations per call.
MAX_INT8_CER = 0.1


@pytest.fixture
def streaming_model(tmp_path, speechlike):
    """A small random unidirectional model that emits blank on about half of the frames of
    ``speechlike``, so that words and pauses both occur."""
    return random_streaming_model(tmp_path, speechlike, CharTokenizer())


def random_streaming_model(tmp_path, speechlike, tokenizer, cell="lstm"):
    """:func:`streaming_model` with the output units of ``tokenizer`` (and recurrent ``cell``)."""
    config = ModelConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_layers=2, bidirectional=False, cell=cell)
    features = FeatureConfig()
    stats = StatsAccumulator(features.n_mels)
    stats.add(LogMel(features)(torch.from_numpy(speechlike)))
    normalizer = stats.result()
    torch.manual_seed(0)
    network = CTCModel(config).eval()
    with torch.no_grad():
        network.head.weight *= 6.0  # sharper, input-dependent choices
        feats = FeatureExtractor(features, normalizer)(speechlike).unsqueeze(0)
        log_probs, _, _ = network(feats, torch.tensor([feats.shape[1]]))
        others = log_probs[0, :, 1:].max(dim=-1).values
        network.head.bias[tokenizer.blank_id] += (others - log_probs[0, :, 0]).median()
    path = save_checkpoint(tmp_path / "uni", network, features, normalizer, tokenizer, {})
    return asr.load_model(path)


def feed_in_random_chunks(recognizer, audio, seed):
    rng = np.random.default_rng(seed)
    stream = recognizer.create_stream()
    position = 0
    while position < len(audio):
        size = int(rng.integers(0, 4000))
        stream.accept_waveform(audio[position : position + size])
        position += size
    return stream.finish()


def test_any_chunking_gives_the_whole_file_result(streaming_model, speechlike):
    recognizer = Recognizer(streaming_model, RecognizerConfig(quantize=None, endpoint=EndpointConfig(enabled=False)))
    whole = greedy_decode(streaming_model.log_probs(speechlike), streaming_model.tokenizer)
    assert whole.text  # the random model does emit something
    for seed in range(5):
        transcript = feed_in_random_chunks(recognizer, speechlike, seed)
        assert transcript.text == whole.text
        assert [w.word for w in transcript.words] == [w.word for w in whole.words]


def test_a_gru_model_streams_from_its_checkpoint_like_the_whole_file(tmp_path, speechlike):
    gru = random_streaming_model(tmp_path, speechlike, CharTokenizer(), cell="gru")
    assert gru.checkpoint.model.config.cell == "gru"  # the checkpoint says which cell
    recognizer = Recognizer(gru, RecognizerConfig(quantize=None, endpoint=EndpointConfig(enabled=False)))
    whole = greedy_decode(gru.log_probs(speechlike), gru.tokenizer)
    assert whole.text
    for seed in range(3):
        assert feed_in_random_chunks(recognizer, speechlike, seed).text == whole.text


def test_endpoints_cut_segments_the_same_way_for_any_chunking(streaming_model, speechlike):
    config = RecognizerConfig(quantize=None, endpoint=EndpointConfig(silence_after_speech=0.12, max_segment=0.8))
    recognizer = Recognizer(streaming_model, config)
    audio = np.concatenate([speechlike, np.zeros(8000, dtype=np.float32), speechlike])
    results = [feed_in_random_chunks(recognizer, audio, seed) for seed in range(3)]
    assert len(results[0].segments) > 2
    for other in results[1:]:
        assert other.segments == results[0].segments
    whole = greedy_decode(streaming_model.log_probs(audio), streaming_model.tokenizer)
    assert results[0].text.replace(" ", "") == whole.text.replace(" ", "")
    ends = [s.end for s in results[0].segments]
    assert ends == sorted(ends) and all(s.end - s.start <= 0.8 + 1e-6 for s in results[0].segments)


def test_partial_grows_and_committed_prefix_never_changes(streaming_model, speechlike):
    recognizer = Recognizer(streaming_model, RecognizerConfig(quantize=None, endpoint=EndpointConfig(enabled=False)))
    stream = recognizer.create_stream()
    shown, grew = "", 0
    for start in range(0, len(speechlike), 1600):
        stream.accept_waveform(speechlike[start : start + 1600])
        assert stream.committed.startswith(shown)
        assert stream.partial.startswith(stream.committed)
        grew += stream.committed != shown
        shown = stream.committed
    assert grew >= 2
    assert stream.finish().text.startswith(shown)


def test_finished_stream_refuses_audio_until_reset(streaming_model, speechlike):
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(speechlike)
    first = stream.finish()
    with pytest.raises(StreamFinishedError):
        stream.accept_waveform(speechlike)
    stream.reset()
    stream.accept_waveform(speechlike)
    assert stream.finish() == first


def test_streams_are_independent(streaming_model, speechlike):
    recognizer = Recognizer(streaming_model)
    a, b = recognizer.create_stream(), recognizer.create_stream()
    for start in range(0, len(speechlike), 3200):
        a.accept_waveform(speechlike[start : start + 3200])
        b.accept_waveform(np.zeros(3200, dtype=np.float32))
    alone = recognizer.create_stream()
    alone.accept_waveform(speechlike)
    assert a.finish() == alone.finish()


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_finished_streams_hand_their_decoder_to_the_next(streaming_model, speechlike, decoder):
    recognizer = Recognizer(streaming_model, RecognizerConfig(decoder=decoder))
    first = recognizer.create_stream()
    used = first.decoder
    first.accept_waveform(speechlike)
    text = first.finish().text
    assert first.partial == "" and first.committed == ""
    again = recognizer.create_stream()
    assert again.decoder is used  # reset, not rebuilt
    busy = recognizer.create_stream()
    assert busy.decoder is not used  # a decoder in use is never shared
    busy.accept_waveform(speechlike[: len(speechlike) // 2])
    again.accept_waveform(speechlike)
    assert again.finish().text == text
    busy.reset()  # mid-session: its half-heard segment goes, and a reset decoder comes
    busy.accept_waveform(speechlike)
    assert busy.finish().text == text


def test_bidirectional_model_is_refused(tiny_checkpoint):
    with pytest.raises(ConfigError, match="unidirectional"):
        Recognizer(asr.load_model(tiny_checkpoint))


def test_conv_front_end_model_is_refused(tmp_path):
    config = ModelConfig(hidden_size=16, num_layers=1, bidirectional=False, frontend="conv2d", conv_channels=4)
    features = FeatureConfig()
    normalizer = StatsAccumulator(features.n_mels)
    normalizer.add(torch.randn(50, features.n_mels))
    path = save_checkpoint(tmp_path / "conv", CTCModel(config), features, normalizer.result(), CharTokenizer(), {})
    with pytest.raises(ConfigError, match="conv2d front end"):
        Recognizer(asr.load_model(path))


def test_beam_streaming_matches_offline_beam(streaming_model, speechlike):
    config = RecognizerConfig(decoder="beam", endpoint=EndpointConfig(enabled=False), quantize=None)
    recognizer = Recognizer(streaming_model, config)
    offline = streaming_model.transcribe(speechlike, decoder="beam").text
    for seed in range(3):
        assert feed_in_random_chunks(recognizer, speechlike, seed).text == offline


def test_dictate_replays_a_file_through_the_live_path(streaming_model, speechlike, tmp_path, capsys):
    import soundfile

    from asr.cli.main import main

    audio = np.concatenate([speechlike, np.zeros(16000, dtype=np.float32), speechlike])
    wav = tmp_path / "talk.wav"
    soundfile.write(wav, np.stack([audio, audio], axis=1), 16000)  # stereo: mixed down on the way
    model_dir = str(streaming_model.name)
    out = tmp_path / "dictated.txt"
    out.write_text("earlier line\n")
    assert main(["dictate", "--model", model_dir, "--input", str(wav), "--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(audio)
    expected = [s.text for s in stream.finish().segments]
    assert printed == expected and expected
    assert out.read_text().splitlines() == ["earlier line", *expected]  # appended, nothing lost


def test_a_device_lost_mid_dictation_keeps_what_was_heard(streaming_model, speechlike, tmp_path):
    """A stand-in for the device (the real one is lost in tests/test_dictate_device.py): blocks of
    speech, then the DeviceError that :class:`streaming.audio_source.Microphone` raises."""
    from streaming.audio_source import DeviceError
    from streaming.dictate import Display, dictate

    audio = np.concatenate([speechlike, np.zeros(16000, dtype=np.float32), speechlike])

    def source():
        for start in range(0, len(audio), 1600):
            yield audio[start : start + 1600]
        raise DeviceError("capture device 'test' stopped delivering audio")

    out = tmp_path / "dictated.txt"
    report = dictate(Recognizer(streaming_model), source(), 16000, Display(io.StringIO(), live=False), out)
    assert report.device_error == "capture device 'test' stopped delivering audio"
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(audio)
    expected = [s.text for s in stream.finish().segments]
    assert [s.text for s in report.transcript.segments] == expected and expected
    assert out.read_text().splitlines() == expected  # the segment under way was flushed too


def test_dictate_at_another_rate_is_resampled(streaming_model, speechlike, tmp_path, capsys):
    import soundfile
    import torchaudio

    from asr.cli.main import main

    wav = tmp_path / "talk48k.wav"
    soundfile.write(wav, torchaudio.functional.resample(torch.from_numpy(speechlike), 16000, 48000).numpy(), 48000)
    assert main(["dictate", "--model", str(streaming_model.name), "--input", str(wav)]) == 0
    dictated = " ".join(capsys.readouterr().out.split())
    stream = Recognizer(streaming_model).create_stream()
    stream.accept_waveform(asr.audio.load_audio(wav))  # the whole file resampled at once
    assert dictated == stream.finish().text


def test_streaming_imports_without_sounddevice():
    import subprocess
    import sys

    code = "import sys, asr, streaming, asr.cli.main; assert 'sounddevice' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_portaudio_names_the_package(monkeypatch):
    import builtins

    from streaming.audio_source import DeviceError, import_sounddevice

    real_import = builtins.__import__

    def no_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(DeviceError, match="apt-get install libportaudio2"):
        import_sounddevice()


def test_streaming_bench_measures_chunks_latency_and_memory(streaming_model, speechlike):
    from asr.bench.streaming import bench_streaming, memory_growth

    recognizer = Recognizer(streaming_model)
    result = bench_streaming(recognizer, [speechlike, speechlike])
    assert result.chunks == 2 * 20
    assert 0 < result.chunk_p50_ms <= result.chunk_p95_ms
    assert result.words > 0 and result.latency_p50_ms >= -1000 * 0.05  # a word is not committed before it ends
    assert result.labelled_words == 0 and "hand-labelled" not in result.report()

    # Labels at the model's own word ends: the labelled latency is the same measurement.
    from asr.bench.latency import ReferenceWord

    words = recognizer.create_stream()
    words.accept_waveform(speechlike)
    streamed = words.finish()
    labels = tuple(ReferenceWord(w.word, w.end) for w in streamed.words)
    labelled = bench_streaming(
        recognizer, [speechlike, speechlike], references=[labels, None], texts=[streamed.text, "NOT THIS"]
    )
    assert labelled.labelled_words == len(labels) == labelled.words // 2
    assert "hand-labelled" in labelled.report()
    assert 0 < labelled.wer < 1 and result.wer is None  # right once, wrong once
    before, after = memory_growth(recognizer, speechlike, total_seconds=10)
    assert before > 0 and after > 0


def test_streaming_bench_times_int8_live_streams_against_float32(streaming_model, speechlike):
    from asr.bench.streaming import bench_precisions

    whole = greedy_decode(streaming_model.log_probs(speechlike), streaming_model.tokenizer).text
    int8, fp32 = bench_precisions(streaming_model, [speechlike], repeats=2, texts=[whole])
    assert int8.chunks == fp32.chunks == 20
    assert 0 < int8.chunk_p95_ms and 0 < fp32.chunk_p95_ms
    assert fp32.wer == 0  # float32 streams give the whole-file result
    assert int8.cer < MAX_INT8_CER  # int8 streams stay close to it


def test_silence_is_blank_for_any_chunking_and_speech_after_it_is_kept(streaming_model, speechlike):
    from asr.vad import EnergyVadConfig, LiveAudibility

    recognizer = Recognizer(streaming_model, RecognizerConfig(quantize=None, endpoint=EndpointConfig(enabled=False)))
    silence = np.zeros(3 * 16000, np.float32)
    audio = np.concatenate([silence, speechlike, silence])
    log_probs = streaming_model.log_probs(audio)  # (T', V): what the model makes of it, unjudged
    live = LiveAudibility(16000, streaming_model.network.config.stack_frames)
    live.accept(audio)
    keep = live.keep(0, log_probs.shape[0])
    margin = round(EnergyVadConfig().speech_margin_seconds / 0.04)  # output frames of 40 ms
    assert not keep[:70].any() and keep[80 : 120 + margin].all() and not keep[-30:].any()
    expected = greedy_decode(
        blank_silence(log_probs, keep, streaming_model.tokenizer.blank_id), streaming_model.tokenizer
    )
    assert expected.text == greedy_decode(log_probs[75:-30], streaming_model.tokenizer).text  # speech kept whole
    assert greedy_decode(log_probs, streaming_model.tokenizer).text != expected.text  # it emits in silence
    for seed in range(3):
        assert feed_in_random_chunks(recognizer, audio, seed).text == expected.text


def test_live_streams_run_int8_by_default_alike_for_any_chunking_and_close_to_float(streaming_model, speechlike):
    from asr.metrics import error_rates

    int8 = Recognizer(streaming_model)
    assert int8.config.quantize == "int8"
    assert isinstance(int8.network.forward_layers[0], torch.ao.nn.quantized.dynamic.LSTM)
    assert Recognizer(streaming_model).network is int8.network  # quantized once per model
    assert Recognizer(streaming_model, FLOAT32).network is streaming_model.network  # float32 untouched
    assert not isinstance(streaming_model.network.forward_layers[0], torch.ao.nn.quantized.dynamic.LSTM)
    whole = greedy_decode(streaming_model.log_probs(speechlike), streaming_model.tokenizer).text
    at_once = int8.create_stream()
    at_once.accept_waveform(speechlike)
    streamed = at_once.finish()
    assert error_rates([whole], [streamed.text]).cer < MAX_INT8_CER
    for seed in range(3):  # one stack per call: any chunking gives what the whole audio at once gives
        assert feed_in_random_chunks(int8, speechlike, seed) == streamed


@pytest.mark.parametrize(
    ("flags", "expected"), [([], "int8"), (["--quantize", "int8"], "int8"), (["--quantize", "none"], None)]
)
def test_dictate_streams_int8_unless_told_none(streaming_model, flags, expected):
    from asr.cli.live import recognizer_from_args
    from asr.cli.main import build_parser

    args = build_parser().parse_args(["dictate", "--model", str(streaming_model.name), *flags])
    recognizer = recognizer_from_args(args)
    quantized = isinstance(recognizer.network.forward_layers[0], torch.ao.nn.quantized.dynamic.LSTM)
    assert quantized == (expected == "int8")
    assert recognizer.model.quantize == (None if flags != ["--quantize", "int8"] else "int8")
