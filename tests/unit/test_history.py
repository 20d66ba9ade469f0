"""Call history in SQLite: rows round-trip, the schema is versioned, damage is moved aside."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from polyphone.history import SCHEMA_VERSION, CallRecord, History, HistoryError


def record(**kw) -> CallRecord:
    base = dict(started_at=1_700_000_000.0, profile="Bookings", result="ended", variant="B",
                session_id="sess-1", call_sid="sid-1", duration_s=12.5,
                turn_latencies_ms=[812.34, 640.0], recording_path="/tmp/r.wav")
    base.update(kw)
    return CallRecord(**base)


def test_a_row_round_trips_newest_first(tmp_path) -> None:
    h = History(tmp_path / "data" / "history.sqlite3")
    first = h.add(record())
    second = h.add(record(started_at=1_700_000_100.0, result="failed", error_code="UNAUTHORIZED",
                          error_message="The gateway rejected the token.", turn_latencies_ms=[]))
    rows = h.list()
    assert [r.id for r in rows] == [second, first]
    got = h.get(first)
    assert got == record(id=first, turn_latencies_ms=[812.3, 640.0])
    assert got.recording is not None and got.recording.name == "r.wav"
    assert rows[0].error_code == "UNAUTHORIZED" and rows[0].turn_latencies_ms == []
    assert stat.S_IMODE(h.path.stat().st_mode) == 0o600
    assert h.notice == ""


def test_filter_delete_and_clear(tmp_path) -> None:
    h = History(tmp_path / "h.sqlite3")
    a = h.add(record(profile="A"))
    h.add(record(profile="B"))
    h.add(record(profile="B"))
    assert [r.profile for r in h.list(profile="B")] == ["B", "B"]
    assert h.delete(a) and not h.delete(a)
    assert h.clear() == 2 and h.list() == []


def test_it_persists_across_opens_and_has_a_schema_version(tmp_path) -> None:
    path = tmp_path / "h.sqlite3"
    h = History(path)
    h.add(record())
    h.close()
    assert len(History(path).list()) == 1
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_a_bad_result_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError):
        History(tmp_path / "h.sqlite3").add(record(result="great"))


def test_a_damaged_file_is_moved_aside_not_lost(tmp_path) -> None:
    path = tmp_path / "history.sqlite3"
    junk = b"this is not a database at all" * 100
    path.write_bytes(junk)
    h = History(path)
    h.add(record())
    assert "moved to" in h.notice and "new, empty history" in h.notice
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == junk
    assert str(aside[0]) in h.notice
    assert len(h.list()) == 1


def test_unknown_tables_count_as_damage(tmp_path) -> None:
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()
    h = History(path)
    assert h.list() == [] and "moved to" in h.notice


def test_a_newer_schema_is_left_alone(tmp_path) -> None:
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer Polyphone"):
        History(path).list()
    assert path.exists() and not [p for p in tmp_path.iterdir() if ".damaged-" in p.name]


def test_the_default_location_is_the_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POLYPHONE_DATA_DIR", str(tmp_path / "d"))
    assert History().path == tmp_path / "d" / "history.sqlite3"


def test_a_version_1_history_is_migrated_with_every_row_kept(tmp_path) -> None:
    import sqlite3

    from polyphone import history as hist
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(hist._SCHEMA_V1)
    db.execute("INSERT INTO calls (started_at, profile, result, session_id, turn_latencies) "
               "VALUES (1.0, 'Old', 'ended', 's-old', '[700.0]')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    h = History(path)
    [old] = h.list()
    assert old.profile == "Old" and old.session_id == "s-old" and old.turn_latencies_ms == [700.0]
    assert old.details == {}
    h.add(CallRecord(started_at=2.0, profile="New", result="ended", details={"stats": [{"t": 1}]}))
    assert h.list()[0].details == {"stats": [{"t": 1}]}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == hist.SCHEMA_VERSION
    assert old.transcript == ""


def test_calls_are_found_by_what_was_said(tmp_path) -> None:
    h = History(tmp_path / "h.sqlite3")
    h.add(CallRecord(started_at=1.0, profile="A", result="ended",
                     transcript="Agent: Hello, how can I help?\nYou: A table for two, please."))
    h.add(CallRecord(started_at=2.0, profile="B", result="ended", transcript="Agent: 100% sure_thing"))
    h.add(CallRecord(started_at=3.0, profile="A", result="failed"))
    assert [r.started_at for r in h.list(text="TABLE for two")] == [1.0]        # any case
    assert [r.started_at for r in h.list(text="100%")] == [2.0]                 # % and _ are literal
    assert h.list(text="1_0") == [] and h.list(text="sure thing") == []
    assert [r.started_at for r in h.list(text="  ")] == [3.0, 2.0, 1.0]         # blank: everything
    assert h.list(profile="B", text="table") == []
    h.close()
    assert History(tmp_path / "h.sqlite3").list(text="help")[0].transcript.startswith("Agent: Hello")
