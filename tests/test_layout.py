"""The house: one concept per module, arrows pointing down only, and module names in strings that resolve."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import labkit
from labkit import paths

PACKAGE = Path(labkit.__file__).resolve().parent
# Dependencies go one way (DESIGN.md): a module imports its own package or a lower floor, never a neighbour
# on its own floor or anything above. Nothing imports cli.
FLOORS = {"paths": 0, "files": 0, "text": 0, "__init__": 0, "recipe": 0, "zoo": 0, "checks": 1, "i18n": 1, "inputs": 1,
          "course": 2, "sandbox": 2, "lab": 2, "grading": 3, "classroom": 4, "authoring": 4, "cli": 5, "__main__": 6}
STRING_NAME = re.compile(r"\blabkit(?:\.[a-z_]+)+(?!\w)")
FILE_NAMES = {"labkit.toml", "labkit.po"}  # a workspace marker and the translations, not modules


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, module: str) -> set[str]:
    """Every labkit module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("labkit.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labkit"):
            for a in node.names:  # `from labkit.sandbox import wire` imports labkit.sandbox.wire
                sub = f"{node.module}.{a.name}"
                found.add(sub if importlib.util.find_spec(node.module) and _is_module(sub) else node.module)
    return {m for m in found if m not in ("labkit", module)}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def area(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def test_arrows_point_down_and_nothing_imports_the_cli():
    wrong = []
    for module, path in modules().items():
        for target in imports(path, module):
            a, b = area(module), area(target)
            if a != b and FLOORS[b] >= FLOORS[a]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_no_import_loops():
    graph = {m: imports(p, m) for m, p in modules().items()}
    state: dict[str, int] = {}
    loops = []

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in graph.get(m, ()):
            if state.get(n) == 1:
                loops.append(trail[trail.index(n):] + [n] if n in trail else [m, n])
            elif n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not loops, loops


def test_modules_stay_small():
    big = {m: n for m, p in modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 330}
    assert not big, big


def test_module_names_inside_strings_resolve():
    """`-m labkit.lab.rank`, `from labkit.sandbox.child import main`: strings move with their modules."""
    broken = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in STRING_NAME.findall(node.value):
                    if name not in FILE_NAMES and not _resolves(name):
                        broken.append(f"{module}: {name}")
    assert not broken, broken
    from labkit.sandbox import container

    assert "from labkit.sandbox.child import main" in container.bootstrap("/x", [])
    assert callable(importlib.import_module("labkit.sandbox.child").main)


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        if _is_module(".".join(parts[:cut])):
            obj = importlib.import_module(".".join(parts[:cut]))
            return all((obj := getattr(obj, p, None)) is not None for p in parts[cut:])
    return False


def test_exercises_checks_use_only_the_check_api_and_the_lab():
    allowed = ("labkit.checks", "labkit.recipe", "labkit.inputs", "labkit.lab", "labkit.i18n")
    root = paths.exercises_root()
    for checks in sorted(root.glob("*/checks.py")):
        for target in imports(checks, ""):
            assert target.startswith(allowed), f"{checks}: imports {target}"


def test_the_sandbox_binds_the_package_but_never_the_exercises_or_solutions():
    from labkit.sandbox import bwrap

    seen = bwrap.visible_paths()
    assert paths.PACKAGE in seen and paths.exercises_root().resolve() not in seen  # no checks file to replay
    assert paths.solutions_root() not in seen and paths.IMPORT_ROOT not in seen  # never the checkout itself
