"""LibriSpeech recipe, download stage: fetch the corpus tarballs from an OpenSLR mirror and unpack them.

Each subset is ``<mirror>/<subset>.tar.gz`` (OpenSLR resource 12) and unpacks to
``LibriSpeech/<subset>/<speaker>/<chapter>/`` plus a few ``LibriSpeech/*.TXT`` files that every
tarball repeats. Each tarball is fetched by :func:`recipes.librispeech.fetch.download`
(resumed, retried, checked against its published SHA-256) and unpacked by
:func:`recipes.librispeech.unpack.extract` (nothing but plain files and folders inside the
destination, moved into place with one rename); a finished subset is marked with
``LibriSpeech/<subset>/.complete`` and is neither downloaded nor unpacked again.

The official language-model files (OpenSLR resource 11) can be fetched the same way with
:func:`download_lm_files`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from asr.errors import ConfigError
from recipes.librispeech.fetch import Digest, DownloadConfig, download
from recipes.librispeech.unpack import ArchiveError, extract

logger = logging.getLogger(__name__)

# Top folder of every LibriSpeech tarball.
CORPUS_DIR = "LibriSpeech"
ARCHIVE_SUFFIX = ".tar.gz"
COMPLETE_MARKER = ".complete"
LM_DIR = "lm"
URL_SCHEMES = ("http", "https")
# OpenSLR numbers its resources: 12 is the LibriSpeech audio, 11 its language-model files.
AUDIO_RESOURCE = "12"
LM_RESOURCE = "11"
# Retries, back-off and progress display when the caller gives none (frozen, so one is shared).
DEFAULT_CONFIG = DownloadConfig()


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


def read_checksums(path: Path) -> dict[str, Digest]:
    """``sha256sum`` output (``<hex>  <subset>.tar.gz`` per line) as download checksums.

    Raises:
        ConfigError: a line is not a SHA-256 and a tarball name (names the file and line).
    """
    checksums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("*").endswith(ARCHIVE_SUFFIX):
            raise ConfigError(f"{path}:{number}: expected '<sha256>  <subset>{ARCHIVE_SUFFIX}', got {line!r}")
        checksums[fields[1].lstrip("*").removesuffix(ARCHIVE_SUFFIX)] = Digest("sha256", fields[0].lower())
    return checksums


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
    subset: str, mirror: str, data_dir: Path, digest: Digest | None, config: DownloadConfig = DEFAULT_CONFIG
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
    config: DownloadConfig = DEFAULT_CONFIG,
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
    config: DownloadConfig = DEFAULT_CONFIG,
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
