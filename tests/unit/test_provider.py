"""Provider registration: entry point, provider info against Airflow's schema, the providers manager and
the ``airflow providers`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import airflow_provider_smsww
from airflow_provider_smsww import CONN_TYPE, DEFAULT_CONN_ID, __version__, get_provider_info
from airflow_provider_smsww.compat import AIRFLOW_VERSION
from airflow_provider_smsww.hooks.smsww import SmsWwHook

PACKAGE = "airflow-provider-smsww"
HOOK_NAME = "SMS Worldwide (Openapi)"
HOOK_CLASS = "airflow_provider_smsww.hooks.smsww.SmsWwHook"


def test_the_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_smsww")
    ]
    assert ep.value == "airflow_provider_smsww:get_provider_info"
    assert ep.load() is get_provider_info


def test_provider_info_matches_airflows_schema() -> None:
    import jsonschema
    from airflow import providers_manager

    schema_path = Path(providers_manager.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_provider_info_describes_the_connection_type() -> None:
    info = get_provider_info()
    assert info["package-name"] == PACKAGE
    assert info["versions"] == [__version__]
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == CONN_TYPE == SmsWwHook.conn_type
    assert conn["hook-name"] == HOOK_NAME == SmsWwHook.hook_name
    assert conn["hook-class-name"] == HOOK_CLASS
    assert DEFAULT_CONN_ID == SmsWwHook.default_conn_name == "smsww_default"
    fields = conn["conn-fields"]
    assert set(fields) == {
        "api_key",
        "sandbox",
        "oauth_host",
        "receipts_url",
        "receipts_secret",
        "receipts_asset",
    }
    assert fields["api_key"]["schema"]["format"] == "password"  # masked in the UI
    assert fields["receipts_secret"]["schema"]["format"] == "password"
    assert fields["sandbox"]["schema"]["type"] == ["boolean", "null"]
    behaviour = conn["ui-field-behaviour"]
    assert set(behaviour) == {"hidden-fields", "relabeling", "placeholders"}


def test_every_module_in_provider_info_that_exists_imports() -> None:
    """Modules other engineers are still writing may be missing; the ones present must import (the
    approval's trigger subclasses the standard provider's human-in-the-loop trigger, Airflow 3.1+)."""
    import importlib
    import importlib.util

    from airflow_provider_smsww.compat import AIRFLOW_VERSION, HITL_SINCE

    info = get_provider_info()
    modules = [
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for e in info[kind]
        for m in e["python-modules"]
    ]
    present = [m for m in modules if importlib.util.find_spec(m) is not None]
    if AIRFLOW_VERSION < HITL_SINCE:
        present.remove("airflow_provider_smsww.triggers.approval")
    assert "airflow_provider_smsww.hooks.smsww" in present
    for module in present:
        importlib.import_module(module)


def test_importing_the_package_is_cheap() -> None:
    """DAG files import the package at parse time: no HTTP stack, no phone metadata, no pydantic."""
    code = (
        "import sys, airflow_provider_smsww; "
        "print(sorted(m for m in ('httpx', 'phonenumbers', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"
    assert airflow_provider_smsww.__version__ == __version__


def test_the_task_runtime_providers_manager_knows_the_hook() -> None:
    try:  # Airflow >= 3.2: the task runtime has a providers manager of its own
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Manager
    except ImportError:
        from airflow.providers_manager import ProvidersManager as Manager  # type: ignore[assignment]

    manager = Manager()
    assert manager.providers[PACKAGE].version == __version__
    hook = manager.hooks["smsww"]
    assert hook is not None
    assert hook.hook_name == HOOK_NAME
    assert hook.hook_class_name == HOOK_CLASS
    assert hook.connection_id_attribute_name == "smsww_conn_id"


def test_the_connection_form_gets_the_fields() -> None:
    import warnings

    if AIRFLOW_VERSION < (3, 2):
        pytest.skip("Airflow 3.0 and 3.1 build the connection form from FAB widgets, not the provider info")

    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        manager = ProvidersManager()
        widgets = manager.connection_form_widgets
        behaviours = manager.field_behaviours
    assert behaviours["smsww"]["hidden_fields"] == ["schema"]  # Port shown for the Test button
    assert behaviours["smsww"]["relabeling"]["password"] == "Bearer token"
    api_key = widgets["extra__smsww__api_key"]
    assert api_key.hook_class_name == HOOK_CLASS
    assert api_key.is_sensitive
    assert api_key.field["schema"]["title"] == "API key"
    assert not widgets["extra__smsww__sandbox"].is_sensitive
    assert "extra__smsww__oauth_host" in widgets


@pytest.mark.integration
def test_airflow_cli_lists_the_provider_and_its_hook(tmp_path: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"}  # it logs to stdout
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    # both commands at once: each pays Airflow's start-up (a few seconds)
    procs = {
        what: subprocess.Popen(
            [str(airflow), "providers", what, "-o", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for what in ("list", "hooks")
    }
    out = {}
    for what, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr[-2000:]
        # Airflow 3.0 and 3.1 print their INFO lines to stdout too: the JSON is the line that is a list.
        (listing,) = [line for line in stdout.splitlines() if line.startswith(("[{", "[]"))]
        out[what] = json.loads(listing)
    (provider,) = [p for p in out["list"] if p["package_name"] == PACKAGE]
    assert provider["version"] == __version__
    (hook,) = [h for h in out["hooks"] if h["connection_type"] == "smsww"]
    assert hook == {
        "connection_type": "smsww",
        "class": HOOK_CLASS,
        "conn_id_attribute_name": "smsww_conn_id",
        "package_name": PACKAGE,
        "hook_name": HOOK_NAME,
    }
