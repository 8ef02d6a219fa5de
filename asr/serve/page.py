"""The dictation page's files, served from the package (plain HTML and JavaScript, no build)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from urllib.parse import urlencode

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css"}
"""The page's assets by suffix; nothing else under ``static/`` is served."""


@cache
def _read(name: str) -> bytes:
    return (resources.files("asr.serve") / "static" / name).read_bytes()


def page_html(api_key: str | None = None) -> str:
    """The page; with the key it was opened with (``?api_key=``), its assets are asked for with
    the key too, since a browser sends no ``Authorization`` header for them."""
    query = f"?{urlencode({'api_key': api_key})}" if api_key else ""
    return _read("index.html").decode("utf-8").replace("{{query}}", query)


def page_asset(name: str) -> tuple[bytes, str] | None:
    """``(content, media type)`` of ``static/<name>``, or None: only plain file names of known
    suffixes are looked up, so no request can reach outside the folder."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in ASSET_TYPES or "/" in name or "\\" in name or name.startswith("."):
        return None
    if name not in _names():
        return None
    return _read(name), ASSET_TYPES[suffix]


@cache
def _names() -> frozenset[str]:
    return frozenset(p.name for p in (resources.files("asr.serve") / "static").iterdir() if p.is_file())
