"""The user-facing model: audio in, :class:`Transcript` out.

>>> import asr
>>> model = asr.load_model()            # the bundled default model
>>> model.transcribe("speech.flac").text
>>> model.transcribe("speech.flac", decoder="beam", beam_size=8).text
>>> options = TranscribeOptions(decoder="beam", word_timestamps=True)
>>> model.transcribe("speech.flac", options, nbest=3)     # keywords change the options given
>>> asr.load_model(threads=None)        # leave torch's thread count to the program
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

from asr.alignment import timed_words
from asr.audio import AudioInput
from asr.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_dir
from asr.decoding.base import Decoder
from asr.decoding.beam import BeamConfig
from asr.decoding.registry import DEFAULT_DECODER, decoder_entry
from asr.errors import AudioError, CheckpointError, ConfigError
from asr.features import FeatureExtractor
from asr.lm.bundled import ModelLM, find_model_lm
from asr.longform import Piece, SplitConfig, batch_pieces, indexed_pieces, total_seconds
from asr.quantize import check_quantization, quantize_network
from asr.threads import DEFAULT_THREADS, check_threads, torch_threads
from asr.transcript import Alternative, Segment, Transcript, Word
from asr.vad import is_silent

logger = logging.getLogger(__name__)

BUNDLED_MODELS = ("default", "streaming")
"""Models shipped inside the package, loadable by name."""

# Padded audio per forward pass when transcribing several pieces: about 16 short utterances,
# or three 20 s pieces of a long recording. Larger batches gain little on CPUs.
DEFAULT_BATCH_SECONDS = 60.0


@dataclass(frozen=True)
class TranscribeOptions:
    """How :meth:`Model.transcribe` decodes. Each field is a keyword of it (and of
    :meth:`Model.transcribe_batch`) and a flag of ``asr transcribe``, which reads its default
    here; change one with :func:`dataclasses.replace`.

    The beam settings (:data:`BEAM_OPTIONS`) apply to a decoder that searches a beam
    (``decoder="beam"``). Left as ``None``, ``lm``, ``lexicon``, ``lm_weight`` and
    ``word_score`` come from the model's own LM (unless ``use_lm`` is False), or else from
    :class:`BeamConfig`'s defaults; see :meth:`Model.beam_config`.

    Raises:
        ConfigError: ``decoder`` names no decoder of :data:`asr.decoding.registry.DECODERS`.
    """

    decoder: str = DEFAULT_DECODER
    beam_size: int = BeamConfig.beam_size
    beam_threshold: float = BeamConfig.beam_threshold
    lm: str | os.PathLike | None = None
    lexicon: str | os.PathLike | None = None
    lm_weight: float | None = None
    word_score: float | None = None
    nbest: int = BeamConfig.nbest
    use_lm: bool = True
    # Align the best hypothesis to the audio (CTC forced alignment): each word's start, end
    # and confidence.
    word_timestamps: bool = False
    # Longer audio is cut at quiet moments into pieces of at most this length (asr.longform).
    max_segment_seconds: float = SplitConfig.max_seconds

    def __post_init__(self) -> None:
        decoder_entry(self.decoder)

    @property
    def split(self) -> SplitConfig:
        return SplitConfig(max_seconds=self.max_segment_seconds)


BEAM_OPTIONS = ("beam_size", "beam_threshold", "lm", "lexicon", "lm_weight", "word_score", "nbest", "use_lm")
"""The fields of :class:`TranscribeOptions` that only a beam search reads."""

_OPTION_NAMES = frozenset(field.name for field in dataclasses.fields(TranscribeOptions))


def transcribe_options(options: TranscribeOptions | None = None, **keywords) -> TranscribeOptions:
    """``options`` (None: the defaults) with the fields named in ``keywords`` changed.

    Raises:
        TypeError: ``options`` is not a :class:`TranscribeOptions`, or a keyword names no field.
        ConfigError: an unknown decoder.
    """
    if options is None:
        options = TranscribeOptions()
    elif not isinstance(options, TranscribeOptions):
        raise TypeError(f"options must be TranscribeOptions, got {type(options).__name__}")
    unknown = sorted(set(keywords) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown transcription option(s): {', '.join(unknown)}")
    return dataclasses.replace(options, **keywords) if keywords else options


def bundled_model_path(name: str = "default") -> Path:
    """Folder of a model shipped in the package."""
    if name not in BUNDLED_MODELS:
        raise CheckpointError(f"no bundled model named {name!r}; bundled: {', '.join(BUNDLED_MODELS)}")
    return Path(str(resources.files("asr") / "models" / name))


class Model:
    """A loaded checkpoint with its feature extractor, tokenizer and decoders."""

    def __init__(
        self, checkpoint: Checkpoint, name: str = "", directory: Path | None = None, quantize: str | None = None,
        threads: int | None = DEFAULT_THREADS,
    ) -> None:  # fmt: skip
        check_threads(threads)
        self.checkpoint = checkpoint
        self.threads = threads  # torch threads while this model computes (see torch_threads)
        self.name = name
        # The model's own LM (``<directory>/lm``), which beam search uses unless told otherwise.
        self.lm: ModelLM | None = find_model_lm(directory) if directory else None
        self.quantize = quantize  # None (float32) or an asr.quantize.QUANTIZATIONS kind
        network = checkpoint.model.eval()
        self.network = quantize_network(network, quantize) if quantize else network
        self._quantized: dict[str, torch.nn.Module] = {}  # other precisions, made on demand
        self.tokenizer = checkpoint.tokenizer
        self.extractor = FeatureExtractor(checkpoint.features, checkpoint.normalizer)
        # Decoders that read beam settings, built once per name and settings: loading an LM
        # and its lexicon takes a while.
        self._decoders: dict[tuple[str, BeamConfig], Decoder] = {}

    @property
    def sample_rate(self) -> int:
        return self.checkpoint.features.sample_rate

    @property
    def min_samples(self) -> int:
        """The fewest samples the model can hear: one feature window."""
        return self.checkpoint.features.window_samples

    @property
    def seconds_per_output_frame(self) -> float:
        config = self.checkpoint.features
        return self.network.config.stack_frames * config.hop_samples / config.sample_rate

    def network_as(self, quantize: str | None) -> torch.nn.Module:
        """The network with ``quantize`` applied (``None``: :attr:`network` as loaded), made
        from the float32 checkpoint once and kept; it takes and returns what :attr:`network` does.

        Raises:
            ConfigError: ``quantize`` is not None or one of :data:`asr.quantize.QUANTIZATIONS`.
        """
        check_quantization(quantize)
        if quantize is None or quantize == self.quantize:
            return self.network
        if quantize not in self._quantized:
            self._quantized[quantize] = quantize_network(self.checkpoint.model.eval(), quantize)
        return self._quantized[quantize]

    def check_streamable(self) -> None:
        """Whether the model can run on a live stream, chunk by chunk with its state carried.

        Raises:
            ConfigError: it is bidirectional, or its front end reads ahead (not ``stack``).
        """
        config = self.network.config
        if config.streamable:
            return
        if config.bidirectional:
            raise ConfigError(
                f"{self.name or 'this model'} is bidirectional and needs the whole recording; "
                "streaming needs a unidirectional model (e.g. asr.load_model('streaming'))"
            )
        if config.frontend != "stack":
            raise ConfigError(
                f"{self.name or 'this model'} has the {config.frontend} front end, which reads "
                "ahead; streaming needs the stack front end"
            )

    def log_probs(self, waveform: np.ndarray) -> torch.Tensor:
        """``(T_samples,)`` waveform -> ``(T_out, vocab_size)`` log-probabilities."""
        return self.log_probs_batch([waveform])[0]

    def log_probs_batch(self, waveforms: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """``(T_i,)`` waveforms -> their ``(T'_i, vocab_size)`` log-probabilities, from one forward
        pass over the zero-padded ``(N, max T, n_mels)`` features; the model masks the padding,
        so each equals :meth:`log_probs` of that waveform alone, to float rounding."""
        with torch_threads(self.threads), torch.inference_mode():
            feats = [self.extractor(w) for w in waveforms]  # (T_i, n_mels) each
            lengths = torch.tensor([f.shape[0] for f in feats])
            padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
            log_probs, out_lengths, _ = self.network(padded, lengths)
        return [log_probs[i, : int(out_lengths[i])] for i in range(len(feats))]

    def beam_config(self, options: TranscribeOptions | None = None, **keywords) -> BeamConfig:
        """The beam settings of ``options`` (changed by ``keywords``, as :meth:`transcribe` takes
        them): without ``lm`` (and unless ``use_lm`` is False), the model's own LM (:attr:`lm`)
        with the weights tuned for it; a weight given overrides the tuned one. Without an LM at
        all, beam search is lexicon-free unless ``lexicon`` is given."""
        o = transcribe_options(options, **keywords)
        lm, lexicon, lm_weight, word_score = o.lm, o.lexicon, o.lm_weight, o.word_score
        own = self.lm if (o.use_lm and lm is None and lexicon is None) else None
        if own is not None:
            lm, lexicon = own.lm, own.lexicon
            lm_weight = own.lm_weight if lm_weight is None else lm_weight
            word_score = own.word_score if word_score is None else word_score
        return BeamConfig(
            beam_size=o.beam_size, beam_threshold=o.beam_threshold, lm=str(lm) if lm and o.use_lm else None,
            lexicon=str(lexicon) if lexicon else None,
            lm_weight=BeamConfig.lm_weight if lm_weight is None else lm_weight,
            word_score=BeamConfig.word_score if word_score is None else word_score, nbest=o.nbest,
        )  # fmt: skip

    def decoder(self, options: TranscribeOptions | None = None, **keywords) -> Decoder:
        """The decoder of ``options`` (changed by ``keywords``). One that reads beam settings is
        built once per settings and reused; the others are built anew (they cost nothing).

        Raises:
            ConfigError: an unknown decoder, or an LM or lexicon that cannot be used.
        """
        options = transcribe_options(options, **keywords)
        entry = decoder_entry(options.decoder)
        if not entry.uses_beam:
            return entry.build(self.tokenizer, BeamConfig())
        config = self.beam_config(options)
        if (entry.name, config) not in self._decoders:
            self._decoders[entry.name, config] = entry.build(self.tokenizer, config)
        return self._decoders[entry.name, config]

    def transcribe(
        self, audio: AudioInput, options: TranscribeOptions | None = None, *, progress: bool = False, **keywords
    ) -> Transcript:
        """Transcribe a file path or a ``(T,)`` float waveform at :attr:`sample_rate`.

        ``options`` (default: :class:`TranscribeOptions`'s), with any of its fields changed by
        ``keywords`` (``decoder="beam"``, ``beam_size=8``, ``word_timestamps=True``, ...).
        Audio longer than ``max_segment_seconds`` is cut at quiet moments and decoded piece by
        piece (see :mod:`asr.longform`); each piece becomes a segment of the transcript.
        ``word_timestamps`` aligns the chosen hypothesis to the audio (CTC forced alignment)
        and gives each word its start, end and confidence.

        Raises:
            AudioError: the audio cannot be read or used; the message names the file.
            ConfigError: an unknown decoder, or an LM or lexicon that cannot be used.
            TypeError: a keyword that is no field of :class:`TranscribeOptions`.
        """
        options = transcribe_options(options, **keywords)
        (result,) = self._transcribe_all([audio], options, DEFAULT_BATCH_SECONDS, progress)
        if isinstance(result, AudioError):
            raise result
        return result

    def transcribe_batch(
        self, audios: Sequence[AudioInput], batch_seconds: float = DEFAULT_BATCH_SECONDS, progress: bool = False,
        options: TranscribeOptions | None = None, **keywords,
    ) -> list[Transcript]:  # fmt: skip
        """Transcribe several files or waveforms, running the network on batches of pieces of
        up to ``batch_seconds`` of padded audio at a time: on CPUs, several times faster per
        second of audio than one at a time. ``options`` and ``keywords`` are those of
        :meth:`transcribe`; each transcript equals the one :meth:`transcribe` gives (to float
        rounding in the network).

        An audio that cannot be read or used does not stop the others, as in ``asr transcribe``:
        its transcript has no text and ``error`` holds the message (which names the file);
        every other transcript has ``error`` None.

        Raises:
            ConfigError, TypeError: as :meth:`transcribe`.
        """
        options = transcribe_options(options, **keywords)
        results = self._transcribe_all(audios, options, batch_seconds, progress)
        return [Transcript.failed(str(r)) if isinstance(r, AudioError) else r for r in results]

    def _transcribe_all(
        self, audios: Sequence[AudioInput], options: TranscribeOptions, batch_seconds: float, progress: bool
    ) -> list[Transcript | AudioError]:
        """Pieces of ``audios`` in order, through the network in batches whose padded length
        stays within ``batch_seconds`` (:func:`asr.longform.batch_pieces`), then put back
        together per audio; an audio that cannot be read or used gives its error instead. The
        progress bar counts seconds of audio out of their total (when headers give it)."""
        decoder = self.decoder(options)
        found: list[list[Segment]] = [[] for _ in audios]
        durations = [0.0] * len(audios)
        errors: dict[int, AudioError] = {}
        indexed = indexed_pieces(audios, self.sample_rate, self.min_samples, options.split, errors)
        name = str(audios[0]) if len(audios) == 1 and isinstance(audios[0], str | os.PathLike) else "audio"
        total = total_seconds(audios, self.sample_rate) if progress else None
        with torch_threads(self.threads), tqdm(desc=name, total=total, unit="s", disable=not progress) as bar:
            for batch in batch_pieces(indexed, batch_seconds * self.sample_rate):
                log_probs = self.log_probs_batch([piece.waveform for _, piece in batch])
                for (index, piece), piece_log_probs in zip(batch, log_probs):
                    durations[index] = piece.start + piece.waveform.size / self.sample_rate
                    segment = self._segment(piece, piece_log_probs, decoder, options.word_timestamps)
                    if segment.text:
                        found[index].append(segment)
                bar.update(round(sum(piece.waveform.size for _, piece in batch) / self.sample_rate, 2))
        return [
            errors.get(i) or Transcript.from_segments(segments, duration)
            for i, (segments, duration) in enumerate(zip(found, durations))
        ]

    def _segment(self, piece: Piece, log_probs: torch.Tensor, decoder: Decoder, word_timestamps: bool) -> Segment:
        """The segment of ``piece`` from its ``(T', V)`` log-probabilities; a piece with no
        audible audio (:func:`asr.vad.is_silent`) has no text, whatever the network made of it."""
        end = piece.start + piece.waveform.size / self.sample_rate
        if is_silent(piece.waveform, self.sample_rate):
            return Segment("", round(piece.start, 3), round(end, 3))
        hypotheses = decoder.decode(log_probs)
        best = hypotheses[0]
        words: tuple[Word, ...] = ()
        if word_timestamps and best.text:
            words = timed_words(
                log_probs,
                piece.waveform,
                best.text,
                self.tokenizer,
                self.sample_rate,
                self.seconds_per_output_frame,
                piece.start,
            )
        nbest = tuple(Alternative(h.text, round(h.score, 4)) for h in hypotheses) if len(hypotheses) > 1 else ()
        return Segment(best.text, round(piece.start, 3), round(end, 3), words, nbest)


def load_model(
    path: str | os.PathLike | None = None, quantize: str | None = None, threads: int | None = DEFAULT_THREADS
) -> Model:
    """Load a checkpoint directory, or a bundled model by name (None: ``"default"``).

    ``quantize="int8"`` quantizes the LSTM and linear weights for faster CPU inference (see
    :mod:`asr.quantize`); the checkpoint on disk stays float32. ``threads`` is the number of
    torch threads while the model computes (default :data:`DEFAULT_THREADS`, 1, for the reason
    given there); the count the process had is restored after each call. torch's thread count
    is process-wide (see :func:`torch_threads`); a program that manages it itself passes None.

    Raises:
        CheckpointError: the checkpoint is missing, corrupt, edited or foreign.
        ConfigError: an unknown ``quantize``, or ``threads`` not a positive integer or None.
    """
    check_quantization(quantize)
    check_threads(threads)
    if path is None or str(path) in BUNDLED_MODELS:
        name = "default" if path is None else str(path)
        directory = bundled_model_path(name)
        return Model(load_checkpoint(directory), name, directory, quantize, threads)
    return Model(load_checkpoint(path), str(path), resolve_checkpoint_dir(path), quantize, threads)
