"""The import directions of docs/architecture.md, checked on the source: only the hook reaches the HTTP
layer (the whole ``_http`` package), and the hook never reaches ``sending/`` (what the operator adds
over the hook sits above it). Modules are split by concept, so no rule counts a module's lines or the
modules; a function stays short enough to read at once (80 lines at most)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
PACKAGE = REPO / "airflow_provider_smsww"
ROLES = ["operators", "sensors", "triggers", "notifications"]
HTTP_LAYER = "airflow_provider_smsww._http"
SEND_PATH = "airflow_provider_smsww.sending"


def imported_modules(source: str) -> set[str]:
    """Every module ``source`` imports, at its top or inside a function or ``TYPE_CHECKING`` block."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def reaches(source: str, package: str) -> bool:
    """Whether ``source`` imports ``package`` or anything in it."""
    return any(m == package or m.startswith(f"{package}.") for m in imported_modules(source))


@pytest.mark.parametrize("role", ROLES)
def test_roles_reach_the_api_only_through_the_hook(role: str) -> None:
    for path in (PACKAGE / role).glob("*.py"):
        assert not reaches(path.read_text(), HTTP_LAYER), f"{path.name} imports the HTTP layer"


def test_only_the_hook_imports_the_http_layer() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "_http" not in path.parts and reaches(path.read_text(), HTTP_LAYER)
    }
    assert importers
    assert all(path.startswith("hooks/") for path in importers), importers


@pytest.mark.parametrize(
    "line",
    [
        "from airflow_provider_smsww.sending.batch import Batch",
        "from airflow_provider_smsww.sending import order",
        "from airflow_provider_smsww import sending",
        "import airflow_provider_smsww.sending.bulk",
    ],
)
def test_the_send_path_check_finds_each_form_of_import(line: str) -> None:
    source = f"from typing import TYPE_CHECKING\n\ndef f() -> None:\n    if TYPE_CHECKING:\n        {line}\n"
    assert reaches(source, SEND_PATH)


def test_the_send_path_check_ignores_a_module_that_only_shares_its_prefix() -> None:
    assert not reaches("from airflow_provider_smsww.sending_rules import x\n", SEND_PATH)


def test_the_hook_never_imports_the_send_path() -> None:
    hook_modules = sorted((PACKAGE / "hooks").glob("*.py"))
    assert hook_modules
    importers = [path.name for path in hook_modules if reaches(path.read_text(), SEND_PATH)]
    assert importers == []


def airflow_independent_test_modules() -> list[str]:
    """The test modules marked ``airflow_independent`` (``AIRFLOW_INDEPENDENT`` in tests/conftest.py),
    by module name: CI runs them on the newest Airflow and the floor only, which holds only while they,
    and all they import of the package, import no Airflow. Read, not imported: importing the conftest
    again would run its set-up (a new AIRFLOW_HOME) a second time."""
    conftest = ast.parse((REPO / "tests" / "conftest.py").read_text())
    (listed,) = [
        node.value
        for node in conftest.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "AIRFLOW_INDEPENDENT"
    ]
    files = ast.literal_eval(listed)
    assert files
    assert all((REPO / "tests" / f).is_file() for f in files), files
    return ["tests." + f.removesuffix(".py").replace("/", ".") for f in files]


def airflow_modules_loaded_by(*modules: str) -> list[str]:
    """The ``airflow`` modules a fresh interpreter has loaded after importing ``modules``."""
    probe = "; ".join(
        [
            *(f"import {m}" for m in modules),
            "import sys",
            "print([m for m in sys.modules if m.split('.')[0] == 'airflow'])",
        ]
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    return list(ast.literal_eval(done.stdout.strip()))


def test_the_tests_run_only_on_the_newest_airflow_and_the_floor_import_no_airflow() -> None:
    assert airflow_modules_loaded_by("tests.unit.hooks.test_hook")  # the probe sees an import
    assert airflow_modules_loaded_by(*airflow_independent_test_modules()) == []


@pytest.mark.xdist_group("probe")
def test_an_xdist_group_reaches_the_node_id_that_sends_it_to_one_worker(
    request: pytest.FixtureRequest,
) -> None:
    """``make test`` relies on ``--dist loadgroup`` to run a group on one worker (tests/conftest.py names
    the group in the node id: pytest-xdist 3.8 no longer can on pytest 9.2). A plain ``pytest`` has no
    groups."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not a pytest-xdist worker under --dist loadgroup")
    assert request.node.nodeid.endswith(
        "::test_an_xdist_group_reaches_the_node_id_that_sends_it_to_one_worker@probe"
    )


#: Functions short enough to read at once; the provider info is one literal, read as data.
LONGEST_FUNCTION = 80
LITERALS = {"__init__.py:get_provider_info"}


def long_functions(source: str, name: str) -> dict[str, int]:
    """Each function of ``source`` (module ``name``) over :data:`LONGEST_FUNCTION` lines, and its length."""
    return {
        f"{name}:{node.name}": length
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > LONGEST_FUNCTION
    }


def test_no_function_is_over_80_lines() -> None:
    too_long = "def f():\n" + "    x = 1\n" * LONGEST_FUNCTION
    assert long_functions(too_long, "probe.py") == {"probe.py:f": LONGEST_FUNCTION + 1}  # the check sees one
    found: dict[str, int] = {}
    for path in PACKAGE.rglob("*.py"):
        found.update(long_functions(path.read_text(), path.relative_to(PACKAGE).as_posix()))
    assert {name: n for name, n in found.items() if name not in LITERALS} == {}
