"""``asr serve``: an OpenAI-compatible transcription endpoint, live streams over WebSocket and
a dictation page, on FastAPI and uvicorn.

>>> from asr.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(api_key="secret"))   # models load when the app starts

``import asr.serve`` imports neither FastAPI nor torch: the command line reads
:class:`ServeConfig`'s defaults for its help.
"""

from importlib import import_module

_EXPORTS = {"ServeConfig": "config", "create_app": "app", "run_server": "app"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
