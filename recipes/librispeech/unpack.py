"""Unpacking a downloaded tarball without trusting it.

Extraction accepts only regular files and directories whose paths stay inside the destination
(no absolute paths, ``..``, links or devices), unpacks into a temporary folder beside the
destination and moves each new top folder into place with one rename, so an interrupted run
never leaves a half subset that looks whole.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from asr.errors import ASRError

logger = logging.getLogger(__name__)


class ArchiveError(ASRError):
    """A tarball cannot be unpacked: corrupt, truncated, or missing the expected folder."""


class UnsafeArchiveError(ArchiveError):
    """A tarball holds a member that could write outside its destination or is not a plain file."""


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
