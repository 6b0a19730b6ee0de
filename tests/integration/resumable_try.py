"""One try of a 400-recipient batch in its own process, for ``test_resume_after_kill.py``: the bulk send
of ``SmsSendOperator`` (``sending.bulk.send_all``) on the ``smsww_default`` connection, its retry ledger
(``TaskStateLedger``, group commits and all) kept in a folder that outlives the process, as the task state
store outlives a killed worker. The test kills one such process with SIGKILL and starts the next at once.

Usage: ``python resumable_try.py STORE_DIR``; the last line on stdout is the try's report, as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECIPIENTS = [f"+39349{i:07d}" for i in range(400)]
TEXT = "Your parcel is on its way"


class FolderStore:
    """``task_state_store``'s ``get`` and ``set`` on one JSON file per key; a value is replaced whole
    (written aside, then renamed), so a kill leaves the old value or the new one, as a database would.

    :param folder: where the values live.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key.replace(':', '_')}.json"

    def get(self, key: str, default: Any = None) -> Any:
        path = self._path(key)
        return json.loads(path.read_text()) if path.exists() else default

    def set(self, key: str, value: Any) -> None:
        aside = self._path(key).with_suffix(".tmp")
        aside.write_text(json.dumps(value))
        os.replace(aside, self._path(key))


async def one_try(folder: Path) -> dict[str, Any]:
    """Send the batch once, on the ledger in ``folder``; what the try reports, and how long it took."""
    from airflow_provider_smsww.hooks.smsww import SmsWwHook
    from airflow_provider_smsww.sending.batch import check_locally
    from airflow_provider_smsww.sending.bulk import send_all
    from airflow_provider_smsww.sending.ledger import TaskStateLedger

    started = time.monotonic()
    hook = SmsWwHook()
    try:
        ledger = TaskStateLedger(FolderStore(folder))
        report = await send_all(hook, check_locally(RECIPIENTS, TEXT), ledger, now=lambda: datetime.now(UTC))
    finally:
        await hook.aclose()
    return {
        "records": len(report.records),
        "reused": report.reused,
        "failures": len(report.failures),
        "send_seconds": time.monotonic() - started,
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    print(json.dumps(asyncio.run(one_try(Path(sys.argv[1])))), flush=True)
