"""Call history: one SQLite row per call, in the user data directory. No Qt.

Never holds a secret: the caller (the GUI bridge) redacts error texts before
they get here, and there is no column a token could go in. The schema is
versioned with `PRAGMA user_version`; a file that SQLite cannot read is moved
aside (never deleted) and a fresh one started, and `notice` says where it went.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .errors import UserFacingError
from .paths import private_dir

SCHEMA_VERSION = 3
FILE_NAME = "history.sqlite3"

_SCHEMA_V1 = """
CREATE TABLE calls (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at     REAL    NOT NULL,          -- Unix time, seconds
    profile        TEXT    NOT NULL,
    variant        TEXT    NOT NULL DEFAULT '',
    session_id     TEXT    NOT NULL DEFAULT '',
    call_sid       TEXT    NOT NULL DEFAULT '',
    duration_s     REAL    NOT NULL DEFAULT 0,
    result         TEXT    NOT NULL,          -- ended | failed | cancelled
    error_code     TEXT    NOT NULL DEFAULT '',
    error_message  TEXT    NOT NULL DEFAULT '',
    turn_latencies TEXT    NOT NULL DEFAULT '[]',  -- JSON list of milliseconds
    recording_path TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX calls_started ON calls (started_at);
"""
# v2: what a repro bundle needs, as JSON: {"stats": [per second], "log": [events, redacted],
# "warnings": [quality warnings]}. Older rows get '{}'.
_MIGRATE_V2 = "ALTER TABLE calls ADD COLUMN details TEXT NOT NULL DEFAULT '{}'"
# v3: the call's words as plain text ("Agent: ...\nYou: ..."), searchable; the timed utterances
# are in details["transcript"]. Older rows get ''.
_MIGRATE_V3 = "ALTER TABLE calls ADD COLUMN transcript TEXT NOT NULL DEFAULT ''"

RESULTS = ("ended", "failed", "cancelled")


class HistoryError(UserFacingError):
    """The history database cannot be used (what happened, what to do)."""


@dataclass
class CallRecord:
    started_at: float
    profile: str
    result: str
    variant: str = ""
    session_id: str = ""
    call_sid: str = ""
    duration_s: float = 0.0
    error_code: str = ""
    error_message: str = ""
    turn_latencies_ms: list[float] = field(default_factory=list)
    recording_path: str = ""
    details: dict = field(default_factory=dict)   # stats / log / warnings for a repro bundle
    transcript: str = ""                          # what was said, one utterance a line
    id: int | None = None

    @property
    def recording(self) -> Path | None:
        return Path(self.recording_path) if self.recording_path else None


_COLUMNS = ("started_at", "profile", "variant", "session_id", "call_sid", "duration_s", "result",
            "error_code", "error_message", "turn_latencies", "recording_path", "details", "transcript")


def _row_to_record(row: sqlite3.Row) -> CallRecord:
    try:
        latencies = [float(x) for x in json.loads(row["turn_latencies"] or "[]")]
    except (ValueError, TypeError):
        latencies = []
    try:
        details = json.loads(row["details"] or "{}")
    except (ValueError, TypeError):
        details = {}
    return CallRecord(
        id=row["id"], started_at=row["started_at"], profile=row["profile"], variant=row["variant"],
        session_id=row["session_id"], call_sid=row["call_sid"], duration_s=row["duration_s"],
        result=row["result"], error_code=row["error_code"], error_message=row["error_message"],
        turn_latencies_ms=latencies, recording_path=row["recording_path"],
        details=details if isinstance(details, dict) else {}, transcript=row["transcript"])


class History:
    """The call history database. `open()` is implicit on first use."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config.data_dir() / FILE_NAME
        self.notice = ""          # set when a damaged file was moved aside
        self._db: sqlite3.Connection | None = None
        # The window writes a call's row from a worker thread (a commit's fsync can take half a
        # second on a busy disk) and reads rows on the UI thread: one connection, one lock.
        self._lock = threading.RLock()

    # --- opening ------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            if self._db is not None:
                return
            private_dir(self.path.parent)
            try:
                self._db = self._connect_and_migrate()
            except sqlite3.DatabaseError as exc:
                moved = self._move_aside()
                self.notice = (f"The call history file could not be read ({exc}). It was moved to "
                               f"{moved} and a new, empty history was started.")
                self._db = self._connect_and_migrate()

    def _connect_and_migrate(self) -> sqlite3.Connection:
        new = not self.path.exists()
        db = sqlite3.connect(self.path, timeout=2.0, check_same_thread=False)  # guarded by _lock
        try:
            db.row_factory = sqlite3.Row
            if new or self.path.stat().st_mode & 0o077:  # made by us, or opened up by hand
                with contextlib.suppress(OSError):
                    os.chmod(self.path, 0o600)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"The call history {self.path} was written by a newer Polyphone "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}).",
                    "Update Polyphone to see and add to it; it was left as it is.")
            if version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
                if tables:
                    raise sqlite3.DatabaseError("unversioned tables in the history file")
                with db:
                    db.executescript(_SCHEMA_V1)
                    db.execute("PRAGMA user_version = 1")
                version = 1
            if version < 2:  # every row kept; the new column starts empty
                with db:
                    db.execute(_MIGRATE_V2)
                    db.execute("PRAGMA user_version = 2")
            if version < 3:
                with db:
                    db.execute(_MIGRATE_V3)
                    db.execute("PRAGMA user_version = 3")
            # Future migrations: `if version < 4: ...` here, each in a transaction.
            return db
        except BaseException:
            db.close()
            raise

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm", "-journal"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        return target

    def _conn(self) -> sqlite3.Connection:
        self.open()
        assert self._db is not None
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- rows ---------------------------------------------------------------------

    def add(self, record: CallRecord) -> int:
        if record.result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}, not {record.result!r}")
        values = (record.started_at, record.profile, record.variant, record.session_id,
                  record.call_sid, float(record.duration_s), record.result, record.error_code,
                  record.error_message, json.dumps([round(float(x), 1) for x in record.turn_latencies_ms]),
                  record.recording_path, json.dumps(record.details, default=str), record.transcript)
        with self._lock, self._conn() as db:
            cur = db.execute(f"INSERT INTO calls ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)
        record.id = cur.lastrowid
        return int(cur.lastrowid)

    def list(self, limit: int = 1000, profile: str | None = None, text: str = "") -> list[CallRecord]:
        """Newest first; `text`: only calls whose transcript contains it (any case)."""
        where, args = [], []
        if profile is not None:
            where.append("profile = ?")
            args.append(profile)
        if text.strip():
            escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("transcript LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            return [_row_to_record(r) for r in self._conn().execute(sql, args)]

    def get(self, record_id: int) -> CallRecord | None:
        with self._lock:
            row = self._conn().execute("SELECT * FROM calls WHERE id = ?", (record_id,)).fetchone()
        return _row_to_record(row) if row else None

    def delete(self, record_id: int) -> bool:
        with self._lock, self._conn() as db:
            return db.execute("DELETE FROM calls WHERE id = ?", (record_id,)).rowcount > 0

    def clear(self) -> int:
        with self._lock, self._conn() as db:
            return db.execute("DELETE FROM calls").rowcount
