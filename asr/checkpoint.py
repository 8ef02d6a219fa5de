"""Self-describing checkpoints: safetensors weights plus a JSON sidecar.

A checkpoint is a directory::

    model.safetensors   the network's weights (no pickles anywhere)
    model.json          format name and version, SHA-256, size and storage precision of the
                        weights, and every setting needed to rebuild the model: features,
                        normalisation statistics, tokenizer, model config, training provenance

Weights are stored as float32, or as float16 to ship a model in half the bytes (``storage=
"float16"``, as whisper ships its models); either way they load into the float32 network, so a
float16 checkpoint computes in float32 from weights rounded to float16.

The tokenizer's ``"type"`` says its kind (see :mod:`asr.tokenizer`): ``"char"`` lists its tokens;
``"bpe"`` also holds the SentencePiece model itself (base64) and the model's SHA-256, verified
on loading like the weights' (see :mod:`asr.bpe`). Checkpoints written before BPE existed are
character checkpoints and load unchanged.

A directory is written under a temporary name and renamed into place, so a reader sees either
the old checkpoint or the new one, never a mixture (see :func:`atomic_directory`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asr.errors import CheckpointError, ConfigError
from asr.features import FeatureConfig, Normalizer
from asr.network import CTCModel, ModelConfig
from asr.tokenizer import Tokenizer, tokenizer_from_dict

logger = logging.getLogger(__name__)

FORMAT_NAME = "asr-ctc-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "model.json"
_HASH_BLOCK_BYTES = 1 << 20
# The precisions a checkpoint's floating-point weights may be stored in.
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# What a checkpoint stores by default, and what one written before the choice existed holds.
DEFAULT_STORAGE = "float32"

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Checkpoint:
    """Everything a checkpoint holds, rebuilt."""

    model: CTCModel
    features: FeatureConfig
    normalizer: Normalizer
    tokenizer: Tokenizer
    provenance: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` once the block succeeds.

    The old ``target`` is first renamed to ``<target>.old`` and removed after the new one is in
    place; :func:`resolve_checkpoint_dir` falls back to ``.old`` if a crash falls in between.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        _apply_umask(tmp)
        old = target.with_name(target.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _apply_umask(directory: Path) -> None:
    """Give ``directory`` and its files the usual permissions (mkdtemp and safetensors use 0700/0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)
    for path in directory.iterdir():
        os.chmod(path, 0o666 & ~umask)


def resolve_checkpoint_dir(path: PathLike) -> Path:
    """The checkpoint directory for ``path`` (the directory or either of its two files).

    Raises:
        CheckpointError: no checkpoint there, or the path cannot even be looked at (a name too
            long for the file system, a loop of links).
    """
    path = Path(path)
    try:
        return _checkpoint_dir(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be used as a checkpoint ({exc.strerror or exc})") from exc


def _checkpoint_dir(path: Path) -> Path:
    if path.is_file() and path.name in (WEIGHTS_FILE, METADATA_FILE):
        return path.parent
    if not path.exists():
        old = path.with_name(path.name + ".old")
        if old.is_dir():
            logger.warning("%s is missing; using %s left by an interrupted save", path, old)
            return old
        raise CheckpointError(f"{path}: no such checkpoint")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint (expected a directory holding {METADATA_FILE})")
    return path


def save_checkpoint(
    directory: PathLike,
    model: CTCModel,
    features: FeatureConfig,
    normalizer: Normalizer,
    tokenizer: Tokenizer,
    provenance: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
    storage: str = DEFAULT_STORAGE,
) -> Path:
    """Write ``model`` and its settings to ``directory`` atomically.

    ``extra_files`` (name -> bytes) are written into the same directory in the same atomic
    step; the trainer uses it for its resumption state. Every file is flushed to disk before the
    directory takes the place of the old one. ``storage`` names the precision of the stored
    floating-point weights (a key of :data:`STORAGE_DTYPES`): ``"float16"`` halves the file.

    Raises:
        ConfigError: ``storage`` is not a known precision.
        CheckpointError: the checkpoint cannot be written (a full disk, say); whatever
            ``directory`` held before is left as it was.
    """
    if storage not in STORAGE_DTYPES:
        raise ConfigError(f"unknown weight storage {storage!r}; choose from {', '.join(STORAGE_DTYPES)}")
    directory = Path(directory)
    try:
        _write_checkpoint(directory, model, features, normalizer, tokenizer, provenance, extra_files, storage)
    except (OSError, SafetensorError) as exc:  # safetensors reports its I/O errors as its own
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CheckpointError(
            f"cannot write checkpoint {directory}: {reason}; the previous one there is unchanged"
        ) from exc
    return directory


def _stored(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` as written to disk: contiguous on the CPU, floating point cast to ``dtype``."""
    tensor = tensor.detach().contiguous().cpu()
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _write_checkpoint(
    directory: Path,
    model: CTCModel,
    features: FeatureConfig,
    normalizer: Normalizer,
    tokenizer: Tokenizer,
    provenance: dict[str, Any] | None,
    extra_files: dict[str, bytes] | None,
    storage: str,
) -> None:
    with atomic_directory(directory) as tmp:
        dtype = STORAGE_DTYPES[storage]
        weights = {k: _stored(v, dtype) for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE))
        metadata = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "weights": {
                "file": WEIGHTS_FILE,
                "sha256": sha256_of(tmp / WEIGHTS_FILE),
                "bytes": (tmp / WEIGHTS_FILE).stat().st_size,
                "storage": storage,
            },
            "model": model.config.to_dict(),
            "features": features.to_dict(),
            "normalizer": normalizer.to_dict(),
            "tokenizer": tokenizer.to_dict(),
            "provenance": provenance or {},
        }
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        for path in tmp.iterdir():
            _fsync(path)


def read_metadata(directory: PathLike) -> dict[str, Any]:
    """The parsed, format-checked ``model.json`` of a checkpoint directory."""
    directory = resolve_checkpoint_dir(directory)
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint ({METADATA_FILE} is missing)")
    try:
        metadata = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc}); the file is truncated or corrupt") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{meta_path}: not a checkpoint of this toolkit (format is not {FORMAT_NAME!r})")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: checkpoint format version {version!r} is not supported "
            f"(this toolkit reads version {FORMAT_VERSION})"
        )
    return metadata


def load_tokenizer(path: PathLike) -> Tokenizer:
    """Only the tokenizer of a checkpoint (its weights are not read): to spell a lexicon, say.

    Raises:
        CheckpointError: the checkpoint is missing, of another format, or its tokenizer is invalid.
    """
    directory = resolve_checkpoint_dir(path)
    try:
        return tokenizer_from_dict(read_metadata(directory)["tokenizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory / METADATA_FILE}: invalid tokenizer ({exc})") from exc


def _build(cls, data: Any, what: str, meta_path: Path):
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: invalid {what} settings ({exc})") from exc


def _inside(directory: Path, name: object, meta_path: Path) -> Path:
    """``directory / name`` for a plain file name that stays inside ``directory``, even through
    symbolic links; anything else (a path, ``..``, a link out) is refused."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(
            f"{meta_path}: the weights file must be a plain file name in the checkpoint, got {name!r}"
        )
    path = directory / name
    if not path.resolve().is_relative_to(directory.resolve()):
        raise CheckpointError(f"{meta_path}: the weights file {name!r} leads outside the checkpoint directory")
    return path


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Rebuild a model from a checkpoint directory, verifying it first.

    Raises:
        CheckpointError: the directory is missing, the JSON is corrupt or of another format or
            version, the weights are truncated, edited or do not fit the model config.
    """
    directory = resolve_checkpoint_dir(path)
    metadata = read_metadata(directory)
    meta_path = directory / METADATA_FILE
    weights_info = metadata.get("weights", {})
    if not isinstance(weights_info, dict):
        raise CheckpointError(f"{meta_path}: 'weights' must be an object naming the weights file")
    weights_path = _inside(directory, weights_info.get("file", WEIGHTS_FILE), meta_path)
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: weights file is missing")
    size = weights_path.stat().st_size
    if size != weights_info.get("bytes"):
        raise CheckpointError(
            f"{weights_path}: weights are {size} bytes, the checkpoint says {weights_info.get('bytes')}; "
            "the file is truncated or was replaced"
        )
    if sha256_of(weights_path) != weights_info.get("sha256"):
        raise CheckpointError(
            f"{weights_path}: SHA-256 does not match {METADATA_FILE}; the weights were edited or corrupted"
        )
    config = _build(ModelConfig, metadata.get("model"), "model", meta_path)
    features = _build(FeatureConfig, metadata.get("features"), "feature", meta_path)
    try:
        normalizer = Normalizer.from_dict(metadata["normalizer"])
        tokenizer = tokenizer_from_dict(metadata["tokenizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: invalid normaliser or tokenizer ({exc})") from exc
    if len(normalizer.mean) != features.n_mels or tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"{meta_path}: normaliser, tokenizer and model sizes disagree")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: not a valid safetensors file ({exc})") from exc
    model = CTCModel(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights_path}: weights do not fit the model config ({exc})") from exc
    model.eval()
    return Checkpoint(model, features, normalizer, tokenizer, metadata.get("provenance", {}))
