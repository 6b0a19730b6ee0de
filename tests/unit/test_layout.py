"""The layout rules of docs/architecture.md, checked on the source: only the hook reaches the HTTP
layer (the whole ``_http`` package), and the package root stays small. Modules are split by concept,
so no rule counts their lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "airflow_provider_smsww"
ROLES = ["operators", "sensors", "triggers", "notifications"]
HTTP_LAYER = "airflow_provider_smsww._http"


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def reaches_http_layer(path: Path) -> bool:
    return any(m == HTTP_LAYER or m.startswith(f"{HTTP_LAYER}.") for m in imported_modules(path))


@pytest.mark.parametrize("role", ROLES)
def test_roles_reach_the_api_only_through_the_hook(role: str) -> None:
    for path in (PACKAGE / role).glob("*.py"):
        assert not reaches_http_layer(path), f"{path.name} imports the HTTP layer"


def test_only_the_hook_imports_the_http_layer() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "_http" not in path.parts and reaches_http_layer(path)
    }
    assert importers
    assert all(path.startswith("hooks/") for path in importers), importers


def test_the_package_root_holds_at_most_ten_modules() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 10, modules
