"""Test-wide set-up: a throw-away AIRFLOW_HOME so that no test touches ~/airflow, and no real network."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Set before anything imports airflow (Airflow reads AIRFLOW_HOME once, at import), and always: the
# tests migrate and write this home's database, which must never be a real one. Removed when the test
# process exits, as the temporary directory below: each run would otherwise leave a megabyte per process.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="smsww-tests-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# dag.test() runs only DAGs that live in a bundle: the integration tests' DAGs are in this folder.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "integration" / "dags")


sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))

from demo import migrated_database

atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], True)

# A paced connection's schedule is a file in the temporary directory that the host's processes share
# (airflow_provider_smsww/_http/pace.py): each test process gets its own directory, so that two workers'
# tests of the same connection do not pace each other, nor a run the next. Open to all, with the sticky
# bit, as /tmp is: the deployment tests' PostgreSQL runs as its own user inside it.
tempfile.tempdir = tempfile.mkdtemp(prefix="smsww-tests-tmp-")
os.chmod(tempfile.tempdir, 0o1777)
atexit.register(shutil.rmtree, tempfile.tempdir, True)

#: Tests of the parts that import no Airflow (the HTTP client, parts, input rules, models): marked
#: ``airflow_independent``, they run on the newest Airflow and on the floor only (the Makefile's
#: ``test-airflow-*`` deselect them); tests/unit/test_layout.py checks these modules import no Airflow.
#: test_shared_rate_limit.py's processes send through the hook, but what it measures is the client's
#: pacing (``_http``, no Airflow), for 80 s: once per Airflow would add minutes to CI and prove nothing more.
AIRFLOW_INDEPENDENT = (
    "integration/test_shared_rate_limit.py",
    "unit/_http/test_adaptive.py",
    "unit/_http/test_anyio_lock.py",
    "unit/_http/test_auth.py",
    "unit/_http/test_client_otp.py",
    "unit/_http/test_client_requests.py",
    "unit/_http/test_client_secrets.py",
    "unit/_http/test_pace.py",
    "unit/_http/test_responses.py",
    "unit/_http/test_retry.py",
    "unit/test_models.py",
    "unit/test_segments.py",
    "unit/test_validation.py",
)


#: Where the tests run real Airflow against the sandbox, each worker on its own AIRFLOW_HOME and each
#: sandbox on its own port: marked ``side_by_side``, the Makefile runs them three at a time, except those
#: marked ``timing`` (a try racing its execution_timeout, a wall-clock bound). Those run in the pass of
#: the unit tests (two workers), first and one after the other on one worker (``xdist_group``): never
#: beside an Airflow run, only beside the other worker's unit tests, which use one core.
SIDE_BY_SIDE = ("integration/", "system/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        where = item.path.relative_to(tests).as_posix()
        if where.startswith(AIRFLOW_INDEPENDENT):
            item.add_marker(pytest.mark.airflow_independent)
        if item.get_closest_marker("timing") is not None:
            item.add_marker(pytest.mark.xdist_group("timing"))
        elif where.startswith(SIDE_BY_SIDE):
            item.add_marker(pytest.mark.side_by_side)
    # The tests that race a timer first, then the system tests (the longest, started first, end first).
    items.sort(
        key=lambda item: (not item.get_closest_marker("timing"), not item.get_closest_marker("system"))
    )
    if getattr(config.option, "loadgroup", False):  # a pytest-xdist worker under --dist loadgroup
        for item in items:
            name_its_xdist_group(item)


def name_its_xdist_group(item: pytest.Item) -> None:
    """Append the test's ``xdist_group`` to its node id, which is how ``--dist loadgroup`` sends a group to
    one worker. pytest-xdist 3.8 does it itself, but too early for the group marked above, and with no
    effect on pytest >= 9.2, which keeps node ids in ``_id`` (pytest-dev/pytest-xdist#1386): without this,
    each test of a group runs on any worker."""
    groups = {
        str(m.args[0] if m.args else m.kwargs.get("name", "default"))
        for m in item.iter_markers("xdist_group")
    }
    if not groups:
        return
    nodeid = item.nodeid
    if nodeid.rfind("@") > nodeid.rfind("]"):  # named already (pytest < 9.2), as xdist reads it back
        return
    grouped = f"{nodeid}@{'_'.join(sorted(groups))}"
    try:  # pytest >= 9.2
        from _pytest.nodeid import NodeId
    except ImportError:
        item._nodeid = grouped
    else:
        item._id = NodeId.parse(grouped)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated sqlite metadata DB in the session's AIRFLOW_HOME, for ``dag.test()``: a copy of the
    venv's migrated one (``scripts/demo.py``)."""
    from tests.airflow_versions import reuse_the_in_process_execution_api

    migrated_database(Path(os.environ["AIRFLOW_HOME"]))
    reuse_the_in_process_execution_api()
    return os.environ["AIRFLOW_HOME"]
