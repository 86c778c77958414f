"""The dependency rules that keep the seams swappable, checked on the import statements."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS_LEAVES = {"harness.types", "harness.protocols", "harness.config", "harness.errors"}
COMPOSITION_ROOTS = {"harness/cli.py", "harness/wiring.py"}


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
        if rel not in COMPOSITION_ROOTS:
            assert not {m for m in imports(path) if m.startswith("sandbox")}, rel
