"""A real ``asr serve`` for the serve tests: :func:`asr.serve.background.background_server`,
with a health check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from asr.serve.background import RunningServer, background_server
from asr.serve.config import ServeConfig


@dataclass(frozen=True)
class Running:
    url: str
    ws_url: str

    def healthy(self, headers: dict | None = None) -> bool:
        return httpx.get(f"{self.url}/health", headers=headers, timeout=10).json().get("status") == "ready"


@contextlib.contextmanager
def running_server(config: ServeConfig) -> Iterator[Running]:
    server: RunningServer
    with background_server(config) as server:
        yield Running(server.url, server.ws_url)
