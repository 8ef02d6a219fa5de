"""Training data read from disk batch by batch, for corpora too large to hold as features.

:class:`asr.dataset.FeatureDataset` computes every utterance's features once, for every speed
factor, and keeps them in memory: right for a few hours of speech, impossible for LibriSpeech
(960 h are about 110 GB of float32 log-mels per speed factor). :class:`AudioDataset` keeps only
the manifest; each batch's audio is read, speed-perturbed and turned into features when the
batch is needed, in ``workers`` background processes (a ``torch.utils.data.DataLoader`` over
the same duration-bucketed batches). Lengths for bucketing come from the manifest's
``duration`` fields, which the recipes' preparation stages write (else from each file's header).

Utterances whose transcript cannot fit their audio under CTC are left out up front (from the
duration); audio that turns out to be unreadable is logged and left out of its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from asr.audio import audio_duration, load_audio
from asr.augment import speed_perturb
from asr.dataset import Batch, Example, LoadReport, collate, ctc_min_frames, transcript_tokens
from asr.errors import AudioError
from asr.features import FeatureExtractor
from asr.manifest import Utterance
from asr.tokenizer import Tokenizer

logger = logging.getLogger(__name__)


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
