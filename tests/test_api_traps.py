"""What a new user of the Python API trips over (issue 19): the thread count, integer PCM,
batches with an unreadable file, text printed for silence, and the long-file progress bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import asr
from asr.api import DEFAULT_THREADS, torch_threads
from asr.audio import SAMPLE_RATE, load_audio
from asr.errors import AudioError, ConfigError
from streaming import Recognizer, RecognizerConfig

SAMPLE = "asr/samples/sample.wav"


@pytest.fixture(scope="module")
def model() -> asr.Model:
    return asr.load_model()


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    return load_audio(SAMPLE)


@pytest.fixture
def program_threads():
    """The program has set its own thread count (2), which the model must leave as it was."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def threads_seen(network: torch.nn.Module, monkeypatch) -> list[int]:
    """The thread counts torch had each time ``network`` ran."""
    seen: list[int] = []
    forward = network.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(*args, **kwargs)

    monkeypatch.setattr(network, "forward", spy)
    return seen


# --- threads --------------------------------------------------------------------------------


def test_a_model_computes_on_its_own_threads_and_restores_the_programs(program_threads, sample, monkeypatch):
    model = asr.load_model()
    assert model.threads == DEFAULT_THREADS == 1
    seen = threads_seen(model.network, monkeypatch)
    model.transcribe(sample)
    model.transcribe_batch([sample, sample])
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == program_threads  # the program's count, back after each call


def test_threads_none_leaves_the_programs_count_and_a_bad_count_is_refused(program_threads, sample, monkeypatch):
    model = asr.load_model(threads=None)
    seen = threads_seen(model.network, monkeypatch)
    model.transcribe(sample)
    assert set(seen) == {program_threads}
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="threads"):
            asr.load_model(threads=bad)
        with pytest.raises(ConfigError, match="threads"):
            RecognizerConfig(threads=bad)


def test_nested_and_overlapping_thread_blocks_restore_the_count_once(program_threads):
    with torch_threads(1):
        with torch_threads(3):  # the first block's count holds while it runs
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == program_threads


def test_streams_compute_on_the_recognizers_threads(program_threads, sample, monkeypatch):
    recognizer = Recognizer(asr.load_model("streaming"))
    assert recognizer.config.threads == 1
    seen = threads_seen(recognizer.network, monkeypatch)  # its int8 copy
    stream = recognizer.create_stream()
    for i in range(0, sample.size, 1600):
        stream.accept_waveform(sample[i : i + 1600])
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == program_threads


def network_threads_seen(monkeypatch) -> list[int]:
    """The thread counts torch had each time any model's network ran (spied on the class)."""
    from asr.network import CTCModel

    seen: list[int] = []
    forward = CTCModel.forward

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(CTCModel, "forward", spy)
    return seen


def test_the_cli_computes_on_the_threads_its_flag_gives(program_threads, monkeypatch, capsys):
    from asr.cli.main import main

    torch.set_num_threads(1)  # a count other than the flag's before the command runs
    seen = network_threads_seen(monkeypatch)
    assert main(["transcribe", "--threads", "2", SAMPLE]) == 0
    assert "HE " in capsys.readouterr().out
    assert seen and set(seen) == {2}


def test_dictate_streams_on_the_threads_its_flag_gives():
    from asr.cli.live import recognizer_from_args
    from asr.cli.main import build_parser

    args = build_parser().parse_args(["dictate", "--threads", "2", "--input", SAMPLE])
    assert recognizer_from_args(args).config.threads == 2


def test_benchmarks_time_the_threads_they_are_given(program_threads, sample, monkeypatch):
    from asr.bench.speed import bench_transcribe, compare_systems

    model = asr.load_model()  # its own setting: 1 thread
    seen = network_threads_seen(monkeypatch)
    torch.set_num_threads(1)
    bench_transcribe(model, [sample], threads=2)
    compare_systems([("default", lambda w: model.transcribe(w).text)], [sample], ["he"], SAMPLE_RATE, threads=2)
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == 1


# --- integer PCM ----------------------------------------------------------------------------


def pcm(waveform: np.ndarray, dtype) -> np.ndarray:
    """``waveform`` as integer PCM of ``dtype`` (uint8 centred on 128)."""
    if dtype == np.uint8:
        return np.clip(np.round(waveform * 128 + 128), 0, 255).astype(np.uint8)
    scale = 2.0 ** (np.iinfo(dtype).bits - 1)
    return np.clip(np.round(waveform * scale), -scale, scale - 1).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_integer_pcm_gives_the_text_of_its_float_samples(model, sample, dtype):
    expected = model.transcribe(sample).text
    assert expected
    assert model.transcribe(pcm(sample, dtype)).text == expected
    assert model.transcribe(torch.from_numpy(pcm(sample, dtype))).text == expected
    assert model.transcribe_batch([pcm(sample, dtype)])[0].text == expected


def test_unsigned_8_bit_pcm_is_centred(model, sample):
    coarse = pcm(sample, np.uint8)
    assert model.transcribe(coarse).text == model.transcribe((coarse.astype(np.float32) - 128) / 128).text


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int8, np.uint8])
def test_load_audio_scales_integer_pcm_arrays(sample, dtype):
    expected = pcm(sample, dtype).astype(np.float32)
    expected = (expected - 128) / 128 if dtype == np.uint8 else expected / 2.0 ** (np.iinfo(dtype).bits - 1)
    np.testing.assert_array_equal(load_audio(pcm(sample, dtype)), expected)
    stereo = np.stack([pcm(sample, dtype)] * 2, axis=1)  # (T, 2): scaled, then mixed down
    np.testing.assert_allclose(load_audio(stereo), expected, atol=1e-7)
    assert np.abs(load_audio(torch.from_numpy(pcm(sample, np.int16)))).max() <= 1.0
    with pytest.raises(AudioError, match="uint16"):
        load_audio(np.zeros(1600, dtype=np.uint16))


def test_integers_of_no_audio_meaning_are_refused_with_their_dtype(model, sample):
    with pytest.raises(AudioError, match="int64"):
        model.transcribe((sample * 32768).astype(np.int64))
    stream = Recognizer(asr.load_model("streaming")).create_stream()
    with pytest.raises(AudioError, match="uint16"):
        stream.accept_waveform(np.zeros(1600, dtype=np.uint16))


def test_a_stream_fed_int16_chunks_gives_the_text_of_float_chunks(sample):
    recognizer = Recognizer(asr.load_model("streaming"))
    texts = []
    for audio in (pcm(sample, np.int16), pcm(sample, np.int16).astype(np.float32) / 32768):
        stream = recognizer.create_stream()
        for i in range(0, audio.size, 1600):
            stream.accept_waveform(audio[i : i + 1600])
        texts.append(stream.finish().text)
    assert texts[0] and texts[0] == texts[1]


# --- batches with an unreadable file --------------------------------------------------------


def test_a_batch_goes_on_past_an_unreadable_file(model, sample, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    audios = [SAMPLE, tmp_path / "missing.flac", sample, broken, np.zeros(3, np.float32)]
    results = model.transcribe_batch(audios)
    alone = model.transcribe(sample)
    assert [r.text for r in results] == [alone.text, "", alone.text, "", ""]
    assert results[0].error is None and results[2].error is None
    assert "missing.flac" in results[1].error and "broken.wav" in results[3].error
    assert "shorter than one feature frame" in results[4].error
    assert results[1].to_dict()["error"] == results[1].error and "error" not in results[0].to_dict()
    with pytest.raises(AudioError, match="missing.flac"):  # one audio alone still raises
        model.transcribe(tmp_path / "missing.flac")


# --- silence --------------------------------------------------------------------------------


def silences() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    seconds = 3 * SAMPLE_RATE
    return {
        "digital silence": np.zeros(seconds, np.float32),
        "hiss at -80 dBFS": (1e-4 * rng.standard_normal(seconds)).astype(np.float32),
        "hiss at -60 dBFS": (1e-3 * rng.standard_normal(seconds)).astype(np.float32),
        "one LSB of int16": pcm(np.zeros(seconds, np.float32), np.int16)
        + rng.integers(-1, 2, seconds).astype(np.int16),
    }


@pytest.mark.parametrize("name", list(silences()))
@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_silence_gives_no_text_offline(model, name, decoder):
    result = model.transcribe(silences()[name], decoder=decoder, word_timestamps=True)
    assert result.text == "" and result.segments == () and result.duration == pytest.approx(3.0)


@pytest.mark.parametrize("name", list(silences()))
def test_silence_gives_no_text_live(name):
    stream = Recognizer(asr.load_model("streaming")).create_stream()
    audio = silences()[name]
    for i in range(0, audio.size, 1600):
        stream.accept_waveform(audio[i : i + 1600])
        assert stream.partial == ""
    assert stream.finish().text == "" and stream.finalized == ()


def test_speech_after_silence_keeps_its_text(model, sample, monkeypatch):
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    padded = np.concatenate([gap, sample, gap, sample])
    judged = model.transcribe(padded, word_timestamps=True)
    monkeypatch.setattr("asr.api.is_silent", lambda waveform, rate: False)
    assert judged.text.startswith("HE ") and judged == model.transcribe(padded, word_timestamps=True)


def test_a_silent_piece_of_a_long_recording_gives_no_segment(model, sample):
    silence = np.zeros(25 * SAMPLE_RATE, np.float32)  # longer than a piece: a piece of silence alone
    result = model.transcribe(np.concatenate([sample, silence, sample]))
    assert all(s.text for s in result.segments) and len(result.segments) == 2
    assert result.segments[1].start > 25


# --- progress -------------------------------------------------------------------------------


def test_the_progress_bar_counts_audio_seconds_out_of_the_total(model, sample, capsys):
    long = np.tile(sample, 12)  # 40 s: three pieces
    model.transcribe(long, progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    total = round(long.size / SAMPLE_RATE, 2)
    assert f"{total}/{total}" in bar and "s/s" in bar or f"{total}/{total} [" in bar, bar
    assert "piece" not in bar
