import numpy as np
import torch

from asr.alignment import AlignedWord, start_at_speech
from asr.vad import (
    EnergyVadConfig,
    LiveAudibility,
    audible_frames,
    blank_silence,
    is_silent,
    near_audible,
    voiced_frames,
)

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


def test_audible_frames_use_an_absolute_floor_that_the_relative_rule_lacks():
    rng = np.random.default_rng(0)
    hiss = (1e-3 * rng.standard_normal(RATE)).astype(np.float32)  # -60 dBFS, steady
    assert voiced_frames(hiss, RATE).all()  # Kaldi's rule: voiced against its own mean
    assert not audible_frames(hiss, RATE).any() and is_silent(hiss, RATE)
    assert not audible_frames(np.zeros(RATE, np.float32), RATE).any()
    quiet_tone = tone_after_silence(0.5, 0.5, noise=0.0) * 10 ** (-15 / 20)  # about -28 dBFS mean square
    audible = audible_frames(quiet_tone, RATE)
    assert not audible[:45].any() and audible[52:].all() and not is_silent(quiet_tone, RATE)
    # The floor is in dB of mean square: a frame at -44 dBFS is audible, one at -46 dBFS is not.
    square = np.ones(400, np.float32)
    assert audible_frames(square * 10 ** (-44 / 20), RATE).all()
    assert not audible_frames(square * 10 ** (-46 / 20), RATE).any()


def test_near_audible_by_hand():
    audible = np.zeros(40, dtype=bool)
    audible[20] = True  # frame 20: output frame 5 of a model stacking 4 frames
    both = near_audible(audible, stack=4, first=0, count=10, margin=4, causal=False)
    assert both.tolist() == [False, False, False, False, True, True, True, False, False, False]
    back = near_audible(audible, stack=4, first=0, count=10, margin=4, causal=True)
    assert back.tolist() == [False, False, False, False, False, True, True, False, False, False]
    # Frames kept from ``base`` on answer for the same output frames.
    assert np.array_equal(near_audible(audible[8:], 4, 3, 7, 4, True, base=8), back[3:])


def test_live_audibility_is_the_same_however_the_audio_is_cut():
    rng = np.random.default_rng(1)
    audio = np.concatenate([np.zeros(RATE, np.float32), tone_after_silence(0.3, 0.4), np.zeros(2 * RATE, np.float32)])
    count = (1 + (audio.size - 400) // 160) // 4  # whole output frames of the audio
    whole = near_audible(audible_frames(audio, RATE), 4, 0, count, 100, causal=True)
    live, kept, first = LiveAudibility(RATE, stack=4), [], 0
    bounds = np.sort(rng.integers(0, audio.size, 30))
    for a, b in zip([0, *bounds], [*bounds, audio.size]):
        live.accept(audio[a:b])
        ready = (live.base + live.flags.size) // 4 - first  # output frames whose audio is all in
        kept.append(live.keep(first, ready))
        first += ready
    assert first == count and np.array_equal(np.concatenate(kept), whole)
    assert whole.any() and not whole[:20].any() and not whole[-20:].any()  # over 1 s after the tone: silence again
    assert live.flags.size < 200  # only what later frames need is kept


def test_blank_silence_makes_dropped_frames_certain_blanks():
    log_probs = torch.log_softmax(torch.randn(5, 4), dim=-1)
    keep = np.array([True, False, True, False, False])
    out = blank_silence(log_probs, keep, blank_id=0)
    assert torch.equal(out[keep], log_probs[keep])
    assert (out[~keep].argmax(-1) == 0).all() and (out[~keep][:, 0] == 0).all()
    assert blank_silence(log_probs, np.ones(5, bool), 0) is log_probs
