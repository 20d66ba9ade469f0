"""The fields of one profile, with inline validation (`Profile.validate()`), in two tabs."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ... import config, protocol
from ...config import IceServerEntry, Profile, Variant
from ..widgets.accessible import named

TARGETS = (("us-1", "PolyAI US (us-1)"), ("uk-1", "PolyAI UK (uk-1)"), ("euw-1", "PolyAI EU West (euw-1)"),
           (config.CUSTOM, "Custom URL"), (config.LOCAL, "Local demo agent (runs on this computer)"))
INVALID_STYLE = "border: 1px solid #d0433a;"


def _line(name: str, placeholder: str = "") -> QLineEdit:
    edit = named(QLineEdit(), name)
    edit.setPlaceholderText(placeholder)
    return edit


def _buddy(text: str, widget: QWidget) -> QLabel:
    """A form label whose &-shortcut focuses `widget` (QFormLayout only does this for widgets)."""
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def _table(headers: list[str], name: str) -> QTableWidget:
    table = named(QTableWidget(0, len(headers)), name)
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.verticalHeader().hide()
    table.setMaximumHeight(120)
    table.setTabKeyNavigation(False)
    return table


class ProfileForm(QTabWidget):
    changed = Signal()         # any field edited

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Profile fields")
        self._loading = False
        self.addTab(self._agent_tab(), "&Agent")
        self.addTab(self._advanced_tab(), "Ad&vanced")
        for edit in self.findChildren(QLineEdit):
            if edit is not self.token:
                edit.textChanged.connect(self._edited)
        for box in (self.target, self.mode):
            box.currentIndexChanged.connect(self._edited)
        self.fetch_ice.toggled.connect(self._edited)
        self.variants.itemChanged.connect(self._edited)
        self.ice.itemChanged.connect(self._edited)

    # --- building ----------------------------------------------------------------------

    def _agent_tab(self) -> QWidget:
        self._build_agent_fields()
        self._build_variant_fields()
        self._build_token_fields()
        form = QFormLayout()
        form.addRow("Na&me", self.name)
        form.addRow("&Region", self.target)
        form.addRow("&URL", self.url)
        form.addRow("M&ode", self.mode)
        form.addRow("Account &ID", self.account)
        form.addRow("Pro&ject ID", self.project)
        form.addRow("Default variant I&D", self.variant)
        form.addRow("Named variants", self._variants_box())
        token_row = self._token_row()
        form.addRow(_buddy("To&ken", self.token), token_row)
        form.addRow("", self.token_status)
        self.target.currentIndexChanged.connect(self._target_changed)
        tab = QWidget()
        tab.setLayout(form)
        return tab

    def _build_agent_fields(self) -> None:
        self.name = _line("Profile name", "e.g. Bookings agent (staging)")
        self.target = named(QComboBox(), "Region")
        for key, text in TARGETS:
            self.target.addItem(text, key)
        self.url = _line("Custom signaling URL", "wss://…/api/v1/webrtc/signal")
        self.mode = named(QComboBox(), "Mode")
        for m in protocol.Mode:
            self.mode.addItem(m.value, m.value)
        self.account = _line("Account ID")
        self.project = _line("Project ID")
        self.variant = _line("Default variant ID", "optional")

    def _build_variant_fields(self) -> None:
        self.variants = _table(["Variant name", "variantId"], "Named variants")
        self.add_variant = named(QPushButton("Add variant"), "Add variant")
        self.remove_variant = named(QPushButton("Remove variant"), "Remove variant")
        self.add_variant.clicked.connect(lambda: self._add_row(self.variants, ["", ""], edit=True))
        self.remove_variant.clicked.connect(lambda: self._remove_row(self.variants))

    def _build_token_fields(self) -> None:
        self.token = _line("Token", "Paste the token from Agent Studio")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_token = named(QCheckBox("Sho&w"), "Show token")
        self.show_token.toggled.connect(lambda on: self.token.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        self.forget_token = named(QPushButton("&Forget token"), "Forget stored token")
        self.token_status = named(QLabel(), "Token storage")
        self.token_status.setWordWrap(True)

    def _variants_box(self) -> QVBoxLayout:
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_variant)
        buttons.addWidget(self.remove_variant)
        buttons.addStretch(1)
        variants = QVBoxLayout()
        variants.addWidget(self.variants)
        variants.addLayout(buttons)
        return variants

    def _token_row(self) -> QHBoxLayout:
        token_row = QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(self.show_token)
        token_row.addWidget(self.forget_token)
        return token_row

    def _advanced_tab(self) -> QWidget:
        self.artifact = _line("Artifact version", "agentVersionOverride.artifactVersion")
        self.lambda_version = _line("Lambda deployment version",
                                    "agentVersionOverride.lambdaDeploymentVersion")
        self.caller = _line("Caller", "optional, e.g. +441234567890")
        self.callee = _line("Callee", "optional")
        self.call_sid = _line("Call SID", "empty: a fresh ID for every call")
        self.ice = _table(["ICE server URLs (space-separated)", "Username"], "ICE servers")
        self.add_ice = named(QPushButton("Add ICE server"), "Add ICE server")
        self.remove_ice = named(QPushButton("Remove ICE server"), "Remove ICE server")
        self.add_ice.clicked.connect(lambda: self._add_row(self.ice, ["turn:", ""], edit=True))
        self.remove_ice.clicked.connect(lambda: self._remove_row(self.ice))
        self.turn_credential = _line("TURN credential", "saved only in the keyring")
        self.turn_credential.setEchoMode(QLineEdit.EchoMode.Password)
        self.fetch_ice = named(QCheckBox("Ask the gateway for ICE servers (TURN) before each call"),
                               "Fetch ICE servers from the gateway")
        self.ca_file = _line("CA certificate file", "only for a private gateway")
        form = QFormLayout()
        form.addRow("Arti&fact version", self.artifact)
        form.addRow("La&mbda deployment", self.lambda_version)
        form.addRow("Calle&r", self.caller)
        form.addRow("Cal&lee", self.callee)
        form.addRow("Call S&ID", self.call_sid)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_ice)
        buttons.addWidget(self.remove_ice)
        buttons.addStretch(1)
        ice = QVBoxLayout()
        ice.addWidget(self.ice)
        ice.addLayout(buttons)
        form.addRow(_buddy("IC&E servers", self.ice), ice)
        form.addRow("TURN cre&dential", self.turn_credential)
        form.addRow("", self.fetch_ice)
        form.addRow("CA file", self.ca_file)
        tab = QWidget()
        tab.setLayout(form)
        return tab

    def _add_row(self, table: QTableWidget, values: list[str], edit: bool = False) -> None:
        row = table.rowCount()
        table.insertRow(row)
        for col, value in enumerate(values):
            table.setItem(row, col, QTableWidgetItem(value))
        if edit:
            table.setCurrentCell(row, 0)
            table.setFocus()
            table.editItem(table.item(row, 0))
        self._edited()

    def _remove_row(self, table: QTableWidget) -> None:
        if table.currentRow() >= 0:
            table.removeRow(table.currentRow())
            self._edited()

    # --- profile <-> fields --------------------------------------------------------------

    def load(self, p: Profile) -> None:
        self._loading = True
        self.name.setText(p.name)
        self.target.setCurrentIndex(max(0, self.target.findData(p.region)))
        self.url.setText(p.url)
        self.mode.setCurrentIndex(max(0, self.mode.findData(p.mode)))
        for edit, value in ((self.account, p.account_id), (self.project, p.project_id),
                            (self.variant, p.variant_id), (self.artifact, p.artifact_version),
                            (self.lambda_version, p.lambda_deployment_version), (self.caller, p.caller),
                            (self.callee, p.callee), (self.call_sid, p.call_sid), (self.ca_file, p.ca_file)):
            edit.setText(value)
        self.variants.setRowCount(0)
        for v in p.variants:
            self._add_row(self.variants, [v.name, v.variant_id])
        self.ice.setRowCount(0)
        for e in p.ice_servers:
            self._add_row(self.ice, [" ".join(e.urls), e.username or ""])
        self.fetch_ice.setChecked(p.fetch_ice_servers)
        self.token.clear()
        self.turn_credential.clear()
        self._loading = False
        self._target_changed()

    def profile(self) -> Profile:
        def cell(t: QTableWidget, r: int, c: int) -> str:
            item = t.item(r, c)
            return item.text().strip() if item else ""

        variants = [Variant(cell(self.variants, r, 0), cell(self.variants, r, 1))
                    for r in range(self.variants.rowCount())]
        ice = [IceServerEntry(cell(self.ice, r, 0).split(), cell(self.ice, r, 1) or None)
               for r in range(self.ice.rowCount())]
        return Profile(
            name=self.name.text().strip(), region=self.target.currentData(), url=self.url.text().strip(),
            mode=self.mode.currentData(), account_id=self.account.text().strip(),
            project_id=self.project.text().strip(), variant_id=self.variant.text().strip(),
            variants=variants, artifact_version=self.artifact.text().strip(),
            lambda_deployment_version=self.lambda_version.text().strip(), caller=self.caller.text().strip(),
            callee=self.callee.text().strip(), call_sid=self.call_sid.text().strip(), ice_servers=ice,
            fetch_ice_servers=self.fetch_ice.isChecked(), ca_file=self.ca_file.text().strip())

    def problems(self, other_names: set[str]) -> list[str]:
        """Profile.validate() plus what only the dialog can know; marks the fields at fault."""
        p = self.profile()
        problems = p.validate()
        if p.name in other_names:
            problems.append(f"Another profile is already called “{p.name}”.")
        names = [v.name for v in p.variants]
        if any(not v.name or not v.variant_id for v in p.variants):
            problems.append("Each named variant needs a name and a variantId.")
        elif len(set(names)) != len(names):
            problems.append("Two named variants have the same name.")
        fields = {"name": self.name, "url": self.url, "variants": self.variants, "ice": self.ice,
                  "mode": self.mode, "region": self.target}
        bad = {self._field_of(x, p.region) for x in problems}
        for key, widget in fields.items():
            widget.setStyleSheet(INVALID_STYLE if key in bad else "")
            widget.setAccessibleDescription("has a problem" if key in bad else "")
        return problems

    @staticmethod
    def _field_of(problem: str, region: str) -> str:
        low = problem.lower()
        if low.startswith("the name") or "profile is already" in low:
            return "name"
        for key, words in (("variants", "variant"), ("ice", "ice server"), ("mode", "mode"),
                           ("region", "region")):
            if words in low:
                return key
        return "url" if region == config.CUSTOM else ""

    def _target_changed(self, *_args) -> None:
        region = self.target.currentData()
        self.url.setEnabled(region == config.CUSTOM)
        local = region == config.LOCAL
        for w in (self.token, self.show_token, self.forget_token):
            w.setEnabled(not local)
        self._edited()

    def _edited(self, *_args) -> None:
        if not self._loading:
            self.changed.emit()

    def copy_of(self, p: Profile) -> Profile:
        return dataclasses.replace(p, variants=[dataclasses.replace(v) for v in p.variants],
                                   ice_servers=[dataclasses.replace(e, urls=list(e.urls))
                                                for e in p.ice_servers])

    def focus_token(self) -> None:
        self.setCurrentIndex(0)
        self.token.setFocus(Qt.FocusReason.OtherFocusReason)

    def focus_ice(self) -> None:
        self.setCurrentIndex(1)
        self.ice.setFocus(Qt.FocusReason.OtherFocusReason)
