"""TOML configuration mapped onto frozen dataclasses; unknown keys are an error.

:func:`dump_toml` writes a config back, so that a program can hand a derived config to another
process (a recipe passing resolved paths to ``torchrun ... asr train --config``).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from asr.errors import ConfigError
from asr.files import read_error_message

T = TypeVar("T")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return from_dict(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], where) for v in value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and not (
        isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file.

    Raises:
        ConfigError: the file is missing, unreadable or not UTF-8 TOML.
    """
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            read_error_message(path, exc, "cannot read the config", missing="no such config file")
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc


def load_toml(cls: type[T], path: str | Path) -> T:
    """Read a TOML file into dataclass ``cls``.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 TOML, or does not fit ``cls``.
    """
    return from_dict(cls, read_toml(path), str(path))


# The key of a config that names the config it extends (see read_layered_toml).
BASE_KEY = "base"


def merge_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys put over it, table by table (neither is changed)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_layered_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file that may extend another: ``base = "other.toml"`` (a file in the
    same folder, which may itself have a base) gives every key the file does not set.

    A run that changes one setting of another run's config then says only what it changes.
    The base must sit in the same folder, so that relative paths mean the same in both.

    Raises:
        ConfigError: as :func:`read_toml`, or a base that is not a file name, or a cycle of bases.
    """
    path = Path(path)
    chain = [path.resolve()]
    data = read_toml(path)
    layers = [data]
    while BASE_KEY in data:
        name = data.pop(BASE_KEY)
        if not isinstance(name, str) or Path(name).name != name or not name:
            raise ConfigError(f"{chain[-1]}: {BASE_KEY} must be the name of a config in the same folder, got {name!r}")
        base = (chain[-1].parent / name).resolve()
        if base in chain:
            raise ConfigError(f"{path}: its bases form a cycle ({' -> '.join(p.name for p in [*chain, base])})")
        chain.append(base)
        data = read_toml(base)
        layers.append(data)
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged = merge_tables(merged, layer)
    return merged


def _toml_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    raise ConfigError(f"{where}: cannot write {value!r} to TOML")


def dump_toml(config: Any, table: str = "") -> str:
    """TOML text of dataclass ``config`` that :func:`load_toml` reads back to an equal object.

    ``None`` values are left out (their fields must default to ``None``); ``table`` is the
    dotted name of the table being written (empty for the top level).
    """
    lines = [f"[{table}]"] if table else []
    nested = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            nested.append(dump_toml(value, f"{table}.{f.name}" if table else f.name))
        elif value is not None:
            lines.append(f"{f.name} = {_toml_value(value, f.name)}")
    return "\n".join([*lines, *nested]) + "\n"
