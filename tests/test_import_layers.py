"""The package's shape: every import points down the data flow, and nothing imports in a circle.

Reads the source (no imports executed), so a lazy import inside a function counts the same as
one at the top: hiding an upward arrow in a function does not make it go away.
"""

from __future__ import annotations

import ast
from pathlib import Path

import otelml

ROOT = Path(otelml.__file__).parent

#: Gateway layers, lowest first: a module may import its own layer and those before it.
#: The wiring modules are layers of their own, in the order they build on each other.
GATEWAY_LAYERS: list[tuple[str, ...]] = [
    ("decode",),
    ("state",),
    ("drift", "performance"),
    ("connectors",),
    ("processors",),
    ("exporters",),
    ("consumer",),
    ("pipeline",),
    ("receivers",),
    ("validation",),
    ("serving", "malloc"),
    ("gateway_state",),
    ("ui",),
    ("admin",),
    ("workers",),
    ("app",),
]
#: What every layer of the gateway may use: the contract, the errors, the typed config and
#: the reference profiles.
FOUNDATION = ("otelml.semconv", "otelml.errors", "otelml.config", "otelml.profile")
#: The app side and the gateway share only the foundation.
APP_SIDE = ("otelml.instrument", "otelml.proxy")


def _module_name(path: Path) -> str:
    parts = path.resolve().relative_to(ROOT.parent.resolve()).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every otelml module `path` imports (for `from a import b`: `a.b` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                own = _module_name(path if path.name == "__init__.py" else path.parent)
                anchor = own.split(".")[: len(own.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "otelml" and name in MODULES}


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}
GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _rank(module: str) -> int | None:
    """The gateway layer of a module (None outside the gateway's layers)."""
    parts = module.split(".")
    if parts[:2] != ["otelml", "gateway"] or len(parts) < 3:
        return None
    for rank, layer in enumerate(GATEWAY_LAYERS):
        if parts[2] in layer:
            return rank
    return None


def test_every_gateway_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if m.startswith("otelml.gateway.") and _rank(m) is None]
    assert unplaced == []


def test_gateway_imports_point_down_the_flow() -> None:
    upward = []
    for module, imported in GRAPH.items():
        rank = _rank(module)
        if rank is None:
            continue
        for target in imported:
            if target.startswith(FOUNDATION) or module.startswith(target + "."):
                continue  # the foundation, or a package this module is in (its namespace)
            target_rank = _rank(target)
            if target_rank is None or target_rank > rank:
                upward.append(f"{module} -> {target}")
    assert sorted(upward) == []


def test_foundation_knows_no_gateway_and_app_side_is_separate() -> None:
    crossing = []
    for module, imported in GRAPH.items():
        for target in imported:
            if module.startswith(FOUNDATION) and target.startswith(("otelml.gateway", *APP_SIDE)):
                crossing.append(f"{module} -> {target}")
            if module.startswith(APP_SIDE) and target.startswith("otelml.gateway"):
                crossing.append(f"{module} -> {target}")
            if module.startswith("otelml.gateway") and target.startswith(APP_SIDE):
                crossing.append(f"{module} -> {target}")
    assert sorted(crossing) == []


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the whole package: all of size one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if (
                target.startswith("otelml.")
                and _is_package_init(target)
                and node.startswith(target + ".")
            ):
                continue  # a module importing its own package's __init__ (re-exports) is no cycle
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


def _is_package_init(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "def later():\n    from otelml.gateway.app import Gateway\nimport otelml.semconv\n"
    )
    assert {"otelml.gateway.app", "otelml.semconv"} <= _imports(source)
