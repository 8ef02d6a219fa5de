"""How many torch threads a model computes on: the default, its check, and the block that sets it.

Nothing here imports torch at import time, so the CLI can read :data:`DEFAULT_THREADS` for its
help without it; :func:`torch_threads` imports torch when it runs, by which time a model has.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from asr.errors import ConfigError

# Threads torch uses while a model computes (None: whatever the process has). torch's default is
# one per core, and on a busy machine those threads wait on each other: on the 2-core development
# machine beside two training jobs, 20 minutes of speech took 3.2 s on one thread and 67 s on
# two (torch's default there), and 100 ms live chunks 3.5 ms at p95 against 68 ms. LSTMs of 256
# units gain little from more threads even on an idle machine, and one thread per model lets a
# program run several models side by side.
DEFAULT_THREADS = 1

_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then restore the count it found.

    torch's thread count is process-wide, not per model or per Python thread: while the block
    runs, other torch work in the process runs on ``threads`` too. Blocks may nest and overlap in
    several threads: the first to enter sets the count, and the last to leave restores it (an
    overlapping block asking for another count runs on the first one's). ``None`` changes nothing.
    """
    global _threads_users, _threads_before
    if threads is None:
        yield
        return
    import torch

    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
            if _threads_before != threads:
                torch.set_num_threads(threads)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0 and torch.get_num_threads() != _threads_before:
                torch.set_num_threads(_threads_before)


def check_threads(threads: int | None) -> None:
    """Raises ConfigError: ``threads`` is neither None nor a positive int."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
