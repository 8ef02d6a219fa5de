"""Property-based fuzzing (hypothesis) of the input boundaries: the audio loader, the text
normaliser, the manifest reader and the config loader. Whatever the input, each returns a result
or raises its own specific exception: never a crash, a hang or another exception type."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asr.audio import load_audio
from asr.errors import ASRError, AudioError, ConfigError, ManifestError
from asr.manifest import read_manifest
from asr.text import LETTERS, normalize_text
from asr.train.config import load_train_config

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".txt", "")
T = TypeVar("T")


def real_wav_bytes(seconds: float = 0.05) -> bytes:
    buffer = io.BytesIO()
    tone = 0.1 * np.sin(np.arange(int(16000 * seconds)) * 0.2).astype(np.float32)
    soundfile.write(buffer, tone, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def mangled(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    """``data`` with bytes overwritten at ``edits`` positions and truncated to ``cut``."""
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[: max(0, cut)])


def load_or_raise_naming_file(load: Callable[[Path], T], name: str, data: bytes, error: type[ASRError]) -> T | None:
    """``load`` of a temporary file ``name`` holding ``data``: its result, or None if it raised
    ``error`` naming the file. Any other exception fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return load(path)
        except error as exc:
            assert str(path) in str(exc)
            return None


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes_load_or_raise_audio_error(data, suffix):
    audio = load_or_raise_naming_file(load_audio, f"input{suffix}", data, AudioError)
    if audio is not None:
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=20),
    cut=st.integers(0, 2000),
)
@example(edits=[(34, 0)], cut=44)  # 0 bits per sample: FFmpeg finds a stream it has no decoder for
def test_damaged_wav_files_load_or_raise_audio_error(edits, cut):
    audio = load_or_raise_naming_file(load_audio, "damaged.wav", mangled(real_wav_bytes(), edits, cut), AudioError)
    if audio is not None:
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()


@FUZZ
@given(
    samples=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=600),
    rate=st.integers(1, 200_000),
)
def test_arrays_of_any_values_and_rates_load_or_raise_audio_error(samples, rate):
    try:
        audio = load_audio(np.array(samples, dtype=np.float32), sample_rate=16000) if rate else None
    except AudioError:
        return
    assert audio.dtype == np.float32 and np.isfinite(audio).all()


ALLOWED = set(LETTERS) | {" ", "'"}


@FUZZ
@given(text=st.text(max_size=300))
def test_normaliser_output_is_clean_and_stable(text):
    normalized = normalize_text(text)
    assert set(normalized) <= ALLOWED
    assert "  " not in normalized and normalized == normalized.strip()
    assert normalize_text(normalized) == normalized


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_manifest_bytes_read_or_raise_manifest_error(data):
    utterances = load_or_raise_naming_file(read_manifest, "m.jsonl", data, ManifestError)
    if utterances is not None:
        assert all(isinstance(u.text, str) and isinstance(u.audio, Path) for u in utterances)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    records=st.lists(st.dictionaries(st.sampled_from(["audio", "text", "id", "duration", "speaker", "x"]), JSON_VALUES))
)
def test_manifest_records_of_any_shape_read_or_raise_manifest_error(records):
    import json

    load_or_raise_naming_file(
        read_manifest, "m.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode(), ManifestError
    )


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_config_bytes_load_or_raise_config_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_bytes(data)
        with pytest.raises(ConfigError):  # no byte string is a complete training config
            load_train_config(path)


TOML_SCALARS = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=True) | st.booleans() | st.text(max_size=10)
SECTIONS = ("data", "model", "optim", "specaugment", "features", "tokenizer", "bogus")
KEYS = ("train_manifest", "valid_manifest", "stats", "hidden_size", "num_layers", "dropout", "peak_lr",
        "frequency_warp", "frontend", "stack_frames", "epochs", "n_mels", "kind", "x")  # fmt: skip


def toml_value(value) -> str:
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return json.dumps(value)


@FUZZ
@given(
    sections=st.dictionaries(
        st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(KEYS), TOML_SCALARS, max_size=5), max_size=5
    ),
    top=st.dictionaries(st.sampled_from(KEYS), TOML_SCALARS, max_size=3),
)
def test_configs_of_any_values_load_or_raise_config_error(sections, top):
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text("\n".join(lines) + "\n")
        try:
            load_train_config(path)
        except ConfigError:
            pass
