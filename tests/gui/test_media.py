"""The audio adapters of the bridge: the idle meter never leaves a stream open; options map."""

from __future__ import annotations

import asyncio
import threading
import time

from polyphone import config
from polyphone.services import call_media as media


class SlowCapture:
    opened: list = []

    def __init__(self, device_id):
        self.device_id = device_id
        self.running = False
        SlowCapture.opened.append(self)

    def start(self):
        assert threading.current_thread() is not threading.main_thread()  # never on the loop
        time.sleep(0.2)
        self.running = True

    def stop(self):
        self.running = False

    def take(self):
        import numpy as np
        return np.full(480, 3000, np.int16) if self.running else np.zeros(0, np.int16)


def test_a_stop_during_start_leaves_no_stream_open(qloop, monkeypatch) -> None:
    from polyphone.audio import capture
    monkeypatch.setattr(capture, "Capture", SlowCapture)
    SlowCapture.opened = []
    levels = []
    meter = media.InputMeter(levels.append, interval=0.02)

    async def scenario():
        starting = asyncio.ensure_future(meter.start("pulse:input:vmic"))
        await asyncio.sleep(0.05)           # the stream is opening in a worker thread
        await meter.close()                 # e.g. the window closes now
        assert await starting == ""
        await asyncio.sleep(0.1)
        again = await meter.start(None)     # nothing opens after close()
        return again

    assert qloop.run(scenario()) == ""
    assert len(SlowCapture.opened) == 1 and not SlowCapture.opened[0].running
    assert not meter.running


def test_the_meter_reports_levels_and_restarts_on_another_device(qloop, monkeypatch) -> None:
    from polyphone.audio import capture
    monkeypatch.setattr(capture, "Capture", SlowCapture)
    SlowCapture.opened = []
    levels = []
    meter = media.InputMeter(levels.append, interval=0.02)

    async def scenario():
        assert await meter.start("a") == ""
        await asyncio.sleep(0.1)
        assert await meter.start("b") == ""
        await asyncio.sleep(0.1)
        await meter.close()

    qloop.run(scenario())
    assert [c.device_id for c in SlowCapture.opened] == ["a", "b"]
    assert not any(c.running for c in SlowCapture.opened)
    assert levels and max(levels) > -30


def test_options_follow_the_settings(tmp_path) -> None:
    s = config.Settings(input_device="pulse:input:vmic", echo_cancellation=False, volume=0.7)
    o = media.audio_settings(s, tmp_path / "r.wav")
    assert (o.input_device, o.output_device, o.echo_cancellation, o.noise_suppression, o.volume,
            o.record_path) == ("pulse:input:vmic", None, False, True, 0.7, tmp_path / "r.wav")
    from polyphone.audio.pipeline import AudioSettings
    assert isinstance(o, AudioSettings)  # one settings type, from the window to the pipeline


def test_a_dead_poll_task_does_not_keep_the_stream_open(qloop, monkeypatch) -> None:
    from polyphone.audio import capture
    monkeypatch.setattr(capture, "Capture", SlowCapture)
    SlowCapture.opened = []
    meter = media.InputMeter(lambda level: None, interval=0.02)

    async def broken_poll(*_args):
        raise RuntimeError("no running event loop")

    async def scenario():
        assert await meter.start("a") == ""
        meter._task.cancel()
        meter._task = asyncio.ensure_future(broken_poll())
        await asyncio.sleep(0.01)
        await meter.close()

    qloop.run(scenario())
    assert not SlowCapture.opened[0].running
