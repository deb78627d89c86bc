"""The package's shape: imports inside ``autoft`` only go downward (no cycle), and every hook and plugin kind is
documented. Read from the source (AST), not from what happens to be imported."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import autoft
from autoft import hookspecs
from autoft.plugins import Registry

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autoft"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The autoft modules a module imports at run time, at the top or inside functions (not for type checking)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert "autoft.config" in graph["autoft.space"]  # a top-level import
    assert "autoft.report" in graph["autoft.export"]  # an import inside a function counts too
    assert "autoft.study" not in graph["autoft.backends._base"]  # a TYPE_CHECKING import does not


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


DOCS = (ROOT / "docs" / "plugins.md").read_text()


def test_every_hook_is_documented_with_its_signature():
    hooks = [f for name, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, "autoft_spec")]
    assert {f.__name__ for f in hooks} >= {"register_datasets", "register_backends", "trial_finished"}
    for hook in hooks:
        signature = f"{hook.__name__}({', '.join(inspect.signature(hook).parameters)})"
        assert f"`{signature}`" in DOCS, f"docs/plugins.md does not document {signature}"


def test_every_plugin_kind_is_documented():
    kinds = {"datasets": autoft.Dataset, "strategies": autoft.Strategy, "metrics": autoft.Metric}
    kinds["backends"] = autoft.Backend
    registry_kinds = {f for f in Registry.__dataclass_fields__ if f not in ("manager", "plugins")}
    assert registry_kinds == set(kinds)
    for kind, cls in kinds.items():
        assert f"`register_{kind}(register)`" in DOCS
        assert re.search(rf"^#+ .*\b{kind[:-1] if kind != 'strategies' else 'strateg'}", DOCS, re.M | re.I), kind
        assert f"autoft.{cls.__name__}" in DOCS, f"docs/plugins.md never names autoft.{cls.__name__}"
