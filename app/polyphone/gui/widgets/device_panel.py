"""Microphone and speaker: pickers, live level meters, Test buttons, speaker volume."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QPushButton, QSlider, QWidget

from .accessible import named
from .level_meter import LevelMeter

SYSTEM_DEFAULT = "System default"


class DevicePanel(QWidget):
    input_selected = Signal(str)       # Device.id ("" = the system default)
    output_selected = Signal(str)
    test_requested = Signal(str)       # input | output
    volume_changed = Signal(float)     # 0 .. 1.5

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._build_devices()
        self._build_volume()
        self.check_result = named(QLabel(""), "Device test result")
        self.check_result.setWordWrap(True)
        self._build_grid()
        self._connect()
        self.set_devices([], [], "", "")

    def _build_devices(self) -> None:
        self.input_box, self.output_box = named(QComboBox(), "Microphone"), named(QComboBox(), "Speaker")
        for box in (self.input_box, self.output_box):
            box.setMinimumContentsLength(24)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.input_meter = named(LevelMeter(), "Microphone level")
        self.output_meter = named(LevelMeter(), "Speaker level")
        self.input_test = named(QPushButton("Test"), "Test microphone",
                                tip="Record a few seconds and report the level")
        self.output_test = named(QPushButton("Test"), "Test speaker", tip="Play a short tone on the speaker")

    def _build_volume(self) -> None:
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 150)
        self.volume.setValue(100)
        self.volume.setPageStep(10)
        named(self.volume, "Speaker volume", tip="Speaker volume (100 % is unchanged)")
        self.volume_label = named(QLabel("100 %"), "Speaker volume value")

    def _build_grid(self) -> None:
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        mic_label, spk_label, vol_label = QLabel("&Microphone"), QLabel("&Speaker"), QLabel("Vol&ume")
        mic_label.setBuddy(self.input_box)
        spk_label.setBuddy(self.output_box)
        vol_label.setBuddy(self.volume)
        grid.addWidget(mic_label, 0, 0)
        grid.addWidget(self.input_box, 0, 1)
        grid.addWidget(self.input_meter, 0, 2)
        grid.addWidget(self.input_test, 0, 3)
        grid.addWidget(spk_label, 1, 0)
        grid.addWidget(self.output_box, 1, 1)
        grid.addWidget(self.output_meter, 1, 2)
        grid.addWidget(self.output_test, 1, 3)
        grid.addWidget(vol_label, 2, 0)
        grid.addWidget(self.volume, 2, 1)
        grid.addWidget(self.volume_label, 2, 2)
        grid.addWidget(self.check_result, 3, 0, 1, 4)
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(2, 2)

    def _connect(self) -> None:
        self.input_box.activated.connect(
            lambda _i: self.input_selected.emit(self.input_box.currentData() or ""))
        self.output_box.activated.connect(
            lambda _i: self.output_selected.emit(self.output_box.currentData() or ""))
        self.input_test.clicked.connect(lambda: self._test("input"))
        self.output_test.clicked.connect(lambda: self._test("output"))
        self.volume.valueChanged.connect(self._on_volume)

    def set_devices(self, inputs: list[Any], outputs: list[Any], selected_in: str, selected_out: str) -> None:
        for box, devices, selected in ((self.input_box, inputs, selected_in),
                                       (self.output_box, outputs, selected_out)):
            box.blockSignals(True)
            box.clear()
            box.addItem(SYSTEM_DEFAULT, "")
            for d in devices:
                box.addItem(d.name + ("  (default)" if d.is_default else ""), d.id)
                box.setItemData(box.count() - 1, f"{d.name} — {d.hostapi}", Qt.ItemDataRole.ToolTipRole)
            index = box.findData(selected) if selected else 0
            if index < 0:  # the saved device is not here now: say so, keep the choice
                box.addItem(f"{selected.rsplit(':', 1)[-1]} (not connected)", selected)
                index = box.count() - 1
            box.setCurrentIndex(index)
            box.blockSignals(False)

    def set_levels(self, input_dbfs: float, output_dbfs: float, in_speaking: bool = False,
                   out_speaking: bool = False) -> None:
        self.input_meter.set_level(input_dbfs, in_speaking)
        self.output_meter.set_level(output_dbfs, out_speaking)

    def set_volume(self, volume: float) -> None:
        self.volume.setValue(round(volume * 100))

    def set_in_call(self, in_call: bool) -> None:
        for b in (self.input_test, self.output_test):
            b.setEnabled(not in_call)
            b.setToolTip("Hang up to test the devices" if in_call else b.toolTip())
        if not in_call:
            self.output_meter.set_level(-120.0)

    def _test(self, kind: str) -> None:
        (self.input_test if kind == "input" else self.output_test).setEnabled(False)
        self.check_result.setText("Testing the microphone… speak now." if kind == "input"
                                  else "Playing a tone on the speaker…")
        self.test_requested.emit(kind)

    def show_check_result(self, kind: str, text: str) -> None:
        (self.input_test if kind == "input" else self.output_test).setEnabled(True)
        self.check_result.setText(f"{'Microphone' if kind == 'input' else 'Speaker'} test: {text}")

    def _on_volume(self, value: int) -> None:
        self.volume_label.setText(f"{value} %")
        self.volume_changed.emit(value / 100.0)
