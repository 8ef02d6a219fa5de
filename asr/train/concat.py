"""Training examples made of two consecutive utterances of one speaker, joined end to end.

A long recording is cut at its pauses (:mod:`asr.longform`), and its pieces do not start and end
where a corpus's utterances do: one piece holds the end of a sentence and the start of the next,
with the pause between them in its middle. A model that has only seen whole utterances, each
opening and closing on silence, does worse on such pieces than on the utterances themselves.
:class:`JoinedDataset` shows it some: a share of the training utterances appear joined to the
next utterance of the same speaker (features laid end to end, as their audio would be, and the
two transcripts with a space between), the rest alone, so that an epoch still holds every
utterance exactly once.

Which utterances are joined is drawn once, from the seed, so an epoch's batches (and a resumed
run's) stay a function of ``(seed, epoch)`` as :func:`asr.train.data.bucket_batches` needs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence

import torch

from asr.tokenizer import Tokenizer
from asr.train.data import Batch, Example, FeatureDataset, collate, ctc_min_frames

logger = logging.getLogger(__name__)

# Joined example ids: "<first id>+<second id>".
JOIN_SEPARATOR = "+"


def join_groups(
    speakers: Sequence[str | None], frames: Sequence[int], share: float, max_frames: int, seed: int
) -> list[tuple[int, ...]]:
    """Group indices ``0..len(speakers)-1``, in order, into singles and consecutive pairs.

    Walking the examples in order, an example starts a pair with the next one with probability
    ``share / (2 - share)`` (so that about ``share`` of all examples end up in pairs) when both
    have the same known speaker and together last at most ``max_frames``.

    Returns:
        Groups covering every index exactly once, in order: ``(i,)`` or ``(i, i + 1)``.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1), got {share}")
    rng = random.Random(seed)
    start_pair = share / (2.0 - share)
    groups: list[tuple[int, ...]] = []
    i = 0
    while i < len(speakers):
        joinable = (
            i + 1 < len(speakers)
            and speakers[i] is not None
            and speakers[i] == speakers[i + 1]
            and frames[i] + frames[i + 1] <= max_frames
        )
        if joinable and rng.random() < start_pair:
            groups.append((i, i + 1))
            i += 2
        else:
            groups.append((i,))
            i += 1
    return groups


class JoinedDataset:
    """A :class:`asr.train.data.FeatureDataset` whose items are its examples alone or in joined
    pairs (see the module docstring); the same interface to the trainer.

    Args:
        base: the utterances, as in-memory features.
        tokenizer: spells a joined pair's transcript.
        stack_frames: the model's frame stacking (a pair must still fit its transcript under CTC).
        share: about this share of the examples appear in pairs, in ``[0, 1)``.
        max_frames: a pair lasts at most this many feature frames (unperturbed).
        seed: draws which examples are joined.
    """

    def __init__(
        self,
        base: FeatureDataset,
        tokenizer: Tokenizer,
        stack_frames: int,
        share: float,
        max_frames: int,
        seed: int,
    ) -> None:
        self.base = base
        self.tokenizer = tokenizer
        frames = [base.num_frames(i) for i in range(len(base))]
        speakers = [example.speaker for example in base.examples]
        self.groups: list[tuple[int, ...]] = []
        for group in join_groups(speakers, frames, share, max_frames, seed):
            if len(group) > 1 and not self._fits(group, stack_frames):
                self.groups += [(i,) for i in group]
            else:
                self.groups.append(group)
        pairs = sum(1 for group in self.groups if len(group) > 1)
        logger.info(
            "training items: %d utterances alone, %d joined in %d pairs",
            len(self.groups) - pairs, 2 * pairs, pairs,
        )  # fmt: skip

    def _fits(self, group: tuple[int, ...], stack_frames: int) -> bool:
        """Whether the joined ``group`` has frames enough for its transcript at every speed."""
        tokens = self.tokenizer.encode(self._text(group))
        examples = [self.base.examples[i] for i in group]
        slowest = min(sum(ex.features[s].shape[0] for ex in examples) for s in range(len(self.base.speed_factors)))
        return slowest // stack_frames >= ctc_min_frames(tokens)

    def _text(self, group: tuple[int, ...]) -> str:
        return " ".join(self.base.examples[i].text for i in group)

    def __len__(self) -> int:
        return len(self.groups)

    def num_frames(self, index: int) -> int:
        """Frames of item ``index`` at the unperturbed speed (used for bucketing)."""
        return sum(self.base.num_frames(i) for i in self.groups[index])

    def example(self, index: int, speed: int) -> Example:
        """Item ``index`` at speed index ``speed``: an example of the base, or a pair joined, its
        one feature tensor ``(T_1 + T_2, n_mels)`` at that speed."""
        group = self.groups[index]
        if len(group) == 1:
            example = self.base.examples[group[0]]
            return Example(example.id, (example.features[speed],), example.tokens, example.text, example.speaker)
        examples = [self.base.examples[i] for i in group]
        text = self._text(group)
        return Example(
            id=JOIN_SEPARATOR.join(ex.id for ex in examples),
            features=(torch.cat([ex.features[speed] for ex in examples]),),
            tokens=torch.tensor(self.tokenizer.encode(text), dtype=torch.long),
            text=text,
            speaker=examples[0].speaker,
        )

    def batches(self, batches: Sequence[Sequence[int]], speed_choices: Sequence[Sequence[int]]) -> Iterator[Batch]:
        """Collate ``batches`` (lists of item indices) in order, item ``i`` of batch ``b`` at
        speed index ``speed_choices[b][i]`` (the interface of :class:`FeatureDataset`)."""
        for indices, speeds in zip(batches, speed_choices):
            yield collate([self.example(i, s) for i, s in zip(indices, speeds)], [0] * len(indices))
