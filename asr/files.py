"""Files: writing them so that a crash never leaves a half-written one behind, and saying in
one message, naming the file, why one could not be read."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_error_message(
    name: str | os.PathLike,
    exc: OSError | UnicodeDecodeError,
    unreadable: str = "cannot be read",
    missing: str | None = None,
    directory: str | None = None,
    denied: str | None = None,
) -> str:
    """Why ``name`` could not be read, for the exception that reading it raised.

    ``<name>: not UTF-8 text (<reason> at byte <n>)`` for text that does not decode;
    ``<name>: <missing>``, ``<name>: <directory>`` or ``<name>: <denied>``, when given, for a
    file that does not exist, a directory, or a refused permission; ``<name>: <unreadable>
    (<the OS's reason>)`` for any other OSError. Callers raise their own exception type with it.
    """
    if isinstance(exc, UnicodeDecodeError):
        return f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    if missing is not None and isinstance(exc, FileNotFoundError):
        return f"{name}: {missing}"
    if directory is not None and isinstance(exc, IsADirectoryError):
        return f"{name}: {directory}"
    if denied is not None and isinstance(exc, PermissionError):
        return f"{name}: {denied}"
    return f"{name}: {unreadable} ({exc.strerror or exc})"
