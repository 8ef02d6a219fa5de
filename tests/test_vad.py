import numpy as np

from asr.alignment import AlignedWord, start_at_speech
from asr.vad import EnergyVadConfig, voiced_frames

RATE = 16000


def tone_after_silence(silence_s: float, tone_s: float, noise: float = 1e-4) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(tone_s * RATE)) / RATE
    audio = np.concatenate([np.zeros(int(silence_s * RATE)), 0.3 * np.sin(2 * np.pi * 220 * t)])
    return (audio + noise * rng.standard_normal(audio.size)).astype(np.float32)


def test_vad_finds_where_the_pause_ends():
    voiced = voiced_frames(tone_after_silence(0.5, 0.5), RATE)
    assert voiced.shape == (1 + (RATE - 400) // 160,)
    onset = np.flatnonzero(voiced)[0] * 0.010
    assert 0.47 <= onset <= 0.50  # the first 25 ms frame that reaches into the tone
    assert voiced[60:].all() and not voiced[:45].any()


def test_vad_threshold_follows_the_recordings_level():
    quiet = tone_after_silence(0.5, 0.5)
    assert np.array_equal(voiced_frames(quiet, RATE), voiced_frames(quiet * 0.01, RATE))
    assert voiced_frames(np.zeros(100, np.float32), RATE).size == 0
    stricter = EnergyVadConfig(energy_threshold=30.0)
    assert not voiced_frames(quiet, RATE, stricter).any()


def test_words_after_a_pause_start_at_speech_and_joined_words_keep_their_boundary():
    words = [
        AlignedWord("A", 2.0, 5.0, 0.9),  # starts in a pause: voiced from output frame 3.5
        AlignedWord("B", 5.0, 8.0, 0.9),  # joined to A: keeps the shared boundary
        AlignedWord("C", 9.0, 10.0, 0.9),  # after a gap, but nothing voiced before its end
        AlignedWord("D", 11.1, 14.0, 0.9),  # already starts on speech
    ]
    voiced = np.zeros(60, dtype=bool)
    voiced[14:36] = True  # 10 ms VAD frames: output frames 3.5 to 9 at 40 ms
    voiced[44:56] = True  # output frames 11 to 14
    moved = start_at_speech(words, voiced, vad_frame=0.25)
    assert [w.start_frame for w in moved] == [3.5, 5.0, 9.0, 11.1]
    assert [w.end_frame for w in moved] == [w.end_frame for w in words]
