"""Batched transcription: the same transcripts as one file at a time, from fewer network passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import asr
from asr.audio import load_audio
from tests.test_bundled_model import read_tsv


@pytest.fixture(scope="module")
def model():
    return asr.load_model()


@pytest.fixture(scope="module")
def real_speech(shared_data, model) -> list[np.ndarray]:
    """Real recordings of different lengths: speechocean762 test and TIMIT."""
    utts = read_tsv(shared_data / "speechocean762", "test.tsv", every=50)
    utts += read_tsv(shared_data / "timit_sample", "test.tsv", every=40)
    return [load_audio(u.audio, model.sample_rate) for u in utts]


def test_batched_log_probs_equal_one_at_a_time(model, real_speech):
    batched = model.log_probs_batch(real_speech)
    for waveform, log_probs in zip(real_speech, batched):
        alone = model.log_probs(waveform)
        assert log_probs.shape == alone.shape
        torch.testing.assert_close(log_probs, alone, atol=1e-4, rtol=0)


def test_transcribe_batch_gives_what_transcribe_gives(model, real_speech):
    batched = model.transcribe_batch(real_speech, batch_seconds=20.0, word_timestamps=True)
    assert len(batched) == len(real_speech)
    for waveform, transcript in zip(real_speech, batched):
        alone = model.transcribe(waveform, word_timestamps=True)
        assert transcript.text == alone.text and transcript.duration == alone.duration
        assert [(w.word, w.start, w.end) for w in transcript.words] == [(w.word, w.start, w.end) for w in alone.words]


def test_long_audio_pieces_are_batched_and_put_back_in_order(model, real_speech):
    """Pieces of several recordings in one batch return to their own transcripts, in time order."""
    long = np.concatenate(real_speech[:6])
    audios = [real_speech[0], long, real_speech[1]]
    batched = model.transcribe_batch(audios, max_segment_seconds=5.0)
    singles = [model.transcribe(a, max_segment_seconds=5.0) for a in audios]
    assert [t.text for t in batched] == [t.text for t in singles]
    starts = [s.start for s in batched[1].segments]
    assert len(starts) > 1 and starts == sorted(starts)


def test_beam_options_and_unknown_options(model, real_speech):
    beam = model.transcribe_batch(real_speech[:3], decoder="beam", beam_size=4)
    assert [t.text for t in beam] == [model.transcribe(w, decoder="beam", beam_size=4).text for w in real_speech[:3]]
    with pytest.raises(TypeError, match="beam_sise"):
        model.transcribe_batch(real_speech[:1], beam_sise=4)


def test_an_unreadable_file_in_a_batch_is_named_and_the_others_transcribed(model, tmp_path, real_speech):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    good, failed = model.transcribe_batch([real_speech[0], bad])
    assert good.error is None and good.text == model.transcribe(real_speech[0]).text
    assert failed.text == "" and "bad.wav" in failed.error


def test_asr_transcribe_batches_short_files_and_keeps_their_order(model, real_speech, tmp_path, capsys):
    import soundfile

    from asr.cli.main import main

    paths = []
    for index, waveform in enumerate(real_speech[:5]):
        paths.append(tmp_path / f"short{index}.flac")
        soundfile.write(paths[-1], waveform, model.sample_rate)
    long = tmp_path / "long.flac"
    soundfile.write(long, np.concatenate(real_speech[:6]), model.sample_rate)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    order = [paths[0], paths[1], bad, paths[2], long, paths[3], paths[4]]
    args = ["transcribe", *map(str, order), "--max-segment-seconds", "10"]
    assert main(args) == 1
    captured = capsys.readouterr()
    expected = [f"{p}: {model.transcribe(p, max_segment_seconds=10.0).text}" for p in order if p != bad]
    assert captured.out.splitlines() == expected
    assert "bad.wav" in captured.err and "1 of 7 file(s) failed" in captured.err
