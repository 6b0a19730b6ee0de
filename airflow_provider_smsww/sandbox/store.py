"""Optional persistence of the sandbox's state in one sqlite file (``smsww-sandbox --state-file PATH``).

Why: a deferred sensor outlives a sandbox restart; without a file every message it waits for would
be 404 after one. The design is write-through of JSON rows: one table keyed by (kind, key), each row
the JSON of one entity (a message, a token, a wallet transaction, the wallet itself), written when
the entity changes and read once at start. :class:`~.state.Sandbox` owns the (de)serialisation; this
module only stores rows. sqlite3 is the standard library's; WAL keeps each write cheap.

What is kept: the messages, tokens (limits and stats), wallet transactions, credit and blocklist, read
back at start, so a restarted sandbox still knows them; everything else (request log, callback
attempts, queued callbacks, the OTP cache, ``charges``, ``dry_runs``) is in memory only.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class StateFile:
    """Rows of JSON in ``path``, created when missing. Not thread-safe: the sandbox's lock serialises."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rows (kind TEXT, key TEXT, body TEXT, PRIMARY KEY (kind, key))"
        )

    def put(self, kind: str, key: str, row: dict[str, Any]) -> None:
        """Insert or replace one row (its first insertion order is kept)."""
        self._db.execute(
            "INSERT INTO rows VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
            (kind, key, json.dumps(row, default=str)),
        )

    def delete(self, kind: str, key: str) -> None:
        self._db.execute("DELETE FROM rows WHERE kind = ? AND key = ?", (kind, key))

    def load(self, kind: str) -> list[dict[str, Any]]:
        """Every row of ``kind``, in first-insertion order."""
        cursor = self._db.execute("SELECT body FROM rows WHERE kind = ? ORDER BY rowid", (kind,))
        return [json.loads(body) for (body,) in cursor]

    def clear(self) -> None:
        self._db.execute("DELETE FROM rows")

    def close(self) -> None:
        self._db.close()
