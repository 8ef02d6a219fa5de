"""A real server (uvicorn on the loopback address, a free port) in a background thread, for
benchmarks and tests that talk to it over sockets as any client would."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from asr.serve.app import create_app
from asr.serve.config import LOOPBACK, ServeConfig

START_TIMEOUT_SECONDS = 120.0  # both models load at start, on a busy machine
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    ws_url: str  # ws://127.0.0.1:PORT
    thread: threading.Thread


@contextlib.contextmanager
def background_server(config: ServeConfig) -> Iterator[RunningServer]:
    """Serve ``config`` (its host and port ignored: loopback, a free port) until the block ends.

    Raises:
        RuntimeError: the server did not start within :data:`START_TIMEOUT_SECONDS`.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host=LOOPBACK, port=0, ws_max_size=config.max_message_bytes, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="asr-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the server did not start (see its log)")
        time.sleep(POLL_SECONDS)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(f"http://{LOOPBACK}:{port}", f"ws://{LOOPBACK}:{port}", thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
