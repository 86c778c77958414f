"""The dependency rules that keep the seams swappable, checked on the import statements."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS_LEAVES = {"harness.types", "harness.protocols", "harness.config", "harness.errors"}
COMPOSITION_ROOTS = {"harness/wiring.py"}
COMPOSITION_PACKAGES = ("harness/cli/",)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str):
    return [p for p in (ROOT / package).rglob("*.py") if "minibench/data" not in str(p)]


def test_only_the_adapter_imports_swebench():
    users = {
        str(p.relative_to(ROOT))
        for pkg in ("harness", "agents", "sandbox")
        for p in modules(pkg)
        if any(m == "swebench" or m.startswith("swebench.") for m in imports(p))
    }
    assert users == {"sandbox/swebench_adapter.py"}


def test_sandbox_and_agents_use_only_harness_leaves():
    for pkg in ("sandbox", "agents"):
        for path in modules(pkg):
            used = {m for m in imports(path) if m.startswith("harness")}
            assert used <= HARNESS_LEAVES, (
                f"{path.relative_to(ROOT)} imports {used - HARNESS_LEAVES}"
            )


def test_only_composition_roots_import_concrete_sandboxes():
    for path in modules("harness"):
        rel = str(path.relative_to(ROOT))
        if rel not in COMPOSITION_ROOTS and not rel.startswith(COMPOSITION_PACKAGES):
            assert not {m for m in imports(path) if m.startswith("sandbox")}, rel


def sandbox_imports(path: Path) -> set[str]:
    """The sandbox modules a module imports, `from sandbox import x` included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "sandbox":
            found |= {f"sandbox.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sandbox."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sandbox.")}
    return found


def test_the_sandbox_package_has_no_import_cycle():
    """images.py (bases, testbeds), env_build.py (environments) and engine.py (which image
    verifies an instance) once imported each other; the graph among sandbox modules is a DAG."""
    graph = {f"sandbox.{p.stem}": sandbox_imports(p) for p in modules("sandbox")}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != "open", " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [])


def test_no_cli_function_is_over_60_lines():
    for path in modules("harness/cli"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path.name}:{node.name} has {length} lines"
