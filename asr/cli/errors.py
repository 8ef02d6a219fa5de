"""How an ``asr`` command ends: one line on stderr and an exit status, never a traceback.

Status 2: the run could not start (bad usage, a bad model or flag value); 1: some input or the
output failed; 130: interrupted. A reader that closes the pipe early (``asr transcribe *.flac |
head -1``) ends the command quietly, as the Python documentation recommends for SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asr.cli.common import EXIT_ERROR, EXIT_SOME_FAILED, resolve_decoder
from asr.errors import ASRError, ConfigError

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl+C


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command ``args.func`` and turn every expected failure into its status."""
    try:
        resolve_decoder(args)
        return args.func(args)
    except ASRError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_SOME_FAILED
    except OSError as exc:  # the output end: a full disk, a folder that cannot be written
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush of what is still buffered
    does not fail on the closed pipe again (https://docs.python.org/3/library/signal.html,
    "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (captured by a caller): nothing to flush
        pass


def _describe(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return f"cannot write the output: {exc.strerror}" if exc.strerror else str(exc)


def is_file(text: str) -> bool:
    """Whether ``text`` names an existing file; False where it cannot be a path at all (longer
    than a file name may be, a NUL byte), so user text can be probed safely."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def read_text_argument(text: str) -> str:
    """``text`` itself, or the contents of the file it names.

    Raises:
        ConfigError: it names a file that cannot be read as UTF-8 text.
    """
    if not is_file(text):
        return text
    try:
        return Path(text).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{text}: cannot read the transcript ({reason})") from exc


def make_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) before any work.

    Raises:
        ConfigError: it, or a parent, exists and is not a folder, or cannot be created.
    """
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ConfigError(f"{directory}: exists and is not a folder; give another --output-dir") from exc
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create the output folder ({exc.strerror or exc})") from exc
    return directory
