"""Agent profiles: create, edit, duplicate, delete; tokens go only to the keyring (or this session).

Nothing is written until Save: the dialog edits copies. On Save the profiles
file is written, renamed and deleted profiles' tokens follow, and typed tokens
are stored through `TokenVault` (the keyring, or session-only when it fails,
which `notice` reports to the main window).

Keyring calls block (D-Bus, Keychain) and the Qt thread is also the asyncio loop
that carries a call's audio, so every vault call goes through `offload` (the
bridge's `keyring`, or `asyncio.to_thread`): the look-up on open
(`token_changes.lookup_all`, then `ready` is set) and the token changes on Save
(`token_changes.apply_token_changes`, then `notice`, `saved` and accept).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ... import config
from ...config import ConfigError, Profile, ProfileStore
from ...services.token_changes import KeyringView, TokenChange, apply_token_changes, lookup_all
from ...services.tokens import KEYRING, SESSION, TokenVault
from ..widgets.accessible import named
from .profile_form import ProfileForm


@dataclass
class _Entry:
    profile: Profile
    original: str | None = None       # the name on disk; None for a new profile
    token: str = ""                   # typed, saved on Save
    turn: str = ""                    # TURN credential typed, saved on Save
    forget: bool = False              # forget the stored token on Save

    def change(self) -> TokenChange:
        p = self.profile
        return TokenChange(p.name, self.original, self.token, self.turn, self.forget,
                           p.region == config.LOCAL,
                           tuple(s.urls[0] for s in p.ice_servers if s.username and s.urls))


Offload = Callable[..., Awaitable[Any]]
CHECKING = "Checking the system keyring…"


class ProfileDialog(QDialog):
    saved = Signal(str)               # the selected profile's name after Save
    notice = Signal(str)              # e.g. "kept for this session only"

    def __init__(self, store: ProfileStore, vault: TokenVault, parent: QWidget | None = None, *,
                 select: str = "", focus: str = "", new: bool = False,
                 offload: Offload = asyncio.to_thread) -> None:
        super().__init__(parent)
        self.setWindowTitle("Agent profiles")
        self.setAccessibleName("Agent profiles")
        self.store, self.vault = store, vault
        try:
            profiles = store.load()
            self.load_problem = ""
        except ConfigError as exc:
            profiles, self.load_problem = [], str(exc)
        self.entries = [_Entry(copy.deepcopy(p), p.name) for p in profiles]
        self.deleted: list[str] = []
        self.current: _Entry | None = None
        self.offload = offload
        self.view: KeyringView | None = None     # the keyring look-up, once done
        self.ready = asyncio.Event()             # set when the look-up has finished
        self._saving: asyncio.Future | None = None
        self._build()
        self.keyring.setText(CHECKING)
        for e in self.entries:
            self.list.addItem(e.profile.name)
        index = next((i for i, e in enumerate(self.entries) if e.profile.name == select), 0)
        if self.entries:
            self.list.setCurrentRow(index)
        if new or not self.entries:
            self.new_profile()
        self._focus = focus
        self.resize(820, 620)
        self._lookup = asyncio.ensure_future(
            self._look_up([e.original for e in self.entries if e.original is not None]))

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        focus, self._focus = self._focus, ""
        if focus == "token":  # after show: a hidden widget cannot take the focus
            QTimer.singleShot(0, self.form.focus_token)
        elif focus == "ice":
            QTimer.singleShot(0, self.form.focus_ice)

    def _build(self) -> None:
        self._build_widgets()
        self._build_layout()
        self._connect()

    def _build_widgets(self) -> None:
        self.list = named(QListWidget(), "Profiles")
        self.list.setMaximumWidth(230)
        self.new_button = named(QPushButton("&New"), "New profile")
        self.duplicate_button = named(QPushButton("Du&plicate"), "Duplicate profile")
        self.delete_button = named(QPushButton("Dele&te"), "Delete profile")
        self.form = ProfileForm()
        self.problems = named(QLabel(), "Profile problems")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #d0433a;")
        self.keyring = named(QLabel(), "Keyring")
        self.keyring.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = named(self.buttons.button(QDialogButtonBox.StandardButton.Save), "Save profiles")
        named(self.buttons.button(QDialogButtonBox.StandardButton.Cancel), "Cancel")

    def _build_layout(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        for b in (self.new_button, self.duplicate_button, self.delete_button):
            row.addWidget(b)
        left.addLayout(row)
        right = QVBoxLayout()
        right.addWidget(self.form, 1)
        right.addWidget(self.problems)
        right.addWidget(self.keyring)
        top = QHBoxLayout()
        top.addLayout(left)
        top.addLayout(right, 1)
        box = QVBoxLayout(self)
        if self.load_problem:
            warning = QLabel(self.load_problem)
            warning.setWordWrap(True)
            box.addWidget(warning)
        box.addLayout(top, 1)
        box.addWidget(self.buttons)

    def _connect(self) -> None:
        self.list.currentRowChanged.connect(self._select)
        self.new_button.clicked.connect(self.new_profile)
        self.duplicate_button.clicked.connect(self.duplicate_profile)
        self.delete_button.clicked.connect(self.delete_profile)
        self.form.changed.connect(self._validate)
        self.form.token.textChanged.connect(lambda _t: self._validate())
        self.form.forget_token.clicked.connect(self._forget_token)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

    # --- keyring and token status -----------------------------------------------------------

    async def _look_up(self, names: list[str]) -> None:
        try:
            self.view = await self.offload(lookup_all, self.vault, names)
        except Exception as exc:  # noqa: BLE001 (shown; the dialog stays usable)
            self.keyring.setText(f"⚠ The system keyring could not be checked ({type(exc).__name__}).")
            return
        finally:
            self.ready.set()
        self._show_keyring(self.view)
        if self.current is not None and not self.form.token.text():
            self.form.token_status.setText(self._token_status(self.current))

    def _show_keyring(self, view: KeyringView) -> None:
        if view.problem is None:
            self.keyring.setText(f"Tokens are saved only in the system keyring: {view.backend_name}.")
        else:
            self.keyring.setText(f"⚠ {view.problem} A token typed here is kept for this session only "
                                 "and never written anywhere.")

    def _token_status(self, e: _Entry) -> str:
        if e.profile.region == config.LOCAL:
            return "No token needed: the local demo agent makes its own for each run."
        if e.token:
            return "A new token will be saved when you press Save."
        if e.forget:
            return "The stored token will be forgotten when you press Save."
        if e.original is None:
            return "No token stored yet."
        if self.view is None:
            return "Checking the keyring for a stored token…"
        found = self.view.lookups.get(e.original)
        if found is None:
            return "No token stored yet."
        if found.where == KEYRING:
            return f"A token is stored in the keyring ({self.view.backend_name}). Type to replace it."
        if found.where == SESSION:
            return "A session-only token is set (not saved anywhere). Type to replace it."
        return "No token stored yet."

    def _forget_token(self) -> None:
        if self.current is not None:
            self.current.forget, self.current.token = True, ""
            self.form.token.clear()
            self.form.token_status.setText(self._token_status(self.current))

    # --- list ---------------------------------------------------------------------------

    def _commit(self) -> None:
        if self.current is not None:
            self.current.profile = self.form.profile()
            self.current.token = self.form.token.text().strip() or self.current.token
            self.current.turn = self.form.turn_credential.text() or self.current.turn
            if self.current.token:
                self.current.forget = False

    def _select(self, row: int) -> None:
        self._commit()
        self.current = self.entries[row] if 0 <= row < len(self.entries) else None
        self.form.setEnabled(self.current is not None)
        if self.current is not None:
            self.form.load(self.current.profile)
            self.form.token_status.setText(self._token_status(self.current))
        self._validate()

    def _add(self, entry: _Entry) -> None:
        self._commit()
        self.entries.append(entry)
        self.list.addItem(entry.profile.name)
        self.list.setCurrentRow(len(self.entries) - 1)
        self.form.setCurrentIndex(0)
        self.form.name.setFocus()
        self.form.name.selectAll()

    def _unique(self, base: str) -> str:
        names, name, n = {e.profile.name for e in self.entries}, base, 1
        while name in names:
            n += 1
            name = f"{base} {n}"
        return name

    def new_profile(self) -> None:
        self._add(_Entry(Profile(name=self._unique("New agent"))))

    def duplicate_profile(self) -> None:
        if self.current is None:
            return
        self._commit()
        clone = self.form.copy_of(self.current.profile)
        clone.name = self._unique(f"{clone.name} copy")
        self._add(_Entry(clone))

    def delete_profile(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        entry = self.entries.pop(row)
        if entry.original is not None:
            self.deleted.append(entry.original)
        self.current = None
        self.list.takeItem(row)
        self._select(self.list.currentRow())

    # --- validation and save ----------------------------------------------------------------

    def _validate(self) -> list[str]:
        if self.current is None:
            self.problems.setText("")
            self.save_button.setEnabled(True)
            return []
        others = {e.profile.name for e in self.entries if e is not self.current}
        problems = self.form.problems(others)
        self.problems.setText("\n".join(problems))
        self.save_button.setEnabled(not problems)
        item = self.list.item(self.list.currentRow())
        if item is not None:
            item.setText(self.form.name.text().strip() or "(no name)")
        if self.form.token.text():
            self.form.token_status.setText("A new token will be saved when you press Save.")
        return problems

    def save(self) -> None:
        """Validates here; the profiles file (fsync) and then the tokens are written in worker
        threads, so a slow disk or keyring never stalls the loop that carries a call's audio."""
        if self._saving is not None:
            return
        self._commit()
        for i, e in enumerate(self.entries):
            others = {o.profile.name for o in self.entries if o is not e}
            if e.profile.validate() or e.profile.name in others:
                self.list.setCurrentRow(i)
                self._validate()
                return
        self.buttons.setEnabled(False)   # Save and Cancel, until the files and keyring are written
        self._saving = asyncio.ensure_future(
            self._save_all([e.profile for e in self.entries], list(self.deleted),
                           [e.change() for e in self.entries]))

    async def _save_all(self, profiles: list[Profile], deleted: list[str],
                        changes: list[TokenChange]) -> None:
        try:
            await asyncio.to_thread(self.store.save, profiles)
        except (ConfigError, OSError) as exc:
            self.problems.setText(f"The profiles could not be saved: {exc}")
            self.buttons.setEnabled(True)
            self._saving = None
            return
        await asyncio.wait([self._lookup])   # one keyring user at a time
        try:
            lines = await self.offload(apply_token_changes, self.vault, deleted, changes)
        except Exception as exc:  # noqa: BLE001 (a bug: say so, never a token)
            lines = [f"The tokens could not be saved ({type(exc).__name__})."]
        if lines:
            self.notice.emit(" ".join(lines))
        self.saved.emit(self.current.profile.name if self.current else "")
        self.accept()

    def reject(self) -> None:
        if self._saving is None:   # once Save has begun, the tokens are being written: wait
            super().reject()

    def done(self, result: int) -> None:
        if not self._lookup.done():
            self._lookup.cancel()   # the dialog may be deleted on close: no late update
        super().done(result)
