"""Training data: held in memory as features, or read from disk batch by batch; duration-bucketed batches.

:class:`FeatureDataset` computes features once, up front, for every speed-perturbation factor, so
an epoch costs only the network's own compute: right for a few hours of speech. Utterances whose
audio cannot be read, and utterances too short for their transcript under CTC, are skipped,
counted and logged.

:class:`AudioDataset` is for corpora too large to hold as features (960 h of LibriSpeech are about
110 GB of float32 log-mels per speed factor): it keeps only the manifest; each batch's audio is
read, speed-perturbed and turned into features when the batch is needed, in ``workers``
background processes (a ``torch.utils.data.DataLoader`` over the same duration-bucketed batches).
Lengths for bucketing come from the manifest's ``duration`` fields, which the recipes'
preparation stages write (else from each file's header). Utterances whose transcript cannot fit
their audio under CTC are left out up front (from the duration); audio that turns out to be
unreadable is logged and left out of its batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from asr.audio import audio_duration, load_audio
from asr.errors import AudioError
from asr.features import FeatureExtractor
from asr.manifest import Utterance
from asr.text import normalize_text
from asr.tokenizer import Tokenizer
from asr.train.augment import speed_perturb

logger = logging.getLogger(__name__)


def ctc_min_frames(tokens: Sequence[int]) -> int:
    """Fewest CTC frames that can emit ``tokens``: one per token plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)
    return len(tokens) + repeats


@dataclass
class LoadReport:
    """What happened to each utterance of a manifest while loading."""

    loaded: int = 0
    unreadable: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    empty_text: list[str] = field(default_factory=list)
    # Text with a character no token covers (a BPE model trained on other text, say).
    unspellable: list[str] = field(default_factory=list)

    def log(self, name: str) -> None:
        logger.info(
            "%s: %d utterances loaded; skipped %d unreadable, %d too short for their transcript, "
            "%d with empty text, %d the tokenizer cannot spell",
            name, self.loaded, len(self.unreadable), len(self.too_short), len(self.empty_text), len(self.unspellable),
        )  # fmt: skip


def transcript_tokens(tokenizer: Tokenizer, utt: Utterance, report: LoadReport) -> tuple[str, list[int]] | None:
    """The normalised text of ``utt`` and its token ids, or None (logged and counted in
    ``report``) if the text is empty once normalised or the tokenizer cannot spell it."""
    text = normalize_text(utt.text)
    if not text:
        report.empty_text.append(utt.id)
        return None
    try:
        return text, tokenizer.encode(text)
    except ValueError as exc:
        logger.warning("skipping %s: %s", utt.id, exc)
        report.unspellable.append(utt.id)
        return None


@dataclass(frozen=True)
class Example:
    """One utterance ready for training: features per speed factor and token ids."""

    id: str
    features: tuple[torch.Tensor, ...]  # one (T_frames, n_mels) tensor per speed factor
    tokens: torch.Tensor  # (L,) int64
    text: str
    speaker: str | None = None


class FeatureDataset:
    """A manifest's utterances as in-memory features, ready for batching."""

    def __init__(
        self,
        utterances: Iterable[Utterance],
        extractor: FeatureExtractor,
        tokenizer: Tokenizer,
        stack_frames: int,
        speed_factors: Sequence[float] = (1.0,),
        name: str = "data",
        progress: bool = True,
        half_precision: bool = False,
    ) -> None:
        if 1.0 not in speed_factors:
            raise ValueError(f"speed_factors must include 1.0, got {tuple(speed_factors)}")
        self.speed_factors = tuple(speed_factors)
        stored = torch.float16 if half_precision else torch.float32
        self.unperturbed = self.speed_factors.index(1.0)
        self.examples: list[Example] = []
        self.report = LoadReport()
        rate = extractor.config.sample_rate
        utterances = list(utterances)
        for utt in tqdm(utterances, desc=f"features {name}", disable=not progress, leave=False):
            transcript = transcript_tokens(tokenizer, utt, self.report)
            if transcript is None:
                continue
            text, tokens = transcript
            try:
                waveform = load_audio(utt.audio, rate, min_samples=extractor.config.window_samples)
            except AudioError as exc:
                logger.warning("skipping %s: %s", utt.id, exc)
                self.report.unreadable.append(utt.id)
                continue
            feats = tuple(extractor(speed_perturb(waveform, f, rate)).to(stored) for f in self.speed_factors)
            if min(f.shape[0] for f in feats) // stack_frames < ctc_min_frames(tokens):
                self.report.too_short.append(utt.id)
                continue
            self.examples.append(Example(utt.id, feats, torch.tensor(tokens, dtype=torch.long), text, utt.speaker))
        self.report.loaded = len(self.examples)
        self.report.log(name)

    def __len__(self) -> int:
        return len(self.examples)

    def num_frames(self, index: int) -> int:
        """Frames of example ``index`` at the unperturbed speed (used for bucketing)."""
        return self.examples[index].features[self.unperturbed].shape[0]

    def batches(self, batches: Sequence[Sequence[int]], speed_choices: Sequence[Sequence[int]]) -> Iterator[Batch]:
        """Collate ``batches`` (lists of indices) in order, example ``i`` of batch ``b`` at speed
        index ``speed_choices[b][i]`` (the interface :class:`asr.train.data.AudioDataset` shares)."""
        for indices, speeds in zip(batches, speed_choices):
            yield collate([self.examples[i] for i in indices], speeds)


@dataclass(frozen=True)
class Batch:
    features: torch.Tensor  # (N, T, n_mels), zero padded
    lengths: torch.Tensor  # (N,)
    tokens: torch.Tensor  # (N, L), zero padded
    token_lengths: torch.Tensor  # (N,)
    ids: tuple[str, ...]
    texts: tuple[str, ...]

    def to(self, device: torch.device) -> Batch:
        """The same batch with its tensors on ``device``."""
        return dataclasses.replace(
            self, features=self.features.to(device), lengths=self.lengths.to(device),
            tokens=self.tokens.to(device), token_lengths=self.token_lengths.to(device),
        )  # fmt: skip


def collate(examples: Sequence[Example], speed_choices: Sequence[int]) -> Batch:
    """Pad examples into a batch, taking features at speed index ``speed_choices[i]``."""
    feats = [ex.features[choice].float() for ex, choice in zip(examples, speed_choices)]
    lengths = torch.tensor([f.shape[0] for f in feats])
    token_lengths = torch.tensor([len(ex.tokens) for ex in examples])
    return Batch(
        features=torch.nn.utils.rnn.pad_sequence(feats, batch_first=True),
        lengths=lengths,
        tokens=torch.nn.utils.rnn.pad_sequence([ex.tokens for ex in examples], batch_first=True),
        token_lengths=token_lengths,
        ids=tuple(ex.id for ex in examples),
        texts=tuple(ex.text for ex in examples),
    )


def bucket_batches(
    frames: Sequence[int],
    max_batch_frames: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    jitter: float = 0.1,
) -> list[list[int]]:
    """Group example indices into batches of similar length.

    Examples are sorted by length (randomly jittered by up to ``jitter`` of their length so
    batches differ between epochs), cut into batches whose padded size ``len(batch) * longest``
    stays within ``max_batch_frames``, and the batch order is shuffled. The result depends only
    on ``(frames, max_batch_frames, seed, epoch)``, which is what makes resumption exact: the
    sampler's position is just the index of the next batch.

    Returns:
        A list of batches, each a list of example indices.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    lengths = torch.tensor(frames, dtype=torch.float64)
    if shuffle:
        lengths = lengths * (1 + jitter * torch.rand(len(frames), generator=generator, dtype=torch.float64))
    order = torch.argsort(lengths).tolist()
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        longest_if_added = max(longest, frames[index])
        if current and longest_if_added * (len(current) + 1) > max_batch_frames:
            batches.append(current)
            current, longest_if_added = [], frames[index]
        current.append(index)
        longest = longest_if_added
    if current:
        batches.append(current)
    if shuffle:
        permutation = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in permutation]
    return batches


def speed_choices(seed: int, epoch: int, global_batch: int, size: int, num_factors: int) -> list[int]:
    """Speed factor indices for the ``size`` utterances of a global batch.

    A function of the batch's place in training only (not of any RNG state), so that a loader
    can prepare batches ahead and a resumed run draws what an uninterrupted one drew.
    """
    generator = torch.Generator().manual_seed(((seed * 1_000_003) + epoch) * 1_000_033 + global_batch)
    return torch.randint(num_factors, (size,), generator=generator).tolist()


def shard_batches(batches: Sequence[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """The batches process ``rank`` of ``world_size`` trains on, one per optimizer step.

    Step ``s`` of every rank together covers the *global batches* ``s * world_size`` to
    ``s * world_size + world_size - 1`` of ``batches``, rank ``r`` taking number
    ``s * world_size + r``: whole batches, so duration buckets stay intact, and every batch is
    used exactly once. All ranks get ``ceil(len(batches) / world_size)`` entries (collective
    operations need every rank at every step); where the batches run out, a rank's last entry is
    an empty list, a step that contributes nothing. With one process this is ``batches``.

    Returns:
        This rank's batches of example indices, in step order.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} does not fit world_size {world_size}")
    steps = -(-len(batches) // world_size)  # ceil
    return [list(batches[i]) if i < len(batches) else [] for i in range(rank, steps * world_size, world_size)]


def global_batches_in_step(num_batches: int, step: int, world_size: int) -> int:
    """How many of ``num_batches`` global batches step ``step`` of :func:`shard_batches` uses."""
    return max(0, min(world_size, num_batches - step * world_size))


class _Items(Dataset):
    """``(index, speed index) -> Example | None`` (None: unreadable); runs in the workers."""

    def __init__(self, dataset: AudioDataset) -> None:
        self.utterances = dataset.utterances
        self.tokens = dataset.tokens
        self.texts = dataset.texts
        self.extractor = dataset.extractor
        self.speed_factors = dataset.speed_factors

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: tuple[int, int]) -> Example | None:
        index, speed = key
        utt = self.utterances[index]
        rate = self.extractor.config.sample_rate
        try:
            waveform = load_audio(utt.audio, rate, min_samples=self.extractor.config.window_samples)
        except AudioError as exc:
            logger.warning("skipping %s: %s", utt.id, exc)
            return None
        factor = self.speed_factors[speed]
        features = self.extractor(speed_perturb(waveform, factor, rate))
        return Example(utt.id, (features,), self.tokens[index], self.texts[index])


def _collate(items: list[Example | None]) -> Batch | None:
    examples = [example for example in items if example is not None]
    return collate(examples, [0] * len(examples)) if examples else None


class AudioDataset:
    """A manifest's utterances, featurised batch by batch; see the module docstring."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        extractor: FeatureExtractor,
        tokenizer: Tokenizer,
        stack_frames: int,
        speed_factors: Sequence[float] = (1.0,),
        name: str = "data",
        workers: int = 2,
    ) -> None:
        if 1.0 not in speed_factors:
            raise ValueError(f"speed_factors must include 1.0, got {tuple(speed_factors)}")
        self.extractor = extractor
        self.speed_factors = tuple(speed_factors)
        self.workers = workers
        self.utterances: list[Utterance] = []
        self.tokens: list[torch.Tensor] = []
        self.texts: list[str] = []
        self.frames: list[int] = []
        self.report = LoadReport()
        config = extractor.config
        for utt in utterances:
            transcript = transcript_tokens(tokenizer, utt, self.report)
            if transcript is None:
                continue
            text, tokens = transcript
            try:
                duration = utt.duration if utt.duration is not None else audio_duration(utt.audio)
            except AudioError as exc:
                logger.warning("skipping %s: %s", utt.id, exc)
                self.report.unreadable.append(utt.id)
                continue
            frames = config.num_frames(round(duration * config.sample_rate))
            slowest = int(frames / max(self.speed_factors))  # the fastest playback has the fewest frames
            if slowest // stack_frames < ctc_min_frames(tokens):
                self.report.too_short.append(utt.id)
                continue
            self.utterances.append(utt)
            self.tokens.append(torch.tensor(tokens, dtype=torch.long))
            self.texts.append(text)
            self.frames.append(frames)
        self.report.loaded = len(self.utterances)
        self.report.log(name)

    def __len__(self) -> int:
        return len(self.utterances)

    def num_frames(self, index: int) -> int:
        """Frames of utterance ``index`` at the unperturbed speed, from its duration."""
        return self.frames[index]

    def batches(
        self, batches: Sequence[Sequence[int]], speed_choices: Sequence[Sequence[int]]
    ) -> Iterator[Batch | None]:
        """Featurise ``batches`` (lists of indices) in order, utterance ``i`` of batch ``b`` at
        speed index ``speed_choices[b][i]``; one item per batch, None where no audio of the
        batch could be read (the trainer keeps its steps in step with other processes)."""
        keys = [list(zip(batch, speeds)) for batch, speeds in zip(batches, speed_choices)]
        loader = DataLoader(
            _Items(self), batch_sampler=keys, collate_fn=_collate, num_workers=self.workers,
            prefetch_factor=2 if self.workers else None,
            # Its own generator: starting workers must not draw from the global RNG, which
            # SpecAugment and dropout use (so training is the same as from memory).
            generator=torch.Generator(),
        )  # fmt: skip
        yield from loader
