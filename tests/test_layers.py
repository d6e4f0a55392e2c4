"""The layers hold: models below rules below gateway, every module importable alone, no import cycle.

The graph is read from the source (every import statement, at the top of a module or inside a
function alike; imports only for the type checker excepted), so a cycle hidden by an import inside
a function fails here too. The folders are walked: a module added tomorrow is checked as well.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("models", "rules", "gateway")
# What each layer may import of the project (DESIGN.md, "Layout").
MAY_IMPORT = {"models": {"models"}, "rules": {"rules", "models"}, "gateway": {"gateway", "rules", "models"}}


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of the packages under root, by dotted name (a package by its __init__.py)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, however deep in functions, classes or branches."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (`from gateway import mail` imports gateway.mail)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package[: len(package) - (node.level - 1)]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        targets.add(base)
        targets.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    known = modules(root, packages)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative: a deep chain of imports must not hit the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer: `rules.x -> gateway.y` and the like."""
    out = []
    for name, targets in sorted(graph.items()):
        layer = name.split(".")[0]
        for target in sorted(targets):
            if target.split(".")[0] not in MAY_IMPORT[layer]:
                out.append(f"{name} -> {target}")
    return out


# ---- the project itself --------------------------------------------------------------------------


def test_no_module_of_the_project_takes_part_in_an_import_cycle() -> None:
    assert cycles(import_graph(REPO)) == []


def test_models_import_nothing_of_the_project_and_rules_only_models() -> None:
    assert wrong_way(import_graph(REPO)) == []


def _import_alone(module: str) -> tuple[str, int, str]:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return module, result.returncode, (result.stderr.strip().splitlines() or [""])[-1]


def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    # (A module that works only after another was imported first hides a cycle or a missing import.)
    # (A package's __main__ is a program: importing it runs it. Its imports are in the graph above.)
    names = sorted(name for name in modules(REPO) if name.rpartition(".")[2] != "__main__")
    assert len(names) > 30  # the folders were walked, not missed
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        failed = [(m, err) for m, code, err in pool.map(_import_alone, names) if code != 0]
    assert failed == []


# ---- the checks themselves catch what they are for ----------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_cycle_hidden_by_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "gateway/__init__.py": "",
            "gateway/mail.py": "from gateway import attachments\n",
            "gateway/attachments.py": "from gateway.extractors import messages\n",
            "gateway/extractors/__init__.py": "",
            "gateway/extractors/messages.py": "def eml():\n    from gateway import mail\n",
            "gateway/extractors/base.py": "from . import messages\n",
        },
    )
    graph = import_graph(tmp_path, ("gateway",))
    assert cycles(graph) == [["gateway.attachments", "gateway.extractors.messages", "gateway.mail"]]


def test_an_import_only_for_the_type_checker_is_no_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "gateway/__init__.py": "",
            "gateway/a.py": "from gateway import b\n",
            "gateway/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway import a\n",
        },
    )
    assert cycles(import_graph(tmp_path, ("gateway",))) == []


def test_an_import_up_a_layer_is_named(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "models/__init__.py": "",
            "models/config.py": "import rules.policy\n",
            "rules/__init__.py": "",
            "rules/policy.py": "def decide():\n    from gateway.mail import parse\n",
            "gateway/__init__.py": "",
            "gateway/mail.py": "from models import config\n",
        },
    )
    assert wrong_way(import_graph(tmp_path)) == [
        "models.config -> rules.policy",
        "rules.policy -> gateway.mail",
    ]
