"""SmsApprovalTrigger: the standard provider's ``HITLTrigger`` (Airflow 3.1, 3.2) that masks what the
approver typed into the one-time-code field before the triggerer logs its event.

The triggerer logs every event it fires, payload and all ("Trigger fired event ... result=..."), in the
task's log: a plain ``HITLTrigger`` would write the typed code there in clear. This one gives each typed
value of ``mask_params`` to Airflow's secrets masker first, in the triggerer, so that line shows
``***``. Airflow 3.3 runs no trigger for a human-in-the-loop wait (the task waits in
``AWAITING_INPUT``), so it does not use this class. Imported only on Airflow >= 3.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.triggers.base import TriggerEvent

from airflow_provider_smsww.compat import amask_secret

CLASSPATH = "airflow_provider_smsww.triggers.approval.SmsApprovalTrigger"


class SmsApprovalTrigger(HITLTrigger):
    """``HITLTrigger`` whose event has the values of ``mask_params`` masked in the triggerer's logs.

    :param mask_params: the form fields whose typed values are secrets (the one-time code).
    :param kwargs: ``HITLTrigger``'s own arguments, as its ``serialize()`` gives them.
    """

    def __init__(self, *, mask_params: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_params = list(mask_params)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return CLASSPATH, {**kwargs, "mask_params": self.mask_params}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in super().run():
            typed = event.payload.get("params_input") or {} if isinstance(event.payload, dict) else {}
            for name in self.mask_params:
                value = typed.get(name)
                if isinstance(value, str) and value.strip():
                    await amask_secret(value)
                    await amask_secret(value.strip())
            yield event
