"""Imports go one way: blueprints and jobs -> services -> models, channels, sources and the core modules.

Read from the source (every `import`, including those inside functions; `if TYPE_CHECKING:` blocks excluded),
so an upward import or a cycle fails here with the modules that make it, before it becomes a tangle held
together by in-function imports.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "webapp"

# Lowest first. A module may import modules of its own layer or of lower ones, never of a higher one.
LAYERS = [
    {"config", "extensions", "logs", "metrics", "pool", "egress", "pricing", "ip_allowlist"},
    {"models", "errors", "validation", "inputs", "security", "fields"},
    {"channels", "sources", "queue", "tenancy", "outbox", "paging"},
    {"services"},
    {"jobs"},
    {"admin", "api", "auth", "webhooks", "ops", "cli"},
    {"webapp", "gunicorn_conf"},  # the app factory wires everything together; gunicorn's settings
]
# Within services: each sub-package may import the shared modules (services/audit.py, bulk.py) and
# sub-packages of lower rank; a sub-package of the same rank only if no cycle results.
SERVICE_LAYERS = [
    {"services"},
    {"people", "integrations", "messages"},
    {"oncall"},  # who is on call: routing and escalation ask it
    {"routing"},
    {"events"},
    {"tickets", "monitoring"},
    {"inbound"},
    {"delivery"},
    {"overview", "demo"},
]
BLUEPRINTS = LAYERS[5]


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _runtime_nodes(tree: ast.AST):
    """Every node, skipping the bodies of `if TYPE_CHECKING:` (annotations only, never executed)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports() -> dict[str, set[str]]:
    """module -> the webapp modules it imports (a parent package is imported implicitly, so not counted)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                subs = [f"{base}.{alias.name}" for alias in node.names]
                targets = [s for s in subs if s in MODULES] or [base]
            else:
                continue
            for target in targets:
                if target == "webapp" or target.startswith("webapp."):
                    resolved = _resolve(target)
                    if resolved != module and not module.startswith(resolved + "."):
                        graph[module].add(resolved)
    return graph


IMPORTS = _imports()


def unit(module: str) -> str:
    """The part a module belongs to: a services sub-package, or a top-level module / package of webapp."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "services" and (ROOT / "services" / parts[2]).is_dir():
        return f"services.{parts[2]}"
    return parts[1] if len(parts) > 1 else "webapp"


def layer(name: str) -> int:
    top = name.split(".")[0]
    for rank, members in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")


def service_rank(name: str) -> int:
    sub = name.split(".")[1] if "." in name else "services"
    for rank, members in enumerate(SERVICE_LAYERS):
        if sub in members:
            return rank
    raise AssertionError(f"services/{sub} is in no service layer: add it to SERVICE_LAYERS in {__file__}")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_the_reader_sees_every_module():
    assert {"webapp.tenancy", "webapp.outbox", "webapp.jobs", "webapp.services.routing.decisions"} <= set(MODULES)
    assert "webapp.services.events.ingest" in IMPORTS["webapp.webhooks"]


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} imports {target}"
        for module, targets in IMPORTS.items()
        for target in targets
        if layer(unit(target)) > layer(unit(module))
    ]
    assert upward == []


def test_services_import_only_lower_service_packages():
    upward = [
        f"{module} imports {target}"
        for module, targets in IMPORTS.items()
        if unit(module).startswith("services")
        for target in targets
        if unit(target).startswith("services") and service_rank(unit(target)) > service_rank(unit(module))
    ]
    assert upward == []


def test_blueprints_do_not_import_each_other():
    crossing = [
        f"{module} imports {target}"
        for module, targets in IMPORTS.items()
        for target in targets
        if unit(module) in BLUEPRINTS and unit(target) in BLUEPRINTS and unit(target) != unit(module)
    ]
    assert crossing == []


def test_no_cycle_between_the_parts_of_webapp():
    graph = defaultdict(set)
    for module, targets in IMPORTS.items():
        for target in targets:
            if unit(target) != unit(module):
                graph[unit(module)].add(unit(target))
    assert _cycles(graph) == []


@pytest.mark.parametrize("package", ["webapp.admin", "webapp.api", "webapp.auth", "webapp.webhooks"])
def test_blueprint_packages_only_cycle_through_their_route_registration(package):
    """`bp` is defined in the package and its route modules are imported at its end: that cycle is Flask's
    pattern. Any other cycle (module to module) is not."""
    inner = {
        module: {t for t in targets if t.startswith(package + ".")}
        for module, targets in IMPORTS.items()
        if module.startswith(package + ".")
    }
    assert _cycles(inner) == []


def test_no_module_cycle_anywhere_else():
    blueprint_packages = {f"webapp.{name}" for name in BLUEPRINTS}
    graph = {
        module: {t for t in targets if t not in blueprint_packages}
        for module, targets in IMPORTS.items()
        if module not in blueprint_packages
    }
    assert _cycles(graph) == []


def test_services_flush_and_never_commit():
    """Request handlers and jobs own the transaction (and the outbox hands its jobs over at their commit)."""
    committing = [
        f"{module} calls .commit()"
        for module, path in MODULES.items()
        if unit(module).startswith("services") or unit(module) in {"models", "channels", "sources", "tenancy"}
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
    ]
    assert committing == []
