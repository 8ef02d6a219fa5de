"""Concurrent transcription requests, batched through :meth:`Model.transcribe_batch`.

Requests wait in a queue; a worker thread takes the first, collects whatever else arrives
within ``wait`` seconds (at most ``max_batch``), and runs each group that shares options as one
``transcribe_batch`` call, so many small files cost what one batch costs. Audio longer than
``long_seconds`` goes to a second lane with its own worker: a long file then never holds the
short ones behind it for its whole length. Results go back to the event loop that asked.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from asr.api import Model, TranscribeOptions
from asr.errors import ASRError
from asr.transcript import Transcript

logger = logging.getLogger(__name__)

# Requests per batch: with 60 s of padded audio per forward pass (asr.api.DEFAULT_BATCH_SECONDS)
# more gains nothing on CPUs, and a bounded batch bounds what a late request waits behind.
MAX_BATCH = 32
LANES = ("short", "long")


@dataclass(frozen=True)
class Job:
    waveform: np.ndarray  # (T,) float32 at the model's rate
    options: TranscribeOptions
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _deliver(job: Job, result: Transcript | BaseException) -> None:
    """Hand ``result`` to the request's future in its own loop (unless the client left)."""

    def settle() -> None:
        if job.future.done():  # cancelled: the client went away
            return
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)

    job.loop.call_soon_threadsafe(settle)


class BatchQueue:
    """Two lanes (short and long audio) of batched transcription, each with a worker thread."""

    def __init__(self, model: Model, wait: float, long_seconds: float, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self.wait = wait
        self.max_batch = max_batch
        self.long_samples = int(long_seconds * model.sample_rate)
        self._queues = {lane: queue.Queue() for lane in LANES}
        self._threads = [
            threading.Thread(target=self._work, args=(self._queues[lane],), name=f"asr-serve-{lane}", daemon=True)
            for lane in LANES
        ]
        self.batches = 0  # batches run so far (tests and logs read it)
        for thread in self._threads:
            thread.start()

    async def transcribe(self, waveform: np.ndarray, options: TranscribeOptions) -> Transcript:
        """The transcript of a ``(T,)`` waveform at the model's rate, batched with its neighbours.

        Raises:
            ASRError: the model could not use the options (an LM that cannot be loaded).
        """
        loop = asyncio.get_running_loop()
        job = Job(waveform, options, loop.create_future(), loop)
        lane = "long" if waveform.size > self.long_samples else "short"
        self._queues[lane].put(job)
        return await job.future

    def close(self) -> None:
        """Stop the workers once the jobs already queued are done."""
        for lane in LANES:
            self._queues[lane].put(None)
        for thread in self._threads:
            thread.join()

    def _collect(self, jobs: queue.Queue, first: Job) -> tuple[list[Job], bool]:
        """``first`` and what else arrives within :attr:`wait`; whether the lane was closed."""
        batch = [first]
        deadline = time.monotonic() + self.wait
        while len(batch) < self.max_batch:
            try:
                job = jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _work(self, jobs: queue.Queue) -> None:
        closed = False
        while not closed:
            first = jobs.get()
            if first is None:
                return
            batch, closed = self._collect(jobs, first)
            groups: dict[TranscribeOptions, list[Job]] = {}
            for job in batch:
                groups.setdefault(job.options, []).append(job)
            for options, group in groups.items():
                self._run(options, group)

    def _run(self, options: TranscribeOptions, group: list[Job]) -> None:
        started = time.perf_counter()
        try:
            results = self.model.transcribe_batch([job.waveform for job in group], options=options)
        except (ASRError, RuntimeError, ValueError) as exc:
            logger.warning("batch of %d failed: %s", len(group), exc)
            results = [exc] * len(group)
        self.batches += 1
        logger.info("batch of %d in %.3f s", len(group), time.perf_counter() - started)
        for job, result in zip(group, results):
            _deliver(job, result)
