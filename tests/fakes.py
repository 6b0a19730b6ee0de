"""Stand-ins for Airflow pieces that the operator tests drive by hand (imported, not fixtures)."""

from __future__ import annotations

import json
from typing import Any


class FakeStore:
    """Airflow 3.3's ``task_state_store``: a key/value store that survives task retries.

    ``set`` raises on the ``fail_on_set``-th write, which is how the tests crash a worker between the
    gateway accepting a message and the ledger recording it. Values go through JSON, as in the real
    store.
    """

    def __init__(self, fail_on_set: int | None = None) -> None:
        self.data: dict[str, Any] = {}
        self.sets = 0
        self.fail_on_set = fail_on_set

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.sets += 1
        if self.fail_on_set is not None and self.sets == self.fail_on_set:
            raise RuntimeError("worker crashed while recording an accepted message")
        self.data[key] = json.loads(json.dumps(value))
