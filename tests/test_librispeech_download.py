"""The LibriSpeech download stage against a real HTTP server on 127.0.0.1 that speaks ``Range``."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import socket
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr.errors import ConfigError
from recipes.librispeech import download as dl
from recipes.librispeech import fetch, unpack

RATE = 16000
SPEAKER, CHAPTER = "84", "121123"
TRANSCRIPTS = {
    f"{SPEAKER}-{CHAPTER}-0000": "GO DO YOU HEAR",
    f"{SPEAKER}-{CHAPTER}-0001": "BUT IN LESS THAN FIVE MINUTES",
}
FAST = fetch.DownloadConfig(retries=3, backoff=0.01, max_backoff=0.05, timeout=2.0, chunk_size=512, progress=False)
RESOURCE = "/resources/12"


# ---------------------------------------------------------------- server


@dataclass
class ServerState:
    """What the test server serves and how it misbehaves; it records every request it saw."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    drops: int = 0  # this many responses are cut off after drop_after bytes
    drop_after: int = 0
    stalls: int = 0  # this many requests wait stall_seconds before answering
    stall_seconds: float = 0.0
    failures: int = 0  # this many requests get failure_status
    failure_status: int = 503
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, name: str, body: bytes) -> str:
        self.files[f"{RESOURCE}/{name}"] = body
        return hashlib.sha256(body).hexdigest()

    def take(self, counter: str) -> bool:
        with self.lock:
            left = getattr(self, counter)
            setattr(self, counter, max(left - 1, 0))
            return left > 0


class RangeHandler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-`` support (206, 416), plus the failures ServerState asks for."""

    def do_GET(self) -> None:
        state: ServerState = self.server.state
        with state.lock:
            state.requests.append((self.path, self.headers.get("Range")))
        if state.take("failures"):
            self.send_error(state.failure_status)
            return
        if state.take("stalls"):
            time.sleep(state.stall_seconds)
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = self._range_start(state, len(body))
        if start is None:
            return
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if state.take("drops"):
            payload = payload[: state.drop_after]
        self.wfile.write(payload)

    def _range_start(self, state: ServerState, size: int) -> int | None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match is None or not state.honour_range:
            self.send_response(200)
            return 0
        start = int(match.group(1))
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        return start

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out leaves a broken pipe behind; that is the point of the test


@pytest.fixture
def server():
    httpd = QuietServer(("127.0.0.1", 0), RangeHandler)
    httpd.state = ServerState(url=f"http://127.0.0.1:{httpd.server_address[1]}{RESOURCE}")
    # A short poll interval lets shutdown() return quickly instead of after the default 0.5 s.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


# ---------------------------------------------------------------- archives


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o755 if kind == tarfile.DIRTYPE else 0o644
    tar.addfile(info, io.BytesIO(data) if data else None)


def _flac(seed: int) -> tuple[bytes, np.ndarray]:
    samples = np.random.default_rng(seed).uniform(-0.5, 0.5, RATE // 10).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue(), samples


def _tarball(subset: str) -> bytes:
    """A LibriSpeech-layout tarball of ``subset``: two FLAC files, their transcript and README.TXT."""
    chapter = f"LibriSpeech/{subset}/{SPEAKER}/{CHAPTER}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for folder in ("LibriSpeech", f"LibriSpeech/{subset}", f"LibriSpeech/{subset}/{SPEAKER}", chapter):
            _add(tar, folder, kind=tarfile.DIRTYPE)
        _add(tar, "LibriSpeech/README.TXT", b"LibriSpeech ASR corpus\n")
        for seed, utterance in enumerate(TRANSCRIPTS):
            _add(tar, f"{chapter}/{utterance}.flac", _flac(seed)[0])
        lines = "".join(f"{utterance} {text}\n" for utterance, text in TRANSCRIPTS.items())
        _add(tar, f"{chapter}/{SPEAKER}-{CHAPTER}.trans.txt", lines.encode())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dev_clean() -> bytes:
    return _tarball("dev-clean")


def _serve_subset(server: ServerState, subset: str, body: bytes) -> dict[str, object]:
    return {subset: fetch.Digest("sha256", server.serve(f"{subset}.tar.gz", body))}


def _assert_subset(data: Path, subset: str) -> None:
    chapter = data / "LibriSpeech" / subset / SPEAKER / CHAPTER
    assert (data / "LibriSpeech" / subset / ".complete").is_file()
    assert (data / "LibriSpeech" / "README.TXT").read_text() == "LibriSpeech ASR corpus\n"
    for seed, utterance in enumerate(TRANSCRIPTS):
        audio, rate = soundfile.read(chapter / f"{utterance}.flac", dtype="float32")
        assert rate == RATE
        np.testing.assert_allclose(audio, _flac(seed)[1], atol=1 / 2**15)
    lines = (chapter / f"{SPEAKER}-{CHAPTER}.trans.txt").read_text().splitlines()
    assert dict(line.split(" ", 1) for line in lines) == TRANSCRIPTS


def _leftovers(data: Path) -> list[str]:
    """Everything in ``data`` apart from the unpacked corpus (tarballs, .part files, staging folders)."""
    return sorted(p.name for p in data.iterdir() if p.name != "LibriSpeech") if data.exists() else []


# ---------------------------------------------------------------- download and skip


def test_download_verifies_extracts_and_skips_second_run(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    data = tmp_path / "data"
    folders = dl.download_subsets(["dev-clean"], server.url, data, checksums, FAST)
    assert folders == [data / "LibriSpeech" / "dev-clean"]
    _assert_subset(data, "dev-clean")
    assert _leftovers(data) == []  # tarball deleted, no .part, no staging folder
    assert server.requests == [(f"{RESOURCE}/dev-clean.tar.gz", None)]

    assert dl.download_subsets(["dev-clean"], server.url + "/", data, checksums, FAST) == folders
    assert len(server.requests) == 1


def test_two_subsets_share_the_corpus_folder_and_keep_archives(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean) | _serve_subset(
        server, "dev-other", _tarball("dev-other")
    )
    data = tmp_path / "data"
    config = fetch.DownloadConfig(**{**FAST.__dict__, "keep_archives": True})
    dl.download_subsets(["dev-clean", "dev-other"], server.url, data, checksums, config)
    _assert_subset(data, "dev-clean")
    _assert_subset(data, "dev-other")
    assert _leftovers(data) == ["dev-clean.tar.gz", "dev-other.tar.gz"]


def test_unfinished_extraction_is_replaced(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    data = tmp_path / "data"
    stale = data / "LibriSpeech" / "dev-clean" / "stale.flac"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    dl.download_subsets(["dev-clean"], server.url, data, checksums, FAST)
    assert not stale.exists()
    _assert_subset(data, "dev-clean")


# ---------------------------------------------------------------- resuming and retrying


def test_dropped_connection_resumes_with_range(server, dev_clean, tmp_path, caplog):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    server.drops, server.drop_after = 1, len(dev_clean) // 3
    with caplog.at_level(logging.WARNING):
        dl.download_subsets(["dev-clean"], server.url, tmp_path, checksums, FAST)
    _assert_subset(tmp_path, "dev-clean")
    assert [r for _, r in server.requests] == [None, f"bytes={len(dev_clean) // 3}-"]
    assert "retrying" in caplog.text


def test_part_left_by_a_killed_run_is_resumed(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    (tmp_path / "dev-clean.tar.gz.part").write_bytes(dev_clean[:100])
    dl.download_subsets(["dev-clean"], server.url, tmp_path, checksums, FAST)
    _assert_subset(tmp_path, "dev-clean")
    assert [r for _, r in server.requests] == ["bytes=100-"]


def test_complete_part_answered_with_416_is_accepted(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    (tmp_path / "dev-clean.tar.gz.part").write_bytes(dev_clean)
    dl.download_subsets(["dev-clean"], server.url, tmp_path, checksums, FAST)
    _assert_subset(tmp_path, "dev-clean")
    assert [r for _, r in server.requests] == [f"bytes={len(dev_clean)}-"]


def test_server_ignoring_range_restarts_from_zero(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    server.honour_range = False
    server.drops, server.drop_after = 1, len(dev_clean) // 2
    dl.download_subsets(["dev-clean"], server.url, tmp_path, checksums, FAST)
    _assert_subset(tmp_path, "dev-clean")
    assert [r for _, r in server.requests] == [None, f"bytes={len(dev_clean) // 2}-"]


def test_server_errors_and_timeouts_are_retried(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    server.failures, server.stalls, server.stall_seconds = 1, 1, 0.5
    config = fetch.DownloadConfig(**{**FAST.__dict__, "timeout": 0.2})
    dl.download_subsets(["dev-clean"], server.url, tmp_path, checksums, config)
    _assert_subset(tmp_path, "dev-clean")
    assert len(server.requests) == 3  # 503, timed out, served


def test_client_error_is_not_retried(server, tmp_path):
    with pytest.raises(fetch.DownloadError, match=r"dev-clean\.tar\.gz: HTTP 404"):
        dl.download_subsets(["dev-clean"], server.url, tmp_path, {}, FAST)
    assert len(server.requests) == 1


def test_retries_exhausted_names_the_url(tmp_path, caplog):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/resources/12/dev-clean.tar.gz"
    with caplog.at_level(logging.WARNING), pytest.raises(fetch.DownloadError, match=re.escape(url)) as error:
        fetch.download(url, tmp_path / "dev-clean.tar.gz", None, FAST)
    assert f"after {FAST.retries + 1} attempts" in str(error.value)
    assert caplog.text.count("retrying") == FAST.retries
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- checksums


def test_checksum_mismatch_deletes_the_part(server, dev_clean, tmp_path):
    actual = server.serve("dev-clean.tar.gz", dev_clean)
    wrong = fetch.Digest("sha256", "0" * 64)
    with pytest.raises(fetch.ChecksumError) as error:
        dl.download_subsets(["dev-clean"], server.url, tmp_path, {"dev-clean": wrong}, FAST)
    message = str(error.value)
    assert f"{server.url}/dev-clean.tar.gz" in message and wrong.hexdigest in message and actual in message
    assert list(tmp_path.iterdir()) == []


def test_corrupt_tarball_from_an_earlier_run_is_downloaded_again(server, dev_clean, tmp_path):
    checksums = _serve_subset(server, "dev-clean", dev_clean)
    (tmp_path / "dev-clean.tar.gz").write_bytes(dev_clean[:-1])
    dl.download_subsets(["dev-clean"], server.url, tmp_path, checksums, FAST)
    _assert_subset(tmp_path, "dev-clean")
    assert [r for _, r in server.requests] == [None]


def test_missing_checksum_warns_but_downloads(server, dev_clean, tmp_path, caplog):
    server.serve("dev-clean.tar.gz", dev_clean)
    with caplog.at_level(logging.WARNING):
        dl.download_subsets(["dev-clean"], server.url, tmp_path, {"dev-clean": None}, FAST)
    _assert_subset(tmp_path, "dev-clean")
    assert "no published checksum" in caplog.text


def test_published_checksums_cover_every_subset():
    assert set(dl.SUBSETS) == {
        "train-clean-100",
        "train-clean-360",
        "train-other-500",
        "dev-clean",
        "dev-other",
        "test-clean",
        "test-other",
    }
    for digest in dl.CHECKSUMS.values():
        assert digest.algorithm == "sha256" and re.fullmatch(r"[0-9a-f]{64}", digest.hexdigest)
    for digest in dl.LM_FILES.values():
        assert digest.algorithm == "md5" and re.fullmatch(r"[0-9a-f]{32}", digest.hexdigest)


# ---------------------------------------------------------------- hostile and broken archives


def _hostile(kind: str, outside: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        _add(tar, "LibriSpeech/dev-clean/ok.txt", b"harmless\n")  # comes first: must not survive
        if kind == "absolute":
            _add(tar, str(outside / "evil.txt"), b"evil\n")
        elif kind == "dotdot":
            _add(tar, "LibriSpeech/../../outside/evil.txt", b"evil\n")
        elif kind == "symlink":
            _add(tar, "LibriSpeech/dev-clean/link", kind=tarfile.SYMTYPE, link=str(outside))
            _add(tar, "LibriSpeech/dev-clean/link/evil.txt", b"evil\n")
        elif kind == "hardlink":
            _add(tar, "LibriSpeech/dev-clean/hard", kind=tarfile.LNKTYPE, link=str(outside / "evil.txt"))
        elif kind == "device":
            _add(tar, "LibriSpeech/dev-clean/dev", kind=tarfile.CHRTYPE)
        elif kind == "fifo":
            _add(tar, "LibriSpeech/dev-clean/fifo", kind=tarfile.FIFOTYPE)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink", "device", "fifo"])
def test_hostile_archive_is_refused_and_nothing_is_written(kind, tmp_path):
    outside, data = tmp_path / "outside", tmp_path / "data"
    outside.mkdir()
    data.mkdir()
    archive = tmp_path / "dev-clean.tar.gz"
    archive.write_bytes(_hostile(kind, outside))
    with pytest.raises(unpack.UnsafeArchiveError, match="dev-clean.tar.gz: member"):
        unpack.extract(archive, data)
    assert list(data.iterdir()) == []
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_hostile_download_leaves_no_subset(server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    checksums = _serve_subset(server, "dev-clean", _hostile("symlink", outside))
    data = tmp_path / "data"
    with pytest.raises(unpack.UnsafeArchiveError):
        dl.download_subsets(["dev-clean"], server.url, data, checksums, FAST)
    assert not (data / "LibriSpeech").exists() and not dl.is_complete(data, "dev-clean")
    assert list(outside.iterdir()) == []


def test_truncated_archive_is_an_archive_error(dev_clean, tmp_path):
    archive = tmp_path / "dev-clean.tar.gz"
    archive.write_bytes(dev_clean[: len(dev_clean) // 2])
    with pytest.raises(unpack.ArchiveError, match="cannot unpack"):
        unpack.extract(archive, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_archive_without_the_subset_is_an_error(server, dev_clean, tmp_path):
    checksums = {"dev-other": fetch.Digest("sha256", server.serve("dev-other.tar.gz", dev_clean))}
    with pytest.raises(unpack.ArchiveError, match="has no LibriSpeech/dev-other/ folder"):
        dl.download_subsets(["dev-other"], server.url, tmp_path, checksums, FAST)
    assert not dl.is_complete(tmp_path, "dev-other")


# ---------------------------------------------------------------- arguments and LM files


def test_unknown_subset_lists_the_valid_ones(server, tmp_path):
    with pytest.raises(ConfigError, match="dev-cleen.*valid: train-clean-100, .*test-other"):
        dl.download_subsets(["dev-clean", "dev-cleen"], server.url, tmp_path, config=FAST)
    with pytest.raises(ConfigError, match="not an http"):
        dl.download_subsets(["dev-clean"], "openslr.org/resources/12", tmp_path, config=FAST)
    with pytest.raises(ConfigError, match="must not be negative"):
        fetch.DownloadConfig(retries=-1)
    assert server.requests == []


def test_lm_files(server, tmp_path):
    vocab = b"A\nABOUT\nZEBRA\n"
    server.files["/resources/11/librispeech-vocab.txt"] = vocab
    lm_url = dl.lm_mirror(server.url + "/")
    assert lm_url == server.url.removesuffix("/12") + "/11"
    checksums = {"librispeech-vocab.txt": fetch.Digest("md5", hashlib.md5(vocab).hexdigest())}
    paths = dl.download_lm_files(["librispeech-vocab.txt"], lm_url, tmp_path, checksums, FAST)
    assert paths == [tmp_path / "lm" / "librispeech-vocab.txt"] and paths[0].read_bytes() == vocab
    with pytest.raises(ConfigError, match="valid: 3-gram.arpa.gz"):
        dl.download_lm_files(["5-gram.arpa.gz"], lm_url, tmp_path, config=FAST)
    with pytest.raises(ConfigError, match="does not end in /12"):
        dl.lm_mirror("https://example.org/mirror")
