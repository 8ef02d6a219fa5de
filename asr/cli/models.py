"""``asr models``: the bundled models, read from their metadata (no network is loaded).

For each: its name (``--model NAME``), kind, size on disk and weight precision, what it was
trained on and the word error rates its metadata records. Nothing is measured here and nothing is
filled in: a figure the metadata does not hold is not shown.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from asr.cli.common import EXIT_OK

MEGABYTE = 1e6
WRAP_COLUMNS = 100


@dataclass(frozen=True)
class BundledModel:
    """What ``asr models`` says about one bundled model."""

    name: str
    kind: str  # "bidirectional" (whole files) or "streaming" (unidirectional, live)
    model_bytes: int  # the checkpoint's files
    storage: str  # the stored weights' precision ("float32" or "float16"; asr.checkpoint.STORAGE_DTYPES)
    lm_bytes: int  # its own LM folder, if any
    trained_on: str | None
    recipe: str | None
    valid_wer: float | None  # greedy, on its validation set, at the epoch it was saved
    epoch: int | None
    lm_note: str | None  # how its LM's weights were tuned, with the WER that scored (decoding.json)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def describe(name: str, directory: Path) -> BundledModel:
    """Read ``directory``'s ``model.json`` (and ``lm/decoding.json``) into a :class:`BundledModel`."""
    from asr.checkpoint import DEFAULT_STORAGE, METADATA_FILE
    from asr.lm.bundled import DECODING_FILE, LM_DIR

    meta = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    provenance = meta.get("provenance", {})
    epoch = provenance.get("epoch")
    history = provenance.get("history") or [{}]
    saved = next((h for h in history if h.get("epoch") == epoch), history[-1])
    decoding = directory / LM_DIR / DECODING_FILE
    lm_note = json.loads(decoding.read_text(encoding="utf-8")).get("tuned_on") if decoding.is_file() else None
    lm_bytes = _folder_bytes(directory / LM_DIR)
    return BundledModel(
        name=name,
        kind="bidirectional" if meta["model"].get("bidirectional", True) else "streaming",
        model_bytes=_folder_bytes(directory) - lm_bytes,
        storage=meta.get("weights", {}).get("storage", DEFAULT_STORAGE),
        lm_bytes=lm_bytes,
        trained_on=provenance.get("attribution"),
        recipe=provenance.get("recipe"),
        valid_wer=saved.get("valid_wer"),
        epoch=epoch,
        lm_note=lm_note,
    )


def render(model: BundledModel) -> str:
    """Several lines about ``model``, the first ``NAME  KIND  SIZE``."""
    size = f"{model.model_bytes / MEGABYTE:.1f} MB {model.storage}" + (
        f" + LM {model.lm_bytes / MEGABYTE:.1f} MB" if model.lm_bytes else ""
    )
    lines = [f"{model.name}  ({model.kind}, {size})"]
    if model.valid_wer is not None:
        lines.append(f"WER {100 * model.valid_wer:.1f}% greedy on its validation set (epoch {model.epoch})")
    if model.lm_note:
        lines.append(f"with its own LM (--decoder beam): {model.lm_note}")
    if model.recipe:
        lines.append(f"recipe: {model.recipe}")
    if model.trained_on:
        lines.append(model.trained_on)
    indent = "    "
    body = [
        textwrap.fill(line, WRAP_COLUMNS, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)
        for line in lines[1:]
    ]
    return "\n".join([lines[0], *body])


def cmd_models(args: argparse.Namespace) -> int:
    from asr.api import BUNDLED_MODELS, bundled_model_path

    print("\n\n".join(render(describe(name, bundled_model_path(name))) for name in BUNDLED_MODELS))
    return EXIT_OK


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="the bundled models: name (for --model), kind, size, training data and recorded WER"
    )
    p.set_defaults(func=cmd_models)
