"""Getting KenLM's programs: found on PATH or in the cache, or downloaded, verified, unpacked and built."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import logging
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from asr.lm import kenlm as kenlm_build
from asr.lm.kenlm import APT_HINT, KENLM_SOURCE_SHA256, KenLMError
from asr.lm.kenlm_progress import CompileProgress, run_logged

# --- KenLM: finding, downloading, unpacking -----------------------------------------------------


@pytest.fixture
def http_dir(tmp_path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1: ``(directory, base URL)``."""
    root = tmp_path / "www"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> str:
    """Write a gzipped tarball of ``members`` (name -> content) and symlinks; return its SHA-256."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verify_and_extract(tmp_path, http_dir):
    root, url = http_dir
    sha = make_tarball(root / "src.tar.gz", {"kenlm-x/CMakeLists.txt": b"project(x)\n", "kenlm-x/lm/a.cc": b"int a;"})
    archive = kenlm_build.download_source(f"{url}/src.tar.gz", tmp_path / "dl.tar.gz", sha)
    source = kenlm_build.extract_source(archive, tmp_path / "src")
    assert source == tmp_path / "src" / "kenlm-x"
    assert (source / "lm" / "a.cc").read_bytes() == b"int a;"


def test_download_refuses_checksum_mismatch(tmp_path, http_dir):
    root, url = http_dir
    make_tarball(root / "src.tar.gz", {"kenlm-x/CMakeLists.txt": b"tampered\n"})
    dest = tmp_path / "dl.tar.gz"
    with pytest.raises(KenLMError, match="SHA-256 .* expected " + KENLM_SOURCE_SHA256):
        kenlm_build.download_source(f"{url}/src.tar.gz", dest)
    assert not dest.exists()


def test_download_reports_http_errors(tmp_path, http_dir):
    _, url = http_dir
    with pytest.raises(KenLMError, match="cannot download .*404"):
        kenlm_build.download_source(f"{url}/missing.tar.gz", tmp_path / "dl.tar.gz")


@pytest.mark.slow
def test_pinned_checksum_matches_the_sdist_on_pypi(tmp_path):
    archive = kenlm_build.download_source(kenlm_build.KENLM_SOURCE_URL, tmp_path / "dl.tar.gz")
    assert (kenlm_build.extract_source(archive, tmp_path / "src") / "lm" / "builder" / "lmplz_main.cc").is_file()


@pytest.mark.parametrize(
    "members, links, message",
    [
        ({"../evil": b"x"}, None, "leaves the target directory"),
        ({"kenlm/../../evil": b"x"}, None, "leaves the target directory"),
        ({"/abs": b"x"}, None, "absolute path"),
        ({"kenlm/CMakeLists.txt": b""}, {"kenlm/link": "/etc/passwd"}, "link"),
        ({"kenlm/README": b"no cmake here"}, None, "no CMakeLists.txt"),
    ],
)
def test_extract_refuses_hostile_or_foreign_archives(tmp_path, members, links, message):
    archive = tmp_path / "hostile.tar.gz"
    make_tarball(archive, members, links)
    dest = tmp_path / "out" / "src"
    with pytest.raises(KenLMError, match=message):
        kenlm_build.extract_source(archive, dest)
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()


def make_fake_install(directory: Path) -> None:
    (directory / "bin").mkdir(parents=True)
    for name in kenlm_build.BINARY_NAMES:
        (directory / "bin" / name).write_text("#!/bin/sh\n")
        (directory / "bin" / name).chmod(0o755)


def test_binaries_found_on_path_then_in_cache(tmp_path, monkeypatch):
    make_fake_install(tmp_path / "path")
    monkeypatch.setattr(kenlm_build.shutil, "which", lambda name: str(tmp_path / "path" / "bin" / name))
    on_path = kenlm_build.kenlm_binaries(cache_dir=tmp_path / "cache")
    assert on_path.lmplz == tmp_path / "path" / "bin" / "lmplz" and on_path.version is None

    monkeypatch.setattr(kenlm_build.shutil, "which", lambda name: None)
    make_fake_install(tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}")
    cached = kenlm_build.kenlm_binaries(cache_dir=tmp_path / "cache", source_url="http://127.0.0.1:9/unused")
    assert cached.build_binary.parent == tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}" / "bin"
    assert cached.version == kenlm_build.KENLM_VERSION


def test_missing_prerequisites_name_the_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(kenlm_build.shutil, "which", lambda name: None)
    with pytest.raises(KenLMError) as info:
        kenlm_build.kenlm_binaries(cache_dir=tmp_path, source_url="http://127.0.0.1:9/never-fetched")
    message = str(info.value)
    assert "cmake" in message and "C++ compiler" in message
    assert (
        "apt-get install cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev "
        "libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev" in message
    )
    assert APT_HINT in message


def test_missing_boost_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(kenlm_build, "_include_dirs", lambda: [tmp_path])
    monkeypatch.setattr(kenlm_build, "_library_dirs", lambda: [tmp_path])
    with pytest.raises(KenLMError, match="boost/program_options.hpp.*libboost_thread.*libboost-thread-dev"):
        kenlm_build.check_build_prerequisites()


# --- what the user sees during a build ----------------------------------------------------------


def test_a_build_from_source_is_announced_at_warning_level(tmp_path, monkeypatch, caplog):
    """The first build takes about a minute: say so where the command line shows it."""
    monkeypatch.setattr(kenlm_build, "_binaries_on_path", lambda: None)
    monkeypatch.setattr(kenlm_build, "check_build_prerequisites", lambda: None)
    monkeypatch.setattr(kenlm_build, "_build_into", lambda install_dir, url, jobs: make_fake_install(install_dir))
    with caplog.at_level(logging.WARNING, logger="asr.lm.kenlm"):
        kenlm_build.kenlm_binaries(tmp_path / "cache", jobs=1)
    notices = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(notices) == 1 and "building KenLM" in notices[0] and "about a minute, once" in notices[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asr.lm.kenlm"):
        kenlm_build.kenlm_binaries(tmp_path / "cache", jobs=1)  # cached now: nothing to say
    assert not caplog.records


def test_compile_progress_is_reported_by_percent_without_spamming():
    now = [0.0]
    shown: list[str] = []
    progress = CompileProgress(shown.append, clock=lambda: now[0])
    for percent in range(0, 101):
        now[0] += 0.5  # one make line every half second: 50 s in all
        progress.line(f"[{percent:3d}%] Building CXX object lm/CMakeFiles/kenlm.dir/x{percent}.cc.o")
        progress.line("some compiler warning")
    assert shown[-1] == "KenLM compile: 100%"
    percents = [int(s.split()[-1].rstrip("%")) for s in shown]
    assert percents == sorted(percents) and 5 <= len(shown) <= 11
    assert all(b - a >= 10 for a, b in zip(percents, percents[1:-1]))


def test_run_logged_copies_the_output_and_feeds_each_line(tmp_path):
    lines: list[str] = []
    script = "print('[ 50%] half'); import sys; print('oops', file=sys.stderr); sys.exit(3)"
    with open(tmp_path / "log", "w") as log:
        status = run_logged([sys.executable, "-c", script], log, lines.append)
    assert status == 3
    assert (tmp_path / "log").read_text() == "[ 50%] half\noops\n" and lines == ["[ 50%] half\n", "oops\n"]


# --- slow: real builds --------------------------------------------------------------------------

TINY_CMAKE_PROJECT = {
    "tiny/CMakeLists.txt": (
        b"cmake_minimum_required(VERSION 3.10)\nproject(tiny CXX)\n"
        b"set(EXECUTABLE_OUTPUT_PATH ${PROJECT_BINARY_DIR}/bin)\n"
        b"add_executable(lmplz main.cc)\nadd_executable(build_binary main.cc)\n"
    ),
    "tiny/main.cc": b"int main() { return 0; }\n",
}


@pytest.mark.slow
def test_build_from_source_once_for_concurrent_callers(tmp_path, http_dir, monkeypatch, caplog):
    """The whole build path on a tiny cmake project: two threads ask at once, one build happens."""
    root, url = http_dir
    sha = make_tarball(root / "tiny.tar.gz", TINY_CMAKE_PROJECT)
    monkeypatch.setattr(kenlm_build, "KENLM_SOURCE_SHA256", sha)
    monkeypatch.setattr(kenlm_build, "_binaries_on_path", lambda: None)
    monkeypatch.setenv(kenlm_build.SOURCE_URL_ENV, f"{url}/tiny.tar.gz")
    downloads = []
    real_download = kenlm_build.download_source
    monkeypatch.setattr(kenlm_build, "download_source", lambda *a: downloads.append(a) or real_download(*a))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(kenlm_build.kenlm_binaries(tmp_path / "cache", jobs=1)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1] and len(downloads) == 1
    install = tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}"
    assert json.loads((install / "build.json").read_text())["source_sha256"] == sha
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []
    shown = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert shown.count("KenLM compile: 100%") == 1 and sum("building KenLM" in m for m in shown) == 1


@pytest.mark.slow
def test_failed_compile_reports_the_log_and_installs_nothing(tmp_path, http_dir, monkeypatch):
    root, url = http_dir
    broken = dict(TINY_CMAKE_PROJECT, **{"tiny/main.cc": b"int main() { return syntax error; }\n"})
    monkeypatch.setattr(kenlm_build, "KENLM_SOURCE_SHA256", make_tarball(root / "tiny.tar.gz", broken))
    monkeypatch.setattr(kenlm_build, "_binaries_on_path", lambda: None)
    with pytest.raises(KenLMError, match="KenLM compile failed") as info:
        kenlm_build.kenlm_binaries(tmp_path / "cache", source_url=f"{url}/tiny.tar.gz", jobs=1)
    assert "syntax" in str(info.value)
    failure_log = tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}-build.log"
    assert "error" in failure_log.read_text()
    assert not (tmp_path / "cache" / f"kenlm-{kenlm_build.KENLM_VERSION}").exists()
