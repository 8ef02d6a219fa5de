"""The user-facing model: audio in, :class:`Transcript` out.

>>> import asr
>>> model = asr.load_model()            # the bundled default model
>>> model.transcribe("speech.flac").text
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.alignment import align_words, start_at_speech
from asr.audio import AudioInput
from asr.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_dir
from asr.decoding.beam import BeamConfig, BeamDecoder
from asr.decoding.greedy import Hypothesis, greedy_decode
from asr.errors import CheckpointError, ConfigError
from asr.features import FeatureExtractor
from asr.lm.bundled import ModelLM, find_model_lm
from asr.longform import Piece, SplitConfig, pieces
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

# Padded audio per forward pass when transcribing several pieces: about 16 short utterances,
# or two 30 s pieces of a long recording. Larger batches gain little on CPUs.
DEFAULT_BATCH_SECONDS = 60.0


@dataclass(frozen=True)
class Decoding:
    """How pieces are decoded: the options of :meth:`Model.transcribe`, checked and resolved."""

    decoder: str
    beam: BeamConfig | None
    word_timestamps: bool
    split: SplitConfig


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
        return self.log_probs_batch([waveform])[0]

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
        given = locals()  # the keywords as called: only BEAM_OPTIONS are read from it
        decoding = self._decoding(decoder, word_timestamps, max_segment_seconds, **{n: given[n] for n in BEAM_OPTIONS})
        return self._transcribe_all([audio], decoding, DEFAULT_BATCH_SECONDS, progress)[0]

    def transcribe_batch(
        self, audios: Sequence[AudioInput], batch_seconds: float = DEFAULT_BATCH_SECONDS, progress: bool = False,
        **options,
    ) -> list[Transcript]:  # fmt: skip
        """Transcribe several files or waveforms, running the network on batches of pieces of
        up to ``batch_seconds`` of padded audio at a time: on CPUs, several times faster per
        second of audio than one at a time. ``options`` are those of :meth:`transcribe`; each
        transcript equals the one :meth:`transcribe` gives (to float rounding in the network).

        Raises:
            AudioError: an audio cannot be read or used (the message names it); to go on past
                unreadable files, load them first (:func:`asr.audio.load_audio`) and pass waveforms.
            ConfigError: as :meth:`transcribe`.
        """
        return self._transcribe_all(audios, self._decoding(**options), batch_seconds, progress)

    def log_probs_batch(self, waveforms: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """``(T_i,)`` waveforms -> their ``(T'_i, vocab_size)`` log-probabilities, from one forward
        pass over the zero-padded ``(N, max T, n_mels)`` features; the model masks the padding,
        so each equals :meth:`log_probs` of that waveform alone, to float rounding."""
        feats = [self.extractor(w) for w in waveforms]  # (T_i, n_mels) each
        lengths = torch.tensor([f.shape[0] for f in feats])
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        with torch.inference_mode():
            log_probs, out_lengths, _ = self.network(padded, lengths)
        return [log_probs[i, : int(out_lengths[i])] for i in range(len(feats))]

    def _decoding(
        self,
        decoder: str = "greedy",
        word_timestamps: bool = False,
        max_segment_seconds: float = SplitConfig.max_seconds,
        **beam_options,
    ) -> Decoding:
        unknown = sorted(set(beam_options) - set(BEAM_OPTIONS))
        if unknown:
            raise TypeError(f"unknown transcription option(s): {', '.join(unknown)}")
        if decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {decoder!r}; choose from {', '.join(DECODERS)}")
        beam = self.beam_config(**beam_options) if decoder == "beam" else None
        return Decoding(decoder, beam, word_timestamps, SplitConfig(max_seconds=max_segment_seconds))

    def _transcribe_all(
        self, audios: Sequence[AudioInput], decoding: Decoding, batch_seconds: float, progress: bool
    ) -> list[Transcript]:
        """Pieces of ``audios`` in order, gathered into batches whose padded length (longest
        piece x pieces) stays within ``batch_seconds``, then put back together per audio."""
        segments: list[list[Segment]] = [[] for _ in audios]
        durations = [0.0] * len(audios)
        pending: list[tuple[int, Piece]] = []
        longest = 0  # samples of the longest pending piece
        limit = batch_seconds * self.sample_rate
        min_samples = self.checkpoint.features.window_samples
        name = str(audios[0]) if len(audios) == 1 and isinstance(audios[0], str | os.PathLike) else "audio"
        bar = tqdm(desc=name, unit="piece", disable=not progress)

        def run_pending() -> None:
            nonlocal longest
            log_probs = self.log_probs_batch([piece.waveform for _, piece in pending])
            for (index, piece), piece_log_probs in zip(pending, log_probs):
                segment = self._segment(piece, piece_log_probs, decoding)
                if segment.text:
                    segments[index].append(segment)
            bar.update(len(pending))
            pending.clear()
            longest = 0

        for index, audio in enumerate(audios):
            for piece in pieces(audio, self.sample_rate, min_samples, decoding.split):
                durations[index] = piece.start + piece.waveform.size / self.sample_rate
                if pending and max(longest, piece.waveform.size) * (len(pending) + 1) > limit:
                    run_pending()
                pending.append((index, piece))
                longest = max(longest, piece.waveform.size)
        if pending:
            run_pending()
        bar.close()
        return [
            Transcript(
                text=" ".join(s.text for s in found),
                duration=duration,
                words=tuple(w for s in found for w in s.words),
                segments=tuple(found),
            )  # fmt: skip
            for found, duration in zip(segments, durations)
        ]

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

    def _segment(self, piece: Piece, log_probs: torch.Tensor, decoding: Decoding) -> Segment:
        """The segment of ``piece`` from its ``(T', V)`` log-probabilities."""
        hypotheses = self.decode(log_probs, decoding.decoder, decoding.beam)
        best = hypotheses[0]
        end = piece.start + piece.waveform.size / self.sample_rate
        words: tuple[Word, ...] = ()
        if decoding.word_timestamps and best.text:
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
