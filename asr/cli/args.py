"""Checked values for the ``asr`` flags: argparse ``type=`` functions and the help formatter.

Each number is checked where it is parsed, so a value out of range (``--threads 0``,
``--max-segment-seconds nan``) is a one-line usage error with status 2, before any model loads,
instead of a failure deep inside the run.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

# The shortest piece ``--max-segment-seconds`` may cut long audio into. Pieces much shorter than
# a word leave the model no context and end in empty text; one second holds a short word.
MIN_SEGMENT_SECONDS = 1.0


def _number(kind: type, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A ``type=`` for an integer in ``[minimum, maximum]`` (no upper bound if None)."""

    def parse(text: str) -> int:
        value = _number(int, text)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {bound}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its "invalid ... value" message
    return parse


def float_at_least(minimum: float, inclusive: bool = True) -> Callable[[str], float]:
    """A ``type=`` for a finite number at least ``minimum`` (above it, unless ``inclusive``)."""

    def parse(text: str) -> float:
        value = _number(float, text)
        if value < minimum or (value == minimum and not inclusive):
            bound = f"at least {minimum:g}" if inclusive else f"more than {minimum:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {bound}")
        return value

    parse.__name__ = "number"
    return parse


def finite_float(text: str) -> float:
    """A ``type=`` for any finite number (a weight, a score)."""
    return _number(float, text)


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = float_at_least(0.0, inclusive=False)
non_negative_float = float_at_least(0.0)


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every flag whose help does not already say its default.

    A flag without a value (``store_true``) or with ``None`` as its default has nothing to show;
    the help of such a flag says in words what happens without it.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, argparse.SUPPRESS) or isinstance(default, bool):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        if isinstance(default, list | tuple):
            shown = " ".join(map(str, default))
        else:
            shown = "%(default)r" if isinstance(default, str) else "%(default)s"
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help shows every default; its subcommands' parsers too
    (``add_subparsers`` makes them of the same class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:
        """One line and status 2, pointing at ``--help`` rather than printing the whole usage."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
