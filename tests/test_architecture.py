"""The package's shape: which way imports run, and how large its pieces may grow.

Read from the source with :mod:`ast` (every ``import`` and ``from ... import``, at any depth, so
an import inside a function counts too), not by importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("asr", "streaming")
# Only the command line, the benchmarks and the server may import the live-recognition package.
MAY_IMPORT_STREAMING = ("asr.cli", "asr.bench", "asr.serve")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from asr import x`` counts as ``asr.x`` if a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    modules = set(sources)
    return {name: _imports(path, modules) - {name} for name, path in sources.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package_of(module: str) -> str:
    return module.split(".")[0]


def test_no_import_cycle_between_modules() -> None:
    # A package's __init__ importing its own modules is not a cycle with them.
    graph = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in _graph().items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_only_the_command_line_and_benchmarks_import_streaming() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if _package_of(module) == "asr" and not module.startswith(MAY_IMPORT_STREAMING)
        for target in targets
        if _package_of(target) == "streaming"
    )
    assert offenders == []


def test_streaming_imports_only_the_library_core() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if _package_of(module) == "streaming"
        for target in targets
        if target.startswith(("asr.cli", "asr.bench", "asr.train", "asr.lm.build", "asr.lm.corpus"))
    )
    assert offenders == []


def test_the_core_imports_no_outer_layer() -> None:
    # The core: the pipeline's nouns at the top of asr/, the decoders, and the LMs.
    outer = ("asr.cli", "asr.bench", "asr.serve", "asr.train", "streaming")
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if _package_of(module) == "asr" and not module.startswith(outer)
        for target in targets
        if target.startswith(outer)
    )
    assert offenders == []


def test_nothing_but_the_command_line_imports_it() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if not module.startswith("asr.cli")
        for target in targets
        if target.startswith("asr.cli")
    )
    assert offenders == []


def test_the_checker_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", [*PACKAGES, "recipes"])
def test_no_file_outgrows_its_job(package: str) -> None:
    long_files = sorted(
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    )
    assert long_files == []


@pytest.mark.parametrize("package", [*PACKAGES, "recipes"])
def test_no_function_outgrows_its_job(package: str) -> None:
    long_functions = sorted(
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    )
    assert long_functions == []
