"""The one module for the differences between Airflow releases."""

from __future__ import annotations

import pytest

from airflow_provider_smsww import compat


def test_a_feature_newer_than_this_airflow_is_refused_naming_the_release() -> None:
    with pytest.raises(
        RuntimeError, match=r"^SmsApprovalOperator needs Airflow 99\.1 or newer; this is Airflow 3\."
    ):
        compat.require("SmsApprovalOperator", (99, 1))
    compat.require("SmsSendOperator", (3, 0))  # every supported Airflow has it: no error


def test_the_version_is_the_running_airflows() -> None:
    import airflow

    assert tuple(int(p) for p in airflow.__version__.split(".")[:2]) == compat.AIRFLOW_VERSION


async def test_amask_secret_masks_without_a_supervisor() -> None:
    from airflow_provider_smsww.compat import amask_secret, redact

    await amask_secret("a-secret-value-123456")
    assert "a-secret-value-123456" not in str(redact("token a-secret-value-123456"))
