"""Live recognition: a :class:`Recognizer` holds the model, each :class:`Stream` one session.

A stream's state is explicit and its own: the incremental feature extractor's leftover samples,
feature frames that do not yet fill a stack of ``stack_frames``, the LSTM's ``(h, c)``, the
decoder's hypotheses and the endpoint counters. Audio may come in chunks of any size; the
model only ever sees whole stacks, so the output is the same however the audio is cut. With
float32 weights (``RecognizerConfig(quantize=None)``) it is the same as running the
unidirectional model over the whole recording. The default int8 weights
(:attr:`RecognizerConfig.quantize`) compute chunks about three times faster; they take one stack
per call, as int8 activations are scaled over what a call sees, and agree with the float32
result to rounding.

>>> recognizer = Recognizer(asr.load_model("streaming"))
>>> stream = recognizer.create_stream()
>>> stream.accept_waveform(chunk)      # (T,) float32 at 16 kHz, any T
>>> stream.partial                     # text of the open segment so far
>>> stream.finalized                   # closed segments, which never change
>>> transcript = stream.finish()
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from asr.api import Model
from asr.audio import float_samples, validate_waveform
from asr.decoding.base import Decoder
from asr.decoding.beam import BeamConfig
from asr.decoding.registry import DEFAULT_DECODER, build_decoder, decoder_entry
from asr.errors import ASRError
from asr.features import IncrementalFeatures
from asr.network import LSTMState
from asr.quantize import check_quantization
from asr.threads import DEFAULT_THREADS, check_threads, torch_threads
from asr.transcript import Segment, Transcript, Word
from asr.vad import LiveAudibility, blank_silence
from streaming.endpoint import EndpointConfig, EndpointState, is_endpoint

logger = logging.getLogger(__name__)

DEFAULT_STREAM_QUANTIZATION = "int8"


_kernel_lock = threading.Lock()
_kernel_users = 0
_mkldnn_was_enabled = True


@contextlib.contextmanager
def _native_lstm_kernels() -> Iterator[None]:
    """PyTorch's own LSTM kernels instead of oneDNN's while streams compute a chunk.

    On the two or three frames of a 100 ms chunk oneDNN's LSTM is about twice as slow (it is
    faster on whole recordings, which the offline path keeps). ``asr bench --streaming``
    measures the chunk times this affects. The switch is process-wide, so streams in several
    threads share it: the first to enter turns oneDNN off and the last to leave restores it.
    """
    global _kernel_users, _mkldnn_was_enabled
    with _kernel_lock:
        if _kernel_users == 0:
            _mkldnn_was_enabled = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _kernel_users += 1
    try:
        yield
    finally:
        with _kernel_lock:
            _kernel_users -= 1
            if _kernel_users == 0:
                torch.backends.mkldnn.enabled = _mkldnn_was_enabled


class StreamFinishedError(ASRError):
    """Audio was fed to a stream after :meth:`Stream.finish`; call :meth:`Stream.reset` first."""


@dataclass(frozen=True)
class RecognizerConfig:
    """How a recognizer's streams decode and where their segments end.

    Raises:
        ConfigError: ``decoder`` names no decoder of :data:`asr.decoding.registry.DECODERS`.
    """

    decoder: str = DEFAULT_DECODER
    # The settings of a decoder that reads them (beam search); e.g. Model.beam_config(), which
    # brings in the model's own LM.
    beam: BeamConfig = field(default_factory=BeamConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    # torch threads while a stream computes a chunk (None: leave the process's count alone). One
    # (asr.threads.DEFAULT_THREADS): a chunk is a few frames, and on a busy 2-core machine 100 ms
    # chunks took 3.5 ms at p95 on one thread against 68 ms on torch's default of one per core
    # (224 ms in another run: slower than real time). The count is process-wide while a chunk
    # runs, and restored after (asr.threads.torch_threads).
    threads: int | None = DEFAULT_THREADS
    # The network's weights while streams compute (asr.quantize): int8 by default, as live
    # recognition runs one stream's few frames at a time, where reading the float32 weights is
    # most of the cost (the 4 x 384 bundled model's 100 ms chunks took about a third of the
    # time, at the same streamed WER: the recipe's README). None keeps the network as the model
    # was loaded (float32 unless loaded quantized).
    quantize: str | None = DEFAULT_STREAM_QUANTIZATION

    def __post_init__(self) -> None:
        decoder_entry(self.decoder)
        check_threads(self.threads)
        check_quantization(self.quantize)


# Decoders of finished streams kept for the next ones: a beam decoder with a word LM builds its
# lexicon trie when created (2 s for the bundled 43,533-word lexicon), once per stream otherwise.
MAX_IDLE_DECODERS = 4


class Recognizer:
    """A unidirectional model ready to serve any number of independent streams.

    Streams in several threads may share one recognizer. The decoders of finished streams are
    reset and handed to new streams (at most :data:`MAX_IDLE_DECODERS` wait), so a beam search
    with an LM and lexicon is built once, not once per stream.
    """

    def __init__(self, model: Model, config: RecognizerConfig = RecognizerConfig()) -> None:
        model.check_streamable()
        self.model = model
        self.config = config
        self.network = model.network_as(config.quantize)  # what every stream runs
        self.quantized = config.quantize is not None or model.quantize is not None
        self._idle: list[Decoder] = []
        self._idle_lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def new_decoder(self) -> Decoder:
        """A decoder at the start of a session: an idle one reset, or a new one."""
        with self._idle_lock:
            decoder = self._idle.pop() if self._idle else None
        if decoder is not None:
            decoder.reset()
            return decoder
        return build_decoder(self.config.decoder, self.model.tokenizer, self.config.beam)

    def release_decoder(self, decoder: Decoder) -> None:
        """Take back the decoder of a stream that no longer uses it."""
        with self._idle_lock:
            if len(self._idle) < MAX_IDLE_DECODERS:
                self._idle.append(decoder)

    def create_stream(self) -> Stream:
        return Stream(self)


class Stream:
    """One live session; see the module docstring."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self.reset()

    def reset(self) -> None:
        """Forget everything and start a new session."""
        if getattr(self, "decoder", None) is not None:
            self.recognizer.release_decoder(self.decoder)
        model = self.recognizer.model
        self.features = IncrementalFeatures(model.extractor)
        # Which output frames heard audible audio: the others decode as blank (asr.vad).
        self.audibility = LiveAudibility(model.sample_rate, model.network.config.stack_frames)
        self.pending = torch.zeros(0, model.checkpoint.features.n_mels)  # (T_pending < stack, n_mels)
        self.lstm_state: LSTMState | None = None
        self.decoder: Decoder | None = self.recognizer.new_decoder()  # None once finished
        self.endpoint = EndpointState()
        self.frames_done = 0  # output frames decoded since the session began
        self.segment_start = 0  # output frame where the open segment began
        self.samples_seen = 0
        self._finalized: list[Segment] = []
        self.finished = False

    # --- feeding --------------------------------------------------------------------------

    def accept_waveform(self, samples: np.ndarray | torch.Tensor) -> None:
        """Feed ``(T,)`` samples at the model's rate (any ``T``, zero included): floats in
        [-1, 1], or integer PCM (int16, int32, int8, uint8), scaled to them.

        Raises:
            StreamFinishedError: the stream was finished.
            AudioError: the samples are not a finite 1-D array of floats or integer PCM.
        """
        if self.finished:
            raise StreamFinishedError("this stream is finished; reset() it or create a new one")
        if isinstance(samples, torch.Tensor):
            samples = samples.detach().cpu().numpy()
        samples = float_samples(np.asarray(samples), "<stream chunk>")
        if samples.size == 0:
            return
        samples = validate_waveform(samples, "<stream chunk>", 1)
        self.samples_seen += samples.size
        with torch_threads(self.recognizer.config.threads):
            self._compute(samples)

    def _compute(self, samples: np.ndarray) -> None:
        """Run ``(T,)`` new samples through features, network and decoder."""
        self.audibility.accept(samples)
        frames = self.features.accept(samples)  # (T_new, n_mels)
        self.pending = torch.cat([self.pending, frames])
        stack = self.recognizer.network.config.stack_frames
        usable = (self.pending.shape[0] // stack) * stack
        if usable == 0:
            return
        chunk, self.pending = self.pending[:usable], self.pending[usable:]
        with torch.inference_mode(), _native_lstm_kernels():
            log_probs = self._forward(chunk)
        keep = self.audibility.keep(self.frames_done, log_probs.shape[0])
        self._decode(blank_silence(log_probs, keep, self.recognizer.model.tokenizer.blank_id))

    def _forward(self, chunk: torch.Tensor) -> torch.Tensor:
        """``(T_usable, n_mels)`` whole stacks -> ``(T_usable / stack_frames, V)`` log-probabilities,
        the network's state carried on. A quantized network takes one stack per call: its int8
        activations are scaled over what one call sees, so that keeps each output frame
        independent of how the audio was cut."""
        network = self.recognizer.network
        step = network.config.stack_frames if self.recognizer.quantized else chunk.shape[0]
        outputs = []
        for start in range(0, chunk.shape[0], step):
            piece = chunk[start : start + step]  # (step, n_mels)
            log_probs, _, self.lstm_state = network(piece.unsqueeze(0), torch.tensor([piece.shape[0]]), self.lstm_state)
            outputs.append(log_probs[0])  # (step / stack_frames, V)
        return torch.cat(outputs)

    def _decode(self, log_probs: torch.Tensor) -> None:
        """Decode ``(T', V)`` new log-probabilities, closing segments where endpoints fall."""
        config = self.recognizer.config.endpoint
        step = self.recognizer.model.seconds_per_output_frame
        blank = self.recognizer.model.tokenizer.blank_id
        is_blank = (log_probs.argmax(dim=-1) == blank).tolist()
        start = 0
        for i, frame_is_blank in enumerate(is_blank):
            self.endpoint.update([frame_is_blank], emitted=not frame_is_blank)
            if is_endpoint(self.endpoint, config, step):
                self.decoder.step(log_probs[start : i + 1])
                self.frames_done += i + 1 - start
                self._close_segment()
                start = i + 1
        if start < len(is_blank):
            self.decoder.step(log_probs[start:])
            self.frames_done += len(is_blank) - start

    def _close_segment(self) -> None:
        words = self.decoder.finish()[0].words  # the decoder goes on with the next segment
        step = self.recognizer.model.seconds_per_output_frame
        offset = self.segment_start * step
        if words:
            timed = tuple(
                Word(w.word, round(offset + w.start_frame * step, 3), round(offset + (w.end_frame + 1) * step, 3),
                     round(w.confidence, 4))
                for w in words
            )  # fmt: skip
            text = " ".join(w.word for w in words)
            self._finalized.append(Segment(text, round(offset, 3), round(self.frames_done * step, 3), timed))
        self.endpoint = EndpointState()
        self.segment_start = self.frames_done

    # --- results --------------------------------------------------------------------------

    @property
    def finalized(self) -> tuple[Segment, ...]:
        """Closed segments, oldest first; they never change."""
        return tuple(self._finalized)

    @property
    def committed(self) -> str:
        """The open segment's text that will not change ("" once finished)."""
        return " ".join(self.decoder.committed) if self.decoder is not None else ""

    @property
    def partial(self) -> str:
        """The open segment's text so far: the committed prefix and the tentative tail."""
        return " ".join(self.decoder.committed + self.decoder.tentative) if self.decoder is not None else ""

    def finish(self) -> Transcript:
        """Close the open segment and return the whole session's transcript.

        Samples that do not fill a feature window and frames that do not fill a stack are
        dropped, as the offline model drops them.
        """
        if not self.finished:
            self._close_segment()
            self.finished = True
            self.recognizer.release_decoder(self.decoder)  # another stream may take it (and reset it)
            self.decoder = None
        return Transcript.from_segments(self.finalized, self.samples_seen / self.recognizer.sample_rate)
