"""Fetching one file over HTTP so that it survives what goes wrong with 30 GB of downloads.

- a download goes to ``<name>.part`` and resumes from where it stopped with an HTTP ``Range``
  request (a server that ignores ``Range`` and answers ``200`` is handled by starting over);
- network errors are retried a bounded number of times with exponential back-off;
- the finished file is checked against its published checksum before it takes its final name,
  and a mismatch deletes the partial file and raises :class:`ChecksumError`.

:func:`download` is the entry point; :mod:`recipes.librispeech.download` uses it for the
corpus tarballs and the language-model files.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from asr.errors import ASRError, ConfigError

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
HTTP_PARTIAL_CONTENT = 206
HTTP_RANGE_NOT_SATISFIABLE = 416
HTTP_SERVER_ERRORS = range(500, 600)
CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


@dataclass(frozen=True)
class Digest:
    """An expected checksum: a :mod:`hashlib` algorithm name and the lower-case hex digest."""

    algorithm: str
    hexdigest: str


@dataclass(frozen=True)
class DownloadConfig:
    """How hard to try and what to keep."""

    # Attempts after the first failed one; 5 rides out a mirror restarting or a flaky link.
    retries: int = 5
    # Seconds before the first retry, doubled on each further one and capped at max_backoff.
    backoff: float = 2.0
    max_backoff: float = 60.0
    # Seconds a connect or a single read may stall before the attempt counts as failed.
    timeout: float = 60.0
    # Bytes per read; 1 MiB keeps the progress bar lively without many system calls.
    chunk_size: int = 1 << 20
    progress: bool = True
    # Keep each tarball after it has been unpacked (otherwise it is deleted).
    keep_archives: bool = False

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ConfigError(f"retries and back-off must not be negative, got {self}")
        if self.timeout <= 0 or self.chunk_size <= 0:
            raise ConfigError(f"timeout and chunk_size must be positive, got {self}")


class DownloadError(ASRError):
    """A file could not be fetched: the mirror refused it or the network failed on every attempt."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum."""

    def __init__(self, url: str, expected: Digest, actual: str) -> None:
        super().__init__(
            f"{url}: {expected.algorithm} mismatch, expected {expected.hexdigest}, got {actual} "
            "(the partial download was deleted)"
        )
        self.url, self.expected, self.actual = url, expected, actual


class _Truncated(Exception):
    """The server closed the connection before sending the announced number of bytes."""


# Failures worth another attempt; anything else (HTTP 4xx, a full disk) fails at once.
TRANSIENT_ERRORS = (
    urllib.error.URLError,
    ConnectionError,
    TimeoutError,
    http.client.HTTPException,
    _Truncated,
)


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's content with the named :mod:`hashlib` algorithm."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def _start_offset(response: http.client.HTTPResponse, url: str, offset: int) -> int:
    """Where the response body starts in the file: ``offset`` for a 206, ``0`` for a 200."""
    if response.status != HTTP_PARTIAL_CONTENT:
        if offset:
            logger.info("%s: server ignored the Range request, starting over", url)
        return 0
    match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if match is None or match.group(1) is None or int(match.group(1)) != offset:
        raise DownloadError(
            f"{url}: asked for bytes from {offset}, got Content-Range {response.headers.get('Content-Range')!r}"
        )
    return offset


def _range_already_complete(error: urllib.error.HTTPError, offset: int) -> bool:
    """Whether a 416 answer says the partial file already holds the whole resource."""
    match = CONTENT_RANGE.match(error.headers.get("Content-Range", "") if error.headers else "")
    return match is not None and match.group(2).isdigit() and int(match.group(2)) == offset


def _fetch(url: str, part: Path, config: DownloadConfig) -> None:
    """One attempt: append the rest of ``url`` to ``part`` (or rewrite it if the server restarts)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    if offset:
        logger.info("%s: resuming from byte %d", url, offset)
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=config.timeout)
    except urllib.error.HTTPError as error:
        if error.code == HTTP_RANGE_NOT_SATISFIABLE and _range_already_complete(error, offset):
            return
        if error.code == HTTP_RANGE_NOT_SATISFIABLE:
            logger.warning("%s: the server refused to resume at byte %d, starting over", url, offset)
            part.unlink()
            raise _Truncated(f"range from byte {offset} not satisfiable") from error
        if error.code in HTTP_SERVER_ERRORS:
            raise
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
    with response:
        start = _start_offset(response, url, offset)
        expected = _content_length(response)
        total = None if expected is None else start + expected
        received = 0
        with (
            open(part, "ab" if start else "wb") as out,
            tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=part.name, disable=not config.progress
            ) as bar,
        ):
            while chunk := response.read(config.chunk_size):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise _Truncated(f"connection closed after {received} of {expected} bytes")


def _retrying(url: str, part: Path, config: DownloadConfig) -> None:
    """Run :func:`_fetch` until it succeeds or ``config.retries`` further attempts have failed."""
    for attempt in range(config.retries + 1):
        try:
            _fetch(url, part, config)
            return
        except TRANSIENT_ERRORS as error:
            if attempt == config.retries:
                raise DownloadError(f"{url}: failed after {attempt + 1} attempts, last error: {error}") from error
            delay = min(config.backoff * 2**attempt, config.max_backoff)
            total = config.retries + 1
            logger.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.3g s", url, attempt + 1, total, error, delay
            )
            time.sleep(delay)


def download(url: str, target: Path, digest: Digest | None, config: DownloadConfig = DownloadConfig()) -> Path:
    """Download ``url`` to ``target``, resuming ``<target>.part`` if an earlier run left one.

    The file takes its final name only after its checksum matched. An existing ``target`` is
    checked again and returned at once if it matches; one that does not is downloaded afresh.

    Args:
        url: what to fetch (http or https).
        target: where the finished file goes; its folder is created.
        digest: the expected checksum, or None to skip the check (logged as a warning).
        config: retries, back-off, timeout and progress display.

    Returns:
        ``target``.

    Raises:
        ChecksumError: the finished download does not match ``digest`` (the ``.part`` is deleted).
        DownloadError: an HTTP client error, or network errors on every attempt.
    """
    if target.exists():
        if digest is None or file_digest(target, digest.algorithm) == digest.hexdigest:
            logger.info("%s: already downloaded", target)
            return target
        logger.warning("%s: does not match its %s, downloading it again", target, digest.algorithm)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    _retrying(url, part, config)
    if digest is None:
        logger.warning("%s: no published checksum, the download is not verified", url)
    else:
        actual = file_digest(part, digest.algorithm)
        if actual != digest.hexdigest:
            part.unlink()
            raise ChecksumError(url, digest, actual)
    part.replace(target)
    logger.info("%s: downloaded to %s", url, target)
    return target
