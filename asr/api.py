"""The user-facing model: audio in, :class:`Transcript` out.

>>> import asr
>>> model = asr.load_model()            # the bundled default model
>>> model.transcribe("speech.flac").text
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.alignment import align_words, start_at_speech
from asr.audio import AudioInput
from asr.beam import BeamConfig, BeamDecoder
from asr.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_dir
from asr.decoding import Hypothesis, greedy_decode
from asr.errors import CheckpointError, ConfigError
from asr.features import FeatureExtractor
from asr.longform import Piece, SplitConfig, pieces
from asr.model_lm import ModelLM, find_model_lm
from asr.quantize import check_quantization, quantize_network
from asr.transcript import Alternative, Segment, Transcript, Word
from asr.vad import EnergyVadConfig, voiced_frames

logger = logging.getLogger(__name__)

BUNDLED_MODELS = ("default", "streaming")
"""Models shipped inside the package, loadable by name."""

DECODERS = ("greedy", "beam")


@dataclass(frozen=True)
class BeamOptions:
    """The beam-search keywords of :meth:`Model.beam_config` and :meth:`Model.transcribe`, with
    their types and defaults, named once: both signatures take their defaults from here, and
    :meth:`Model.transcribe` passes them on by the names in :data:`BEAM_OPTIONS`.

    Left as ``None``, ``lm``, ``lexicon``, ``lm_weight`` and ``word_score`` come from the model's
    own LM (unless ``use_lm`` is False), or else from :class:`BeamConfig`'s defaults.
    """

    beam_size: int = BeamConfig.beam_size
    beam_threshold: float = BeamConfig.beam_threshold
    lm: str | os.PathLike | None = None
    lexicon: str | os.PathLike | None = None
    lm_weight: float | None = None
    word_score: float | None = None
    nbest: int = BeamConfig.nbest
    use_lm: bool = True


BEAM_OPTIONS = tuple(field.name for field in dataclasses.fields(BeamOptions))
"""The names of the beam-search keywords, in the order of the parameters that take them."""


def bundled_model_path(name: str = "default") -> Path:
    """Folder of a model shipped in the package."""
    if name not in BUNDLED_MODELS:
        raise CheckpointError(f"no bundled model named {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
    return Path(str(resources.files("asr") / "models" / name))


class Model:
    """A loaded checkpoint with its feature extractor, tokenizer and decoders."""

    def __init__(
        self, checkpoint: Checkpoint, name: str = "", directory: Path | None = None, quantize: str | None = None
    ) -> None:
        self.checkpoint = checkpoint
        self.name = name
        # The model's own LM (``<directory>/lm``), which beam search uses unless told otherwise.
        self.lm: ModelLM | None = find_model_lm(directory) if directory else None
        self.quantize = quantize  # None (float32) or an asr.quantize.QUANTIZATIONS kind
        network = checkpoint.model.eval()
        self.network = quantize_network(network, quantize) if quantize else network
        self.tokenizer = checkpoint.tokenizer
        self.extractor = FeatureExtractor(checkpoint.features, checkpoint.normalizer)
        self._beam_decoders: dict[BeamConfig, BeamDecoder] = {}

    @property
    def sample_rate(self) -> int:
        return self.checkpoint.features.sample_rate

    @property
    def seconds_per_output_frame(self) -> float:
        config = self.checkpoint.features
        return self.network.config.stack_frames * config.hop_samples / config.sample_rate

    def log_probs(self, waveform: np.ndarray) -> torch.Tensor:
        """``(T_samples,)`` waveform -> ``(T_out, vocab_size)`` log-probabilities."""
        feats = self.extractor(waveform).unsqueeze(0)  # (1, T, n_mels)
        with torch.inference_mode():
            log_probs, lengths, _ = self.network(feats, torch.tensor([feats.shape[1]]))
        return log_probs[0, : int(lengths[0])]

    def beam_decoder(self, config: BeamConfig) -> BeamDecoder:
        """A beam decoder for ``config``, built once (loading an LM takes a while) and reused."""
        if config not in self._beam_decoders:
            self._beam_decoders[config] = BeamDecoder(config, self.tokenizer)
        return self._beam_decoders[config]

    def decode(
        self, log_probs: torch.Tensor, decoder: str = "greedy", beam: BeamConfig | None = None
    ) -> list[Hypothesis]:
        """The hypotheses of ``(T, V)`` log-probabilities, best first (one for greedy)."""
        if decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
        if decoder == "greedy":
            return [greedy_decode(log_probs, self.tokenizer)]
        return self.beam_decoder(beam or self.beam_config()).decode(log_probs)

    def beam_config(
        self,
        beam_size: int = BeamOptions.beam_size,
        beam_threshold: float = BeamOptions.beam_threshold,
        lm: str | os.PathLike | None = BeamOptions.lm,
        lexicon: str | os.PathLike | None = BeamOptions.lexicon,
        lm_weight: float | None = BeamOptions.lm_weight,
        word_score: float | None = BeamOptions.word_score,
        nbest: int = BeamOptions.nbest,
        use_lm: bool = BeamOptions.use_lm,
    ) -> BeamConfig:
        """Beam settings: without ``lm`` (and unless ``use_lm`` is False), the model's own LM
        (:attr:`lm`) with the weights tuned for it; a weight given here overrides the tuned one.
        Without an LM at all, beam search is lexicon-free unless ``lexicon`` is given."""
        own = self.lm if (use_lm and lm is None and lexicon is None) else None
        if own is not None:
            lm, lexicon = own.lm, own.lexicon
            lm_weight = own.lm_weight if lm_weight is None else lm_weight
            word_score = own.word_score if word_score is None else word_score
        return BeamConfig(
            beam_size=beam_size, beam_threshold=beam_threshold, lm=str(lm) if lm and use_lm else None,
            lexicon=str(lexicon) if lexicon else None,
            lm_weight=BeamConfig.lm_weight if lm_weight is None else lm_weight,
            word_score=BeamConfig.word_score if word_score is None else word_score, nbest=nbest,
        )  # fmt: skip

    def transcribe(
        self,
        audio: AudioInput,
        decoder: str = "greedy",
        beam_size: int = BeamOptions.beam_size,
        beam_threshold: float = BeamOptions.beam_threshold,
        lm: str | os.PathLike | None = BeamOptions.lm,
        lexicon: str | os.PathLike | None = BeamOptions.lexicon,
        lm_weight: float | None = BeamOptions.lm_weight,
        word_score: float | None = BeamOptions.word_score,
        nbest: int = BeamOptions.nbest,
        use_lm: bool = BeamOptions.use_lm,
        word_timestamps: bool = False,
        max_segment_seconds: float = SplitConfig.max_seconds,
        progress: bool = False,
    ) -> Transcript:
        """Transcribe a file path or a ``(T,)`` float waveform at :attr:`sample_rate`.

        Audio longer than ``max_segment_seconds`` is cut at quiet moments and decoded piece by
        piece (see :mod:`asr.longform`); each piece becomes a segment of the transcript. The
        beam options apply with ``decoder="beam"`` (see :meth:`beam_config`: the model's own LM
        unless ``lm`` names another or ``use_lm`` is False).
        ``word_timestamps`` aligns the chosen hypothesis to the audio (CTC forced alignment)
        and gives each word its start, end and confidence.

        Raises:
            AudioError: the audio cannot be read or used; the message names the file.
            ConfigError: an unknown decoder, or an LM or lexicon that cannot be used.
        """
        beam = None
        if decoder == "beam":
            given = locals()  # the keywords as called: only BEAM_OPTIONS are read from it
            beam = self.beam_config(**{name: given[name] for name in BEAM_OPTIONS})
        elif decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
        split = SplitConfig(max_seconds=max_segment_seconds)
        min_samples = self.checkpoint.features.window_samples
        segments, duration = [], 0.0
        bar = tqdm(
            desc=str(audio) if isinstance(audio, str | os.PathLike) else "audio", unit="piece", disable=not progress
        )
        for piece in pieces(audio, self.sample_rate, min_samples, split):
            duration = piece.start + piece.waveform.size / self.sample_rate
            segment = self._transcribe_piece(piece, decoder, beam, word_timestamps)
            if segment.text:
                segments.append(segment)
            bar.update(1)
        bar.close()
        words = tuple(w for s in segments for w in s.words)
        text = " ".join(s.text for s in segments)
        return Transcript(text=text, duration=duration, words=words, segments=tuple(segments))

    def timed_words(self, log_probs: torch.Tensor, waveform: np.ndarray, text: str, offset: float) -> tuple[Word, ...]:
        """Words of ``text`` force-aligned to the ``(T, V)`` ``log_probs`` of ``(S,)`` audio
        starting at ``offset`` seconds: times in seconds, confidences in 0..1.

        A word after a pause starts where the audio's energy says the pause ends
        (:func:`asr.alignment.start_at_speech`)."""
        step = self.seconds_per_output_frame
        end = offset + waveform.size / self.sample_rate
        vad = EnergyVadConfig()
        words = start_at_speech(
            align_words(log_probs, text, self.tokenizer), voiced_frames(waveform, self.sample_rate, vad),
            vad.hop_seconds / step,
        )  # fmt: skip
        return tuple(
            Word(w.word, round(offset + w.start_frame * step, 3), round(min(end, offset + w.end_frame * step), 3),
                 round(w.confidence, 4))
            for w in words
        )  # fmt: skip

    def _transcribe_piece(self, piece: Piece, decoder: str, beam: BeamConfig | None, word_timestamps: bool) -> Segment:
        log_probs = self.log_probs(piece.waveform)
        hypotheses = self.decode(log_probs, decoder, beam)
        best = hypotheses[0]
        end = piece.start + piece.waveform.size / self.sample_rate
        words: tuple[Word, ...] = ()
        if word_timestamps and best.text:
            words = self.timed_words(log_probs, piece.waveform, best.text, piece.start)
        nbest = tuple(Alternative(h.text, round(h.score, 4)) for h in hypotheses) if len(hypotheses) > 1 else ()
        return Segment(best.text, round(piece.start, 3), round(end, 3), words, nbest)


def load_model(path: str | os.PathLike | None = None, quantize: str | None = None) -> Model:
    """Load a checkpoint directory, or a bundled model by name (None: ``"default"``).

    ``quantize="int8"`` quantizes the LSTM and linear weights for faster CPU inference (see
    :mod:`asr.quantize`); the checkpoint on disk stays float32.

    Raises:
        CheckpointError: the checkpoint is missing, corrupt, edited or foreign.
        ConfigError: an unknown ``quantize``.
    """
    check_quantization(quantize)
    if path is None or str(path) in BUNDLED_MODELS:
        name = "default" if path is None else str(path)
        directory = bundled_model_path(name)
        return Model(load_checkpoint(directory), name, directory, quantize)
    return Model(load_checkpoint(path), str(path), resolve_checkpoint_dir(path), quantize)
