"""Long audio: cut at quiet moments into bounded pieces; the result does not depend on the cutting."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from asr.audio import SAMPLE_RATE, load_audio
from asr.longform import SplitConfig, cut_points, pieces
from tests.test_formats import check_srt, check_vtt

SAMPLE = "asr/samples/sample.wav"


def bursts(seconds_on: float, seconds_off: float, count: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``count`` bursts of noise separated by silences: cut points belong in the silences."""
    rng = np.random.default_rng(0)
    on, off = int(seconds_on * rate), int(seconds_off * rate)
    parts = []
    for _ in range(count):
        parts += [0.3 * rng.standard_normal(on).astype(np.float32), np.zeros(off, dtype=np.float32)]
    return np.concatenate(parts)


def test_cuts_fall_in_silences_and_bound_the_piece_length():
    audio = bursts(2.3, 0.5, 20)  # 56 s
    config = SplitConfig(max_seconds=10.0)
    cuts = cut_points(audio, SAMPLE_RATE, config)
    bounds = [0, *cuts, len(audio)]
    assert all(b - a <= 10.0 * SAMPLE_RATE for a, b in zip(bounds, bounds[1:]))
    assert all(audio[c - 10 : c + 10].max() == 0 for c in cuts)


def test_short_audio_is_one_untouched_piece():
    whole = load_audio(SAMPLE)
    (piece,) = pieces(SAMPLE, SAMPLE_RATE, 400)
    assert piece.start == 0.0 and np.array_equal(piece.waveform, whole)


def test_long_file_is_read_in_pieces_at_the_model_rate(tmp_path):
    rate = 44_100
    mono = bursts(2.3, 0.5, 15, rate)  # 42 s
    path = tmp_path / "long.flac"
    soundfile.write(path, np.stack([mono, mono], axis=1), rate)
    config = SplitConfig(max_seconds=10.0)
    got = list(pieces(path, SAMPLE_RATE, 400, config))
    assert len(got) >= 5
    total = sum(p.waveform.size for p in got)
    assert abs(total - len(mono) * SAMPLE_RATE / rate) <= len(got)  # rounding per piece only
    for a, b in zip(got, got[1:]):
        assert b.start == pytest.approx(a.start + a.waveform.size / SAMPLE_RATE, abs=1e-3)
    assert all(p.waveform.size <= 10.0 * SAMPLE_RATE for p in got)


def test_pieces_are_stitched_with_their_own_times():
    import asr

    model = asr.load_model()
    speech = load_audio(SAMPLE)
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    three = np.concatenate([speech, gap, speech, gap, speech])
    # Room for one sample and one gap per piece, so the splitter cuts in the gaps.
    cut = model.transcribe(three, max_segment_seconds=(len(speech) + len(gap)) / SAMPLE_RATE, word_timestamps=True)
    assert len(cut.segments) == 3
    assert cut.text == " ".join(s.text for s in cut.segments)
    assert [w for s in cut.segments for w in s.words] == list(cut.words)
    for a, b in zip(cut.segments, cut.segments[1:]):
        assert a.end == b.start
    for segment in cut.segments:
        piece = three[round(segment.start * SAMPLE_RATE) : round(segment.end * SAMPLE_RATE)]
        alone = model.transcribe(piece, word_timestamps=True)
        assert alone.text == segment.text
        # Segment times are rounded to the millisecond, so the re-cut piece may sit on a frame
        # grid shifted by a fraction of a hop: allow one output frame.
        shifted = [w.start + segment.start for w in alone.words]
        assert shifted == pytest.approx([w.start for w in segment.words], abs=model.seconds_per_output_frame + 1e-3)
    assert cut.segments[-1].end == pytest.approx(cut.duration, abs=1e-3)


@pytest.mark.slow
def test_an_hour_of_audio_stays_within_two_gigabytes_and_gives_valid_subtitles(tmp_path):
    # One hour of 48 kHz stereo speech and silence, transcribed by the command line in a fresh
    # process whose peak memory is then read back.
    rate = 48_000
    path = tmp_path / "hour.wav"
    speech = load_audio(SAMPLE, rate)
    block = np.concatenate([speech, np.zeros(rate, dtype=np.float32)])
    repeats = int(3600 * rate / len(block)) + 1
    with soundfile.SoundFile(path, "w", rate, 2, subtype="PCM_16") as f:
        for _ in range(repeats):
            f.write(np.stack([block, block], axis=1))
    out_dir = tmp_path / "out"
    script = (
        "import json, resource, sys\n"
        "from asr.cli.main import main\n"
        "status = main(['transcribe', sys.argv[1], '--output-dir', sys.argv[2], '--output-format', 'all'])\n"
        "print(json.dumps({'status': status, 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(path), str(out_dir)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == 0
    assert result["peak_mb"] < 2048, result
    transcript = json.loads((out_dir / "hour.json").read_text())
    assert transcript["duration"] >= 3600
    assert len(transcript["segments"]) >= 3600 / 30
    assert len(transcript["text"].split()) > 5 * repeats  # every repeat of the sample was transcribed
    srt, vtt = (out_dir / "hour.srt").read_text(), (out_dir / "hour.vtt").read_text()
    # Cues last at most 7 s, so an hour of speech takes hundreds of them.
    assert check_srt(srt) == check_vtt(vtt) > 3600 / 7 / 2
    # The last cue is in the last repeat of the sample, past the end of the hour.
    last_timing = [line for line in srt.splitlines() if " --> " in line][-1]  # a cue's text may wrap
    hours, minutes, seconds = last_timing.split(" --> ")[1].split(":")
    last_end = int(hours) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))
    assert transcript["duration"] - len(block) / rate < last_end <= transcript["duration"] and last_end > 3600


def test_long_audio_is_cut_at_every_pause_into_pieces_no_longer_than_training_utterances(tmp_path):
    assert SplitConfig().max_seconds <= 20.0  # the longest training utterances
    audio = bursts(2.3, 0.5, 20)  # 56 s of "sentences" with pauses between them
    cuts = cut_points(audio, SAMPLE_RATE, SplitConfig())
    assert len(cuts) == 19  # one in each pause but the last, which ends the last piece
    assert all(audio[c - 10 : c + 10].max() == 0 for c in cuts)
    path = tmp_path / "long.wav"
    soundfile.write(path, audio, SAMPLE_RATE)
    starts = [round(p.start * SAMPLE_RATE) for p in pieces(path, SAMPLE_RATE, 400)]
    assert starts == [0, *cuts]  # read block by block, cut where the whole waveform is


def test_pauses_shorter_than_a_piece_minimum_are_not_cut():
    audio = bursts(0.5, 0.5, 50)  # 50 s: pauses every second
    config = SplitConfig()
    bounds = [0, *cut_points(audio, SAMPLE_RATE, config), len(audio)]
    lengths = np.diff(bounds) / SAMPLE_RATE
    assert all(lengths[:-1] >= config.min_seconds) and all(lengths <= config.max_seconds)


def test_audio_without_pauses_is_cut_at_its_quietest_moments():
    rng = np.random.default_rng(0)
    t = np.arange(45 * SAMPLE_RATE) / SAMPLE_RATE
    audio = ((0.2 + 0.1 * np.sin(2 * np.pi * t / 7)) * rng.standard_normal(t.size)).astype(np.float32)
    cuts = cut_points(audio, SAMPLE_RATE, SplitConfig())
    bounds = [0, *cuts, len(audio)]
    assert all(b - a <= 20 * SAMPLE_RATE for a, b in zip(bounds, bounds[1:]))
    # The envelope is lowest at 5.25 s + 7 s k: each cut is within a smoothing window of one.
    assert all(min(abs(c / SAMPLE_RATE - (5.25 + 7 * k)) for k in range(7)) < 0.5 for c in cuts)
