"""Profile, settings and history dialogs: what they save, what they refuse, what they show."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from helpers.qt_waits import until
from helpers.stores import LockedStore
from polyphone import config
from polyphone.config import Profile, ProfileStore, Settings
from polyphone.gui.dialogs.history_dialog import HistoryDialog
from polyphone.gui.dialogs.profile_dialog import ProfileDialog
from polyphone.gui.dialogs.settings_dialog import SettingsDialog
from polyphone.history import CallRecord, History
from polyphone.secrets import MemoryStore, token_key
from polyphone.services.tokens import TokenVault


def dialog_for(qtbot, qloop, tmp_path, profiles=None, keyring=None, **kw) -> ProfileDialog:
    """A profile dialog once its keyring look-up (in a worker thread) has been shown."""
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(profiles if profiles is not None else config.builtin_profiles())
    d = ProfileDialog(store, TokenVault(keyring or MemoryStore()), **kw)
    qtbot.addWidget(d)
    assert d.keyring.text() == "Checking the system keyring…"
    qloop.run(d.ready.wait())
    assert "keyring" in d.keyring.text() and "Checking" not in d.keyring.text()
    return d


def click_save(qtbot, qloop, d: ProfileDialog) -> None:
    """Save writes the tokens in a worker thread, then closes the dialog: wait for that."""
    finished: list[int] = []
    d.finished.connect(finished.append)
    qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    qloop.run(until(lambda: finished))


def test_create_a_profile_with_variants_token_and_ice(qtbot, qloop, tmp_path) -> None:
    d = dialog_for(qtbot, qloop, tmp_path)
    assert [d.list.item(i).text() for i in range(d.list.count())] == [config.LOCAL_PROFILE, "PolyAI US"]
    qtbot.mouseClick(d.new_button, Qt.MouseButton.LeftButton)
    f = d.form
    f.name.setText("Bookings")
    f.target.setCurrentIndex(f.target.findData("uk-1"))
    f.mode.setCurrentIndex(f.mode.findData("traditional"))
    f.account.setText("acc-1")
    f.project.setText("proj-1")
    f.variant.setText("v-main")
    f.artifact.setText("art-9")
    f.lambda_version.setText("42")
    f.caller.setText("+441")
    qtbot.mouseClick(f.add_variant, Qt.MouseButton.LeftButton)
    f.variants.item(0, 0).setText("Fast")
    f.variants.item(0, 1).setText("v-fast")
    qtbot.mouseClick(f.add_ice, Qt.MouseButton.LeftButton)
    f.ice.item(0, 0).setText("turn:turn.example.com:3478 turns:turn.example.com:443")
    f.ice.item(0, 1).setText("alice")
    f.turn_credential.setText("turn-secret")
    f.fetch_ice.setChecked(False)
    qtbot.keyClicks(f.token, "  tok-bookings-1  ")
    assert d.save_button.isEnabled(), d.problems.text()
    with qtbot.waitSignal(d.saved) as sig:
        click_save(qtbot, qloop, d)
    assert sig.args == ["Bookings"]
    saved = d.store.get("Bookings")
    assert saved == Profile(name="Bookings", region="uk-1", mode="traditional", account_id="acc-1",
                            project_id="proj-1", variant_id="v-main",
                            variants=[config.Variant("Fast", "v-fast")], artifact_version="art-9",
                            lambda_deployment_version="42", caller="+441",
                            ice_servers=[config.IceServerEntry(
                                ["turn:turn.example.com:3478", "turns:turn.example.com:443"], "alice")],
                            fetch_ice_servers=False)
    assert d.vault.get("Bookings").token == "tok-bookings-1"
    assert d.vault.turn_credential("Bookings", "turn:turn.example.com:3478") == "turn-secret"
    text = (tmp_path / "profiles.toml").read_text()
    assert "tok-bookings" not in text and "turn-secret" not in text


def test_inline_validation_blocks_save_and_marks_the_field(qtbot, qloop, tmp_path) -> None:
    d = dialog_for(qtbot, qloop, tmp_path, select="PolyAI US")
    f = d.form
    f.name.setText("")
    assert not d.save_button.isEnabled() and "name" in d.problems.text()
    assert f.name.accessibleDescription() == "has a problem"
    f.name.setText(config.LOCAL_PROFILE)
    assert "already called" in d.problems.text() and not d.save_button.isEnabled()
    f.name.setText("Custom")
    f.target.setCurrentIndex(f.target.findData(config.CUSTOM))
    assert f.url.isEnabled() and not d.save_button.isEnabled()
    f.url.setText("ws://gateway.example.com/api/v1/webrtc/signal")   # plain ws:// off this computer
    assert not d.save_button.isEnabled() and f.url.accessibleDescription() == "has a problem"
    f.url.setText("wss://gateway.example.com/api/v1/webrtc/signal")
    assert d.save_button.isEnabled(), d.problems.text()
    qtbot.mouseClick(f.add_ice, Qt.MouseButton.LeftButton)
    f.ice.item(0, 0).setText("http://nope")
    assert "ICE server" in d.problems.text() and not d.save_button.isEnabled()
    assert f.name.accessibleDescription() == ""


def test_duplicate_rename_and_delete_carry_tokens(qtbot, qloop, tmp_path) -> None:
    keyring = MemoryStore()
    keyring.set(token_key("PolyAI US"), "tok-us")
    d = dialog_for(qtbot, qloop, tmp_path, keyring=keyring, select="PolyAI US")
    assert "stored in the keyring" in d.form.token_status.text()
    qtbot.mouseClick(d.duplicate_button, Qt.MouseButton.LeftButton)
    assert d.form.name.text() == "PolyAI US copy"
    d.form.name.setText("PolyAI US staging")
    d.list.setCurrentRow(1)                 # back to the original: rename it
    d.form.name.setText("PolyAI US prod")
    d.list.setCurrentRow(0)                 # the local profile: delete it
    qtbot.mouseClick(d.delete_button, Qt.MouseButton.LeftButton)
    click_save(qtbot, qloop, d)
    assert [p.name for p in d.store.load()] == ["PolyAI US prod", "PolyAI US staging"]
    assert keyring.get(token_key("PolyAI US prod")) == "tok-us"
    assert keyring.get(token_key("PolyAI US")) is None
    assert keyring.get(token_key("PolyAI US staging")) is None


def test_cancel_writes_nothing(qtbot, qloop, tmp_path) -> None:
    d = dialog_for(qtbot, qloop, tmp_path)
    before = (tmp_path / "profiles.toml").read_text()
    qtbot.mouseClick(d.delete_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(d.form.token, "tok")
    d.reject()
    assert (tmp_path / "profiles.toml").read_text() == before


Locked = LockedStore


def test_a_locked_keyring_keeps_the_token_for_this_session_only(qtbot, qloop, tmp_path) -> None:
    d = dialog_for(qtbot, qloop, tmp_path, keyring=Locked(), select="PolyAI US")
    assert "locked" in d.keyring.text() and "session only" in d.keyring.text()
    qtbot.keyClicks(d.form.token, "tok-session")
    with qtbot.waitSignal(d.notice) as sig:
        click_save(qtbot, qloop, d)
    assert "session only" in sig.args[0] and "tok-session" not in sig.args[0]
    assert d.vault.get("PolyAI US").token == "tok-session" and d.vault.get("PolyAI US").where == "session"


def test_the_local_profile_needs_no_token(qtbot, qloop, tmp_path) -> None:
    d = dialog_for(qtbot, qloop, tmp_path, select=config.LOCAL_PROFILE)
    assert not d.form.token.isEnabled() and "No token needed" in d.form.token_status.text()


def test_settings_dialog_saves_and_validates(qtbot, tmp_path) -> None:
    s = Settings()
    d = SettingsDialog(s)
    qtbot.addWidget(d)
    assert not d.folder.isEnabled()
    d.echo.setChecked(False)
    d.recording.setChecked(True)
    assert d.folder.isEnabled()
    d.folder.setText("relative/dir")
    d.save()
    assert "full path" in d.problems.text() and s.recording is False  # nothing applied
    d.folder.setText(str(tmp_path / "rec"))
    d.theme.setCurrentIndex(d.theme.findData("light"))
    d.save()
    assert s.echo_cancellation is False and s.recording and s.recording_folder == str(tmp_path / "rec")
    assert s.theme == "light" and d.result() == d.DialogCode.Accepted


def test_history_dialog_lists_copies_and_deletes(qtbot, tmp_path) -> None:
    h = History(tmp_path / "h.sqlite3")
    rec = tmp_path / "call.wav"
    rec.write_bytes(b"RIFF")
    h.add(CallRecord(started_at=time.time() - 60, profile="A", result="failed", error_code="UNAUTHORIZED",
                     error_message="The gateway rejected the token."))
    h.add(CallRecord(started_at=time.time(), profile="B", variant="Fast", result="ended", session_id="s-1",
                     call_sid="c-1", duration_s=12.0, turn_latencies_ms=[800, 600, 700],
                     recording_path=str(rec)))
    d = HistoryDialog(h)
    qtbot.addWidget(d)
    assert d.table.rowCount() == 2 and d.table.item(0, 1).text() == "B"
    assert d.table.item(0, 5).text() == "median 700 ms (3)" and d.table.item(1, 9).text().startswith("UNAUTH")
    assert d.play_button.isEnabled() and d.reveal_button.isEnabled()
    qtbot.mouseClick(d.copy_button, Qt.MouseButton.LeftButton)
    copied = QApplication.clipboard().text()
    assert "Session ID: s-1" in copied and "800, 600, 700" in copied and str(rec) in copied
    d.table.selectRow(1)
    assert not d.play_button.isEnabled()
    qtbot.mouseClick(d.delete_button, Qt.MouseButton.LeftButton)
    assert d.table.rowCount() == 1 and len(h.list()) == 1


def test_history_is_searched_by_what_was_said(qtbot, tmp_path) -> None:
    h = History(tmp_path / "h.sqlite3")
    h.add(CallRecord(started_at=time.time() - 60, profile="A", result="ended",
                     transcript="Agent: Hello.\nYou: I'd like a table for two."))
    h.add(CallRecord(started_at=time.time(), profile="B", result="ended"))
    d = HistoryDialog(h)
    qtbot.addWidget(d)
    assert d.table.rowCount() == 2 and "No words" in d.transcript.toPlainText()
    d.search.setText("Table For")
    assert d.table.rowCount() == 1 and d.table.item(0, 1).text() == "A"
    assert d.transcript.toPlainText() == "Agent: Hello.\nYou: I'd like a table for two."
    assert "1 call(s) in which “Table For” was said." == d.status.text()
    d.search.clear()
    assert d.table.rowCount() == 2


def test_history_saves_a_repro_bundle_of_any_call(qtbot, tmp_path) -> None:
    import json
    import zipfile
    h = History(tmp_path / "h.sqlite3")
    rec = tmp_path / "call.wav"
    rec.write_bytes(b"RIFF....WAVE")
    h.add(CallRecord(started_at=time.time(), profile="B", result="ended", session_id="s-9", call_sid="c-9",
                     turn_latencies_ms=[812.0, 640.5], recording_path=str(rec),
                     details={"stats": [{"t": 1.0, "rtt_ms": 41.0}],
                              "log": [{"t": 0.1, "level": "info", "source": "ice", "text": "connected"}],
                              "warnings": [{"t": 2.0, "kind": "rtt", "active": True}],
                              "devices": {"input": "pulse:input:vmic", "output": "system default"}}))
    d = HistoryDialog(h)
    qtbot.addWidget(d)
    assert d.bundle_button.isEnabled()
    out = tmp_path / "bundle.zip"
    assert d.save_bundle(out) and "Saved" in d.status.text()
    with zipfile.ZipFile(out) as z:
        assert {"recording.wav", "stats.json", "signaling.log", "turns.csv", "facts.json",
                "warnings.json", "report.json"} <= set(z.namelist())
        facts = json.loads(z.read("facts.json"))
        assert facts["sessionId"] == "s-9" and facts["devices"]["input"] == "pulse:input:vmic"
        assert "812.0" in z.read("turns.csv").decode() and "connected" in z.read("signaling.log").decode()
        assert json.loads(z.read("stats.json"))[0]["rtt_ms"] == 41.0
    assert d.save_bundle(tmp_path / "new-dir" / "b.zip")            # a new folder is made
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert not d.save_bundle(blocked / "b.zip") and "could not be saved" in d.status.text()
