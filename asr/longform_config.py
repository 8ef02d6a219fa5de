"""Where long audio is cut, apart from the cutting (:mod:`asr.longform`) so that reading the
settings (the command line's defaults and help) needs no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SplitConfig:
    """Where long audio is cut."""

    # Longest piece decoded at once: no training utterance is longer (speechocean762's longest
    # is 20.4 s, LibriSpeech's 17.3 s), and the model does worse on pieces longer than it saw in
    # training (on a 20-minute recording of read sentences, WER rose from 83.6% with 10 s pieces
    # to 90.0% with 60 s).
    max_seconds: float = 20.0
    # A run of unvoiced frames at least this long is a pause worth cutting at, once a piece
    # holds min_seconds (shorter pieces give the bidirectional model too little context). A
    # frame is unvoiced by Kaldi's rule with its threshold raised by 1 (log energy), which finds
    # more of the pauses between sentences in noisy recordings. Chosen on long recordings built
    # from 300 speechocean762/train, 250 kathleen and 80 librispeech_train utterances (train sets
    # only; tests/test_long_audio_wer.py builds them): WER within +1.3%, +0.9% and +0.3%
    # (relative) of the utterances one by one, against +5.4%, +1.0% and +0.6% at Kaldi's 5.0
    # and +13.6%, +1.4% and +1.3% cutting only at the quietest moment of 20 s windows.
    pause_seconds: float = 0.3
    min_seconds: float = 2.0
    pause_energy_threshold: float = 6.0
    # The cut is searched for in the last (1 - min_fraction) of each window.
    min_fraction: float = 0.5
    # Energy frames for finding quiet moments, and the smoothing over them.
    frame_seconds: float = 0.025
    hop_seconds: float = 0.010
    smooth_seconds: float = 0.2
