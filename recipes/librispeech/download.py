"""LibriSpeech recipe, download stage: fetch the corpus tarballs from an OpenSLR mirror and unpack them.

Each subset is ``<mirror>/<subset>.tar.gz`` (OpenSLR resource 12) and unpacks to
``LibriSpeech/<subset>/<speaker>/<chapter>/`` plus a few ``LibriSpeech/*.TXT`` files that every
tarball repeats. The stage is meant to survive the things that go wrong with 30 GB of downloads:

- a download goes to ``<name>.part`` and resumes from where it stopped with an HTTP ``Range``
  request (a server that ignores ``Range`` and answers ``200`` is handled by starting over);
- network errors are retried a bounded number of times with exponential back-off;
- the finished file is checked against its published SHA-256 before it takes its final name, and
  a mismatch deletes the partial file and raises :class:`ChecksumError`;
- extraction accepts only regular files and directories whose paths stay inside the destination
  (no absolute paths, ``..``, links or devices), unpacks into a temporary folder beside the
  destination and moves the subset folder into place with one rename, so an interrupted run never
  leaves a half subset that looks whole;
- a finished subset is marked with ``LibriSpeech/<subset>/.complete`` and is neither downloaded
  nor unpacked again.

The official language-model files (OpenSLR resource 11) can be fetched the same way with
:func:`download_lm_files`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from tqdm import tqdm

from asr.errors import ASRError, ConfigError

logger = logging.getLogger(__name__)

# Top folder of every LibriSpeech tarball.
CORPUS_DIR = "LibriSpeech"
ARCHIVE_SUFFIX = ".tar.gz"
PART_SUFFIX = ".part"
COMPLETE_MARKER = ".complete"
LM_DIR = "lm"
URL_SCHEMES = ("http", "https")
# OpenSLR numbers its resources: 12 is the LibriSpeech audio, 11 its language-model files.
AUDIO_RESOURCE = "12"
LM_RESOURCE = "11"
HTTP_PARTIAL_CONTENT = 206
HTTP_RANGE_NOT_SATISFIABLE = 416
HTTP_SERVER_ERRORS = range(500, 600)
CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


@dataclass(frozen=True)
class Digest:
    """An expected checksum: a :mod:`hashlib` algorithm name and the lower-case hex digest."""

    algorithm: str
    hexdigest: str


def _sha256(hexdigest: str) -> Digest:
    return Digest("sha256", hexdigest)


def _md5(hexdigest: str) -> Digest:
    return Digest("md5", hexdigest)


# SHA-256 of each subset's tarball, as pinned by torchaudio
# (pytorch/audio, src/torchaudio/datasets/librispeech.py, ``_CHECKSUMS``). A subset mapped to
# None is downloaded unverified, with a warning.
CHECKSUMS: Mapping[str, Digest | None] = MappingProxyType(
    {
        "train-clean-100": _sha256("d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2"),
        "train-clean-360": _sha256("146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf"),
        "train-other-500": _sha256("ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2"),
        "dev-clean": _sha256("76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3"),
        "dev-other": _sha256("12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365"),
        "test-clean": _sha256("39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"),
        "test-other": _sha256("d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29"),
    }
)
SUBSETS = tuple(CHECKSUMS)

# The language-model files of OpenSLR resource 11. OpenSLR publishes only MD5 sums for them
# (copied from sdrobert/pytorch-database-prep, librispeech.py, ``FILE2MD5``); they guard against
# corruption, not tampering.
LM_FILES: Mapping[str, Digest | None] = MappingProxyType(
    {
        "3-gram.arpa.gz": _md5("74cbb837e582378c26c602e1c8cbcb9c"),
        "3-gram.pruned.1e-7.arpa.gz": _md5("9a0f1325bcaf3a0f7b7be4be10823c2a"),
        "3-gram.pruned.3e-7.arpa.gz": _md5("8f67ec741827742eee05799ab7605b50"),
        "4-gram.arpa.gz": _md5("6abdcd5b055bd482e4f9defe91d40408"),
        "librispeech-lexicon.txt": _md5("28f72663f6bfed7cd346283c064c315b"),
        "librispeech-lm-norm.txt.gz": _md5("c83c64c726a1aedfe65f80aa311de402"),
        "librispeech-vocab.txt": _md5("bf3cc7a50112831ed8b0afa40cae96a5"),
    }
)


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


class ArchiveError(ASRError):
    """A tarball cannot be unpacked: corrupt, truncated, or missing the expected folder."""


class UnsafeArchiveError(ArchiveError):
    """A tarball holds a member that could write outside its destination or is not a plain file."""


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


# ---------------------------------------------------------------- download


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


# ---------------------------------------------------------------- extraction


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse any member that is not a plain file or folder strictly inside the destination."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} climbs out with '..'")
    if not (member.isreg() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "special file"
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a {kind}; only files and folders are allowed")


def _merge_into(source: Path, dest: Path) -> None:
    """Move the tree ``source`` into ``dest``; a folder missing in ``dest`` moves with one rename."""
    for entry in sorted(source.iterdir()):
        target = dest / entry.name
        if entry.is_dir() and target.is_dir():
            _merge_into(entry, target)
        elif entry.is_dir() and target.exists():
            raise ArchiveError(f"{target}: a file is in the way of a folder of the archive")
        else:
            if target.is_dir():
                raise ArchiveError(f"{target}: a folder is in the way of a file of the archive")
            os.replace(entry, target)


def extract(archive: Path, dest: Path) -> None:
    """Unpack a (gzipped) tarball into ``dest``, refusing anything but plain files and folders.

    Members are checked one by one as the archive streams into a temporary folder inside
    ``dest``; the first unsafe one aborts the whole extraction and the temporary folder is
    removed, so nothing of the archive reaches ``dest``. Once everything is out, each folder that
    ``dest`` does not have yet (for LibriSpeech, the subset folder) moves into place with one rename.

    Raises:
        UnsafeArchiveError: a member has an absolute path, a ``..`` component, or is a link,
            device or FIFO (names the archive and the member).
        ArchiveError: the archive is corrupt or truncated.
    """
    dest.mkdir(parents=True, exist_ok=True)
    prefix = f".{archive.name}."
    for leftover in dest.glob(f"{prefix}*"):
        logger.warning("%s: removing the staging folder of an interrupted extraction", leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=dest))
    try:
        try:
            with tarfile.open(archive, "r|*") as tar:
                for member in tar:
                    _check_member(member, archive)
                    # The data filter re-checks paths and drops permission bits we do not want.
                    tar.extract(member, staging, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            if isinstance(error, tarfile.FilterError):
                raise UnsafeArchiveError(f"{archive}: {error}") from error
            raise ArchiveError(f"{archive}: cannot unpack: {error}") from error
        _merge_into(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------- stage


def _check_mirror(mirror: str) -> str:
    parts = urlsplit(mirror)
    if parts.scheme not in URL_SCHEMES or not parts.netloc:
        raise ConfigError(f"mirror {mirror!r} is not an http(s) URL such as https://www.openslr.org/resources/12")
    return mirror.rstrip("/")


def _check_subsets(subsets: Iterable[str]) -> list[str]:
    subsets = list(subsets)
    unknown = [name for name in subsets if name not in SUBSETS]
    if unknown:
        raise ConfigError(f"unknown LibriSpeech subset(s) {', '.join(unknown)}; valid: {', '.join(SUBSETS)}")
    return subsets


def subset_dir(data_dir: Path, subset: str) -> Path:
    """Where ``subset`` is unpacked: ``<data_dir>/LibriSpeech/<subset>``."""
    return data_dir / CORPUS_DIR / subset


def is_complete(data_dir: Path, subset: str) -> bool:
    """Whether ``subset`` was unpacked to the end (its ``.complete`` marker exists)."""
    return (subset_dir(data_dir, subset) / COMPLETE_MARKER).is_file()


def download_subset(
    subset: str, mirror: str, data_dir: Path, digest: Digest | None, config: DownloadConfig = DownloadConfig()
) -> Path:
    """Download and unpack one subset unless it is already complete; returns its folder.

    Raises:
        DownloadError, ChecksumError, ArchiveError: see :func:`download` and :func:`extract`.
    """
    folder = subset_dir(data_dir, subset)
    if is_complete(data_dir, subset):
        logger.info("%s: already extracted in %s, skipped", subset, folder)
        return folder
    archive = download(
        f"{_check_mirror(mirror)}/{subset}{ARCHIVE_SUFFIX}", data_dir / f"{subset}{ARCHIVE_SUFFIX}", digest, config
    )
    if folder.exists():
        logger.warning("%s: removing an unfinished extraction", folder)
        shutil.rmtree(folder)
    logger.info("%s: extracting", archive)
    extract(archive, data_dir)
    if not folder.is_dir():
        raise ArchiveError(f"{archive}: has no {CORPUS_DIR}/{subset}/ folder")
    (folder / COMPLETE_MARKER).touch()
    if not config.keep_archives:
        archive.unlink()
    logger.info("%s: ready in %s", subset, folder)
    return folder


def download_subsets(
    subsets: Iterable[str],
    mirror: str,
    data_dir: Path,
    checksums: Mapping[str, Digest | None] = CHECKSUMS,
    config: DownloadConfig = DownloadConfig(),
) -> list[Path]:
    """Download and unpack LibriSpeech subsets from an OpenSLR mirror, skipping finished ones.

    Args:
        subsets: names from :data:`SUBSETS`, e.g. ``["dev-clean", "test-clean"]``.
        mirror: base URL of OpenSLR resource 12, e.g. ``https://us.openslr.org/resources/12``.
        data_dir: tarballs are downloaded here and unpacked to ``<data_dir>/LibriSpeech/<subset>``.
        checksums: expected digest per subset; a missing or None entry is downloaded unverified.
        config: retries, back-off, timeout, progress display, whether to keep the tarballs.

    Returns:
        The subset folders, in the order asked for.

    Raises:
        ConfigError: an unknown subset name (lists the valid ones) or a mirror that is not a URL.
        DownloadError, ChecksumError, ArchiveError: see :func:`download` and :func:`extract`.
    """
    names = _check_subsets(subsets)
    _check_mirror(mirror)
    return [download_subset(name, mirror, data_dir, checksums.get(name), config) for name in names]


def lm_mirror(mirror: str) -> str:
    """The language-model resource (11) beside an audio mirror URL ending in ``/12``.

    Raises:
        ConfigError: ``mirror`` does not end in ``/12``, so the LM location cannot be guessed.
    """
    parts = urlsplit(_check_mirror(mirror))
    head, _, resource = parts.path.rpartition("/")
    if resource != AUDIO_RESOURCE:
        raise ConfigError(f"mirror {mirror!r} does not end in /{AUDIO_RESOURCE}; give the LM mirror explicitly")
    return urlunsplit(parts._replace(path=f"{head}/{LM_RESOURCE}"))


def download_lm_files(
    names: Iterable[str],
    mirror: str,
    data_dir: Path,
    checksums: Mapping[str, Digest | None] = LM_FILES,
    config: DownloadConfig = DownloadConfig(),
) -> list[Path]:
    """Download official LibriSpeech LM files (OpenSLR resource 11) to ``<data_dir>/lm/``.

    Args:
        names: file names from :data:`LM_FILES`, e.g. ``["librispeech-vocab.txt"]``.
        mirror: base URL of resource 11 (see :func:`lm_mirror`).

    Raises:
        ConfigError: an unknown file name (lists the valid ones) or a mirror that is not a URL.
        DownloadError, ChecksumError: see :func:`download`.
    """
    names = list(names)
    unknown = [name for name in names if name not in LM_FILES]
    if unknown:
        raise ConfigError(f"unknown LibriSpeech LM file(s) {', '.join(unknown)}; valid: {', '.join(LM_FILES)}")
    base = _check_mirror(mirror)
    return [download(f"{base}/{name}", data_dir / LM_DIR / name, checksums.get(name), config) for name in names]
