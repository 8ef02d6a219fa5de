"""No code path loads pickles (or other code-carrying formats) from files: checked in the source.

Checkpoints, training state, statistics and configs are JSON, TOML and safetensors; the loaders'
own tests (tests/test_checkpoint.py) show that a pickle posing as weights is refused unread.
This test keeps it so: a call that could unpickle anywhere in the toolkit fails it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("asr", "streaming", "recipes")
# Calls that run code stored in a file or a byte string.
UNSAFE_CALLS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("dill", "load"), ("dill", "loads"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"), ("joblib", "load"), ("marshal", "load"), ("marshal", "loads"),
    ("shelve", "open"), ("torch", "load"), ("jit", "load"), ("yaml", "load"), ("yaml", "unsafe_load"),
}  # fmt: skip


def unsafe_calls(source: str) -> list[str]:
    """The unpickling calls in ``source``, and ``numpy.load(..., allow_pickle=True)``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        if (owner_name, node.func.attr) in UNSAFE_CALLS:
            found.append(f"line {node.lineno}: {owner_name}.{node.func.attr}")
        if node.func.attr == "load" and any(
            k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords
        ):
            found.append(f"line {node.lineno}: load(allow_pickle=...)")
    return found


def test_the_checker_finds_unpickling_calls():
    source = "import pickle, torch, numpy as np\npickle.loads(b)\ntorch.load(p)\nnp.load(p, allow_pickle=True)\n"
    assert len(unsafe_calls(source)) == 3
    assert unsafe_calls("import json\njson.loads(s)\nnp.load(p, allow_pickle=False)\n") == []


def test_no_code_path_loads_pickles():
    offenders = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            calls = unsafe_calls(path.read_text())
            if calls:
                offenders[str(path.relative_to(REPO))] = calls
    assert offenders == {}
