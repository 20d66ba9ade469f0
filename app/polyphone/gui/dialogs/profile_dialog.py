"""Agent profiles: create, edit, duplicate, delete; tokens go only to the keyring (or this session).

Nothing is written until Save: the dialog edits copies. On Save the profiles
file is written, renamed and deleted profiles' tokens follow, and typed tokens
are stored through `TokenVault` (the keyring, or session-only when it fails,
which `notice` reports to the main window).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

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
from ...secrets import SecretStoreError
from ..tokens import KEYRING, SESSION, TokenVault
from .profile_form import ProfileForm


@dataclass
class _Entry:
    profile: Profile
    original: str | None = None       # the name on disk; None for a new profile
    token: str = ""                   # typed, saved on Save
    turn: str = ""                    # TURN credential typed, saved on Save
    forget: bool = False              # forget the stored token on Save


class ProfileDialog(QDialog):
    saved = Signal(str)               # the selected profile's name after Save
    notice = Signal(str)              # e.g. "kept for this session only"

    def __init__(self, store: ProfileStore, vault: TokenVault, parent: QWidget | None = None, *,
                 select: str = "", focus: str = "", new: bool = False) -> None:
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
        self._build()
        self._show_keyring()
        for e in self.entries:
            self.list.addItem(e.profile.name)
        index = next((i for i, e in enumerate(self.entries) if e.profile.name == select), 0)
        if self.entries:
            self.list.setCurrentRow(index)
        if new or not self.entries:
            self.new_profile()
        self._focus = focus
        self.resize(820, 620)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        focus, self._focus = self._focus, ""
        if focus == "token":  # after show: a hidden widget cannot take the focus
            QTimer.singleShot(0, self.form.focus_token)
        elif focus == "ice":
            QTimer.singleShot(0, self.form.focus_ice)

    def _build(self) -> None:
        self.list = QListWidget()
        self.list.setAccessibleName("Profiles")
        self.list.setMaximumWidth(230)
        self.new_button = QPushButton("&New")
        self.new_button.setAccessibleName("New profile")
        self.duplicate_button = QPushButton("Du&plicate")
        self.duplicate_button.setAccessibleName("Duplicate profile")
        self.delete_button = QPushButton("Dele&te")
        self.delete_button.setAccessibleName("Delete profile")
        self.form = ProfileForm()
        self.problems = QLabel()
        self.problems.setAccessibleName("Profile problems")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #d0433a;")
        self.keyring = QLabel()
        self.keyring.setAccessibleName("Keyring")
        self.keyring.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setAccessibleName("Save profiles")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
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

    def _show_keyring(self) -> None:
        problem = self.vault.probe()
        if problem is None:
            self.keyring.setText(f"Tokens are saved only in the system keyring: {self.vault.backend_name()}.")
        else:
            self.keyring.setText(f"⚠ {problem} A token typed here is kept for this session only "
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
        found = self.vault.get(e.original)
        if found.where == KEYRING:
            return f"A token is stored in the keyring ({self.vault.backend_name()}). Type to replace it."
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
        self._commit()
        for i, e in enumerate(self.entries):
            others = {o.profile.name for o in self.entries if o is not e}
            if e.profile.validate() or e.profile.name in others:
                self.list.setCurrentRow(i)
                self._validate()
                return
        try:
            self.store.save([e.profile for e in self.entries])
        except (ConfigError, OSError) as exc:
            self.problems.setText(f"The profiles could not be saved: {exc}")
            return
        self.notice_lines: list[str] = []
        self._save_secrets()
        if self.notice_lines:
            self.notice.emit(" ".join(self.notice_lines))
        self.saved.emit(self.current.profile.name if self.current else "")
        self.accept()

    def _save_secrets(self) -> None:
        names = {e.profile.name for e in self.entries}
        for name in self.deleted:
            if name not in names:
                self._quietly(self.vault.delete, name)
        for e in self.entries:
            name = e.profile.name
            if e.original and e.original != name and e.original not in names:
                self._quietly(self.vault.rename, e.original, name)
            if e.forget:
                self._quietly(self.vault.delete, name)
            if e.token and e.profile.region != config.LOCAL:
                try:
                    saved = self.vault.save(name, e.token)
                except SecretStoreError as exc:
                    self.notice_lines.append(f"The token for “{name}” was not saved: {exc}")
                    continue
                if saved.where == SESSION:
                    self.notice_lines.append(f"“{name}”: {saved.message}")
            turn_urls = [s.urls[0] for s in e.profile.ice_servers if s.username and s.urls]
            if e.turn and turn_urls:
                saved = self.vault.set_turn_credential(name, turn_urls[0], e.turn)
                if saved.where == SESSION:
                    self.notice_lines.append(f"“{name}”: {saved.message}")

    def _quietly(self, fn, *args) -> None:
        try:
            fn(*args)
        except SecretStoreError as exc:
            self.notice_lines.append(str(exc))

