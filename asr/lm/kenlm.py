"""KenLM's ``lmplz`` and ``build_binary``: found on PATH, in the user cache, or built from source.

The binaries are looked up in this order:

1. ``PATH`` (both programs must be there; their version is then unknown);
2. the cache, ``${XDG_CACHE_HOME:-~/.cache}/asr/kenlm-<version>/bin/``;
3. otherwise they are built into that cache: the source package of ``kenlm`` is downloaded
   (from PyPI unless ``ASR_KENLM_SOURCE_URL`` or ``source_url`` names a mirror), its SHA-256 is
   checked against the one pinned here whatever the URL, it is unpacked with every member
   checked (no absolute paths, no ``..``, no links), and cmake compiles the two programs.

A build runs in a temporary directory next to the cache and is renamed into place, so a reader
sees either no cache or a complete one. A lock file keeps two processes from building at once;
the second one waits and then uses the first one's result.

Building needs cmake, a C++ compiler and Boost (program_options, system, thread and
unit_test_framework, which KenLM's CMakeLists.txt requires even when its tests are not built).
zlib, bzip2 and xz only add support for compressed ARPA files. On Debian or Ubuntu::

    apt-get install cmake g++ libboost-program-options-dev libboost-system-dev \\
        libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from asr.errors import ASRError
from asr.lm.kenlm_progress import CompileProgress, run_logged

logger = logging.getLogger(__name__)

KENLM_VERSION = "0.3.0"
KENLM_SOURCE_URL = (
    "https://files.pythonhosted.org/packages/02/6e/f4e159cef39ea4ef2244b4aa32857d447d60a5d0ee269e1b1f8d3723c03e/"
    f"kenlm-{KENLM_VERSION}.tar.gz"
)
KENLM_SOURCE_SHA256 = "c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8"
SOURCE_URL_ENV = "ASR_KENLM_SOURCE_URL"
CACHE_ENV = "XDG_CACHE_HOME"
CACHE_SUBDIR = "asr"
LMPLZ = "lmplz"
BUILD_BINARY = "build_binary"
BINARY_NAMES = (LMPLZ, BUILD_BINARY)
BUILD_INFO_FILE = "build.json"

APT_PACKAGES = (
    "cmake", "g++", "libboost-program-options-dev", "libboost-system-dev", "libboost-thread-dev",
    "libboost-test-dev", "zlib1g-dev", "libbz2-dev", "liblzma-dev",
)  # fmt: skip
APT_HINT = "apt-get install " + " ".join(APT_PACKAGES)

CXX_COMPILERS = ("c++", "g++", "clang++")
# Boost parts that KenLM's find_package(Boost ... REQUIRED COMPONENTS ...) needs: header, library.
BOOST_COMPONENTS = (
    ("boost/program_options.hpp", "boost_program_options"),
    ("boost/system/error_code.hpp", "boost_system"),
    ("boost/thread.hpp", "boost_thread"),
    ("boost/test/unit_test.hpp", "boost_unit_test_framework"),
)
# Optional: without them KenLM still builds, but cannot read compressed ARPA files.
COMPRESSION_HEADERS = (("zlib.h", "zlib1g-dev"), ("bzlib.h", "libbz2-dev"), ("lzma.h", "liblzma-dev"))
SYSTEM_INCLUDE_DIRS = ("/usr/include", "/usr/local/include", "/opt/homebrew/include", "/opt/local/include")
SYSTEM_LIBRARY_DIRS = ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/opt/homebrew/lib", "/opt/local/lib")
MULTIARCH_LIBRARY_GLOB = "/usr/lib/*-linux-*"
LIBRARY_SUFFIXES = (".so", ".a", ".dylib")

DOWNLOAD_TIMEOUT_SECONDS = 60
DOWNLOAD_CHUNK_BYTES = 1 << 16
# The sdist is about 0.4 MB; anything far larger is not it, so stop reading before the disk fills.
MAX_SOURCE_BYTES = 64 << 20
LOG_TAIL_LINES = 30


class KenLMError(ASRError):
    """KenLM's programs cannot be found or built: a prerequisite is missing, or the download,
    its checksum, the unpacking or the compilation failed."""


@dataclass(frozen=True)
class KenLMBinaries:
    """Paths of KenLM's programs; ``version`` is None when they came from PATH."""

    lmplz: Path
    build_binary: Path
    version: str | None = None


def default_cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/asr``, the root of the toolkit's caches."""
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache"
    return Path(base) / CACHE_SUBDIR


def kenlm_binaries(
    cache_dir: Path | None = None, source_url: str | None = None, jobs: int | None = None
) -> KenLMBinaries:
    """Find KenLM's ``lmplz`` and ``build_binary``, building them into the cache if needed.

    Args:
        cache_dir: cache root (default :func:`default_cache_dir`); the programs live in
            ``<cache_dir>/kenlm-<version>/bin``.
        source_url: where to download the ``kenlm`` source package (default: the environment
            variable ``ASR_KENLM_SOURCE_URL``, else PyPI). Its SHA-256 must match the pinned one.
        jobs: parallel compile jobs (default: all CPUs).

    Raises:
        KenLMError: a build prerequisite is missing (the message names the Debian packages), or
            downloading, verifying, unpacking or compiling the source failed.
    """
    found = _binaries_on_path()
    if found is not None:
        return found
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    install_dir = root / f"kenlm-{KENLM_VERSION}"
    cached = _binaries_in(install_dir)
    if cached is not None:
        return cached
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f"kenlm-{KENLM_VERSION}.lock"):
        cached = _binaries_in(install_dir)  # another process may have built it while we waited
        if cached is not None:
            return cached
        check_build_prerequisites()
        url = source_url or os.environ.get(SOURCE_URL_ENV) or KENLM_SOURCE_URL
        logger.warning(
            "building KenLM %s from source into %s: about a minute, once (later runs use it)",
            KENLM_VERSION,
            install_dir,
        )
        _build_into(install_dir, url, jobs or os.cpu_count() or 1)
    built = _binaries_in(install_dir)
    assert built is not None, f"a finished build left no programs in {install_dir}"
    return built


def _binaries_on_path() -> KenLMBinaries | None:
    paths = [shutil.which(name) for name in BINARY_NAMES]
    if not all(paths):
        return None
    logger.info("using KenLM from PATH: %s", ", ".join(paths))
    return KenLMBinaries(lmplz=Path(paths[0]), build_binary=Path(paths[1]))


def _binaries_in(install_dir: Path) -> KenLMBinaries | None:
    paths = [install_dir / "bin" / name for name in BINARY_NAMES]
    if not all(p.is_file() and os.access(p, os.X_OK) for p in paths):
        return None
    return KenLMBinaries(lmplz=paths[0], build_binary=paths[1], version=KENLM_VERSION)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``path`` for the duration of the block."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is building KenLM; waiting for %s", path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- prerequisites ------------------------------------------------------------------------------


def check_build_prerequisites() -> None:
    """Raise :class:`KenLMError` naming the packages to install if cmake, a C++ compiler or Boost
    is missing; log a warning if the optional compression libraries are missing."""
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if _cxx_compiler() is None:
        missing.append("a C++ compiler (" + ", ".join(CXX_COMPILERS) + ")")
    include_dirs, library_dirs = _include_dirs(), _library_dirs()
    for header, library in BOOST_COMPONENTS:
        if not _has_header(header, include_dirs):
            missing.append(f"header {header}")
        if not _has_library(library, library_dirs):
            missing.append(f"library lib{library}")
    if missing:
        raise KenLMError(
            f"cannot build KenLM {KENLM_VERSION}: missing " + "; ".join(missing) + f". On Debian/Ubuntu: {APT_HINT}"
        )
    absent = [package for header, package in COMPRESSION_HEADERS if not _has_header(header, include_dirs)]
    if absent:
        logger.warning("building KenLM without compressed-ARPA support; install %s to add it", " ".join(absent))


def _cxx_compiler() -> str | None:
    candidates = ([os.environ["CXX"]] if os.environ.get("CXX") else []) + list(CXX_COMPILERS)
    return next((path for path in map(shutil.which, candidates) if path), None)


def _env_dirs(*names: str) -> list[Path]:
    return [Path(d) for name in names for d in os.environ.get(name, "").split(os.pathsep) if d]


def _include_dirs() -> list[Path]:
    boost_root = _env_dirs("BOOST_ROOT")
    return (
        _env_dirs("BOOST_INCLUDEDIR", "CPLUS_INCLUDE_PATH", "CPATH")
        + [d / "include" for d in boost_root]
        + [Path(d) for d in SYSTEM_INCLUDE_DIRS]
    )


def _library_dirs() -> list[Path]:
    boost_root = _env_dirs("BOOST_ROOT")
    multiarch = sorted(Path("/").glob(MULTIARCH_LIBRARY_GLOB.lstrip("/")))
    return (
        _env_dirs("BOOST_LIBRARYDIR", "LIBRARY_PATH")
        + [d / "lib" for d in boost_root]
        + multiarch
        + [Path(d) for d in SYSTEM_LIBRARY_DIRS]
    )


def _has_header(header: str, include_dirs: list[Path]) -> bool:
    return any((d / header).is_file() for d in include_dirs)


def _has_library(name: str, library_dirs: list[Path]) -> bool:
    """True if some ``lib<name>*.so|.a|.dylib`` (versioned or ``-mt`` variants too) exists."""
    for directory in library_dirs:
        for path in directory.glob(f"lib{name}*"):
            if any(suffix in LIBRARY_SUFFIXES for suffix in path.suffixes):
                return True
    return False


# --- download and unpack ------------------------------------------------------------------------


def download_source(url: str, dest: Path, sha256: str = KENLM_SOURCE_SHA256) -> Path:
    """Download ``url`` to ``dest`` and check its SHA-256; a mismatching file is deleted.

    Raises:
        KenLMError: the download failed, exceeded ``MAX_SOURCE_BYTES``, or its SHA-256 differs
            from ``sha256``.
    """
    logger.info("downloading %s", url)
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, open(dest, "wb") as out:
            while chunk := response.read(DOWNLOAD_CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_SOURCE_BYTES:
                    raise KenLMError(f"{url} is larger than {MAX_SOURCE_BYTES} bytes; it is not the KenLM source")
                digest.update(chunk)
                out.write(chunk)
    except (OSError, http.client.HTTPException) as exc:  # URLError and HTTPError are OSErrors
        dest.unlink(missing_ok=True)
        raise KenLMError(f"cannot download the KenLM source from {url}: {exc}") from exc
    except KenLMError:
        dest.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != sha256:
        dest.unlink(missing_ok=True)
        raise KenLMError(
            f"SHA-256 of {url} is {digest.hexdigest()}, expected {sha256}: refusing to build from it "
            f"(wrong file, or tampered with)"
        )
    logger.info("downloaded %d bytes, SHA-256 verified", size)
    return dest


def extract_source(archive: Path, dest: Path) -> Path:
    """Unpack the tarball ``archive`` into ``dest`` and return the directory holding CMakeLists.txt.

    Every member is checked first: absolute paths, ``..`` components, links and special files are
    refused, and tarfile's ``data`` filter guards the extraction itself.

    Raises:
        KenLMError: the archive is unreadable, holds a refused member, or holds no CMakeLists.txt.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                _check_member(member, archive)
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise KenLMError(f"cannot unpack {archive}: {exc}") from exc
    return _source_root(dest, archive)


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    path = PurePosixPath(member.name)
    if path.is_absolute():
        raise KenLMError(f"{archive} holds a member with an absolute path, {member.name!r}: refusing it")
    if ".." in path.parts:
        raise KenLMError(f"{archive} holds a member that leaves the target directory, {member.name!r}: refusing it")
    if member.issym() or member.islnk():
        raise KenLMError(f"{archive} holds a link, {member.name!r} -> {member.linkname!r}: refusing it")
    if not (member.isfile() or member.isdir()):
        raise KenLMError(f"{archive} holds a special file, {member.name!r}: refusing it")


def _source_root(dest: Path, archive: Path) -> Path:
    candidates = [dest] + sorted(p for p in dest.iterdir() if p.is_dir())
    for candidate in candidates:
        if (candidate / "CMakeLists.txt").is_file():
            return candidate
    raise KenLMError(f"{archive} holds no CMakeLists.txt at its top level; it is not the KenLM source")


# --- build --------------------------------------------------------------------------------------


def _build_into(install_dir: Path, url: str, jobs: int) -> None:
    """Download, verify, compile and atomically install KenLM's programs into ``install_dir``."""
    work = Path(tempfile.mkdtemp(prefix=f".{install_dir.name}.build-", dir=install_dir.parent))
    try:
        archive = download_source(url, work / f"kenlm-{KENLM_VERSION}.tar.gz", KENLM_SOURCE_SHA256)
        source = extract_source(archive, work / "src")
        staged = work / "install"
        (staged / "bin").mkdir(parents=True)
        started = time.monotonic()
        failure_log = install_dir.with_name(install_dir.name + "-build.log")
        built_bin = _compile(source, work / "build", jobs, staged / "build.log", failure_log)
        for name in BINARY_NAMES:
            shutil.copy2(built_bin / name, staged / "bin" / name)
        seconds = time.monotonic() - started
        _write_build_info(staged, url, jobs, seconds)
        _publish(staged, install_dir)
        logger.warning("built KenLM %s in %.0f s into %s", KENLM_VERSION, seconds, install_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compile(source: Path, build: Path, jobs: int, log_path: Path, failure_log: Path) -> Path:
    """Configure and build ``lmplz`` and ``build_binary``; return the directory holding them.

    The output of cmake and the compiler goes to ``log_path``; on failure it is copied to
    ``failure_log``, which outlives the temporary build directory.
    """
    configure = ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
    compile_ = ["cmake", "--build", str(build), "--target", *BINARY_NAMES, "-j", str(jobs)]
    with open(log_path, "w", encoding="utf-8") as log:
        for step, command in (("configure", configure), ("compile", compile_)):
            logger.warning("KenLM %s (cmake)", step)
            logger.info("KenLM %s: %s", step, " ".join(command))
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            if run_logged(command, log, CompileProgress().line) != 0:
                _raise_build_failure(step, log_path, failure_log)
    return build / "bin"


def _raise_build_failure(step: str, log_path: Path, failure_log: Path) -> None:
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    shutil.copyfile(log_path, failure_log)
    hint = f" Boost was not found; on Debian/Ubuntu: {APT_HINT}." if any("Boost" in line for line in lines) else ""
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    raise KenLMError(f"KenLM {step} failed (full log: {failure_log}).{hint}\n{tail}")


def _write_build_info(staged: Path, url: str, jobs: int, seconds: float) -> None:
    info = {
        "version": KENLM_VERSION,
        "source_url": url,
        "source_sha256": KENLM_SOURCE_SHA256,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
        "jobs": jobs,
    }
    (staged / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _publish(staged: Path, install_dir: Path) -> None:
    """Rename ``staged`` to ``install_dir`` (same file system, so readers never see half of it)."""
    if install_dir.exists():  # an incomplete leftover: we hold the lock, so nobody else uses it
        shutil.rmtree(install_dir)
    os.rename(staged, install_dir)
