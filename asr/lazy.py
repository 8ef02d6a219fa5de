"""Names a package exports, each imported from the module that defines it when first used.

A package's ``__getattr__`` (PEP 562) built by :func:`lazy_exports` lets ``import asr`` and
``asr --help`` run without importing torch, while ``asr.load_model`` and the like work as if
imported up front.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``; ``exports`` maps each exported name to
    the submodule of ``package`` that defines it."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
