"""What a user sees while KenLM compiles: the step, and the compile's percentage.

The first ``asr lm build`` compiles KenLM for about a minute. Its output goes to a log file;
the user is told (at WARNING level, which the command line shows) that the build is happening
and why, then how far the compile is, from the ``[ NN%]`` lines that CMake's Makefiles print,
at most one line per ``REPORT_EVERY_PERCENT`` points and ``MIN_REPORT_SECONDS`` seconds.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import TextIO

logger = logging.getLogger("asr.lm.kenlm")

PERCENT_LINE = re.compile(r"^\[\s*(\d{1,3})%\]")
REPORT_EVERY_PERCENT = 10
MIN_REPORT_SECONDS = 3.0
DONE_PERCENT = 100


class CompileProgress:
    """Turns compiler output lines into rate-limited ``KenLM compile: NN%`` notices.

    Args:
        report: called with each notice (default: a WARNING on the ``asr.lm.kenlm`` logger).
        clock: seconds, monotonic (a test passes its own).
    """

    def __init__(self, report: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.report = report or logger.warning
        self.clock = clock
        self.shown = 0  # the last percentage reported
        self.shown_at = clock()

    def line(self, text: str) -> None:
        match = PERCENT_LINE.match(text.strip())
        if match is None:
            return
        percent = min(int(match.group(1)), DONE_PERCENT)
        due = percent >= self.shown + REPORT_EVERY_PERCENT and self.clock() - self.shown_at >= MIN_REPORT_SECONDS
        if percent > self.shown and (due or percent == DONE_PERCENT):
            self.shown, self.shown_at = percent, self.clock()
            self.report(f"KenLM compile: {percent}%")


def run_logged(command: Sequence[str], log: TextIO, on_line: Callable[[str], None]) -> int:
    """Run ``command`` with its output (stdout and stderr) copied to ``log`` line by line and
    passed to ``on_line``; return its exit status."""
    with subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    ) as process:
        assert process.stdout is not None
        for text in process.stdout:
            log.write(text)
            on_line(text)
        log.flush()  # a failure is reported from the log file's tail
        return process.wait()
