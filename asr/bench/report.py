"""Benchmark figures, each next to the reference measured in the same run, and their report.

A machine shared with other work speeds up and slows down from minute to minute, so absolute
figures say little; the ratio of a figure to a reference timed moments apart in the same
process says how close the toolkit is to what the hardware allows. Figures with a reference
are throughputs (higher is faster), so every ratio reads the same way: ours / reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from asr.files import write_text_atomic

WARMUP_CALLS = 1
SECTIONS = ("offline", "compute", "streaming", "features", "training", "quantization", "serve")


@dataclass(frozen=True)
class Figure:
    """One measured figure, optionally against a reference, with the bounds it must meet: on the
    ratio to the reference, or on the value itself when there is none."""

    section: str  # one of SECTIONS
    name: str
    value: float
    unit: str
    reference: str | None = None  # what the value is compared with
    reference_value: float | None = None
    floor: float | None = None  # the least acceptable ratio (or value, without a reference)
    ceiling: float | None = None  # the most acceptable ratio (or value)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference_value is None:
            return None
        return self.value / self.reference_value

    @property
    def meets_bounds(self) -> bool | None:
        """Whether the ratio (or the value) is within its floor and ceiling; None without either."""
        if self.floor is None and self.ceiling is None:
            return None
        measured = self.ratio if self.ratio is not None else self.value
        return (self.floor is None or measured >= self.floor) and (self.ceiling is None or measured <= self.ceiling)

    @property
    def bounds(self) -> str:
        parts = ([f"≥ {self.floor:g}"] if self.floor is not None else []) + (
            [f"≤ {self.ceiling:g}"] if self.ceiling is not None else []
        )
        return " and ".join(parts)

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "meets_bounds": self.meets_bounds}


def best_seconds(call: Callable[[], object], repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls after a warm-up call: on a shared machine the
    fastest run is the one least disturbed by other work, so it is the most repeatable."""
    return best_seconds_alternating([call], repeats)[0]


def best_seconds_alternating(calls: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """:func:`best_seconds` of each call, timed in turn (a, b, a, b, ...) so that a busy spell
    on the machine slows a figure and its reference alike instead of one of them."""
    for call in calls:
        for _ in range(WARMUP_CALLS):
            call()
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for index, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def figures_table(figures: Sequence[Figure]) -> str:
    """A Markdown table: section, measurement, value, reference, ratio, bounds."""
    rows = ["| section | measurement | value | reference | ratio | goal |", "|---|---|---|---|---|---|"]
    for f in figures:
        reference = f"{f.reference}: {_number(f.reference_value)} {f.unit}" if f.reference_value is not None else ""
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        goal = f.bounds and f.bounds + (" met" if f.meets_bounds else " **not met**")
        name = f"{f.name} ({f.note})" if f.note else f.name
        rows.append(f"| {f.section} | {name} | {_number(f.value)} {f.unit} | {reference} | {ratio} | {goal} |")
    return "\n".join(rows)


def write_json(figures: Sequence[Figure], path: Path, context: dict) -> None:
    """``{"context": ..., "figures": [...]}``: the machine and inputs, then every figure."""
    document = {"context": context, "figures": [f.to_dict() for f in figures]}
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
