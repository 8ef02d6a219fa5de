"""Peer recognisers run beside ours in benchmarks, on the same audio.

pocketsphinx (CMU Sphinx, PyPI ``pocketsphinx``, a benchmark-only dependency) with the US
English acoustic model, dictionary and 3-gram LM bundled in its wheel, decoding each
utterance in one pass. Imported lazily: the toolkit never needs it.
"""

from __future__ import annotations

import logging

import numpy as np

from asr.errors import ASRError
from asr.text import normalize_text

logger = logging.getLogger(__name__)

PCM_SCALE = 32767  # float samples in [-1, 1] to 16-bit PCM


class PeerUnavailableError(ASRError):
    """A peer recogniser is not installed."""


class PocketSphinx:
    """pocketsphinx's default US English recogniser; :meth:`transcribe` gives normalised text."""

    name = "pocketsphinx"
    sample_rate = 16_000

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise PeerUnavailableError("pocketsphinx is not installed: pip install pocketsphinx") from exc
        self.decoder = Decoder(samprate=self.sample_rate, logfn="/dev/null")

    def transcribe(self, waveform: np.ndarray) -> str:
        """Normalised text of a ``(T,)`` float32 waveform at 16 kHz."""
        pcm = (np.clip(waveform, -1.0, 1.0) * PCM_SCALE).astype("<i2").tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        return normalize_text(hypothesis.hypstr) if hypothesis is not None else ""
