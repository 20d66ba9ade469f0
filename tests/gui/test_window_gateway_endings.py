"""The window's words when the gateway ends a call its own way: a real call to the real local
gateway playing each case (its fault switches), read off the banner and the call bar."""

from __future__ import annotations

from helpers.qt_waits import until
from polyphone import config
from polyphone.engine.events import AGENT_HUNG_UP
from polyphone.localgw import LocalGateway
from polyphone.localgw.faults import ERROR_SHAPE_MESSAGE, Faults
from polyphone.services.errors import SILENT_AGENT

TOKEN = "window-endings-token-61d0"


def window_for(make_window, qloop, faults: Faults):
    gw = LocalGateway(tokens=[TOKEN], faults=faults)
    url = qloop.run(gw.start())
    w = make_window(profiles=[config.Profile(name="Agent", region=config.CUSTOM, url=url, mode="echo",
                                             fetch_ice_servers=False)])
    w.bridge.vault.save("Agent", TOKEN)
    return w, gw


def test_the_agent_hanging_up_by_closing_the_socket_says_so(make_window, qloop):
    w, gw = window_for(make_window, qloop, Faults(hangup_after=1.5, hangup_code=1000))
    try:
        async def scenario():
            w.call_bar.request_call()
            await until(lambda: w.call_bar.status.text() == "Connected")
            await until(lambda: w.call_bar.status.text() == "Call ended", timeout=10)
            await until(lambda: not w.bridge.busy)      # the history row is written after ENDED shows
        qloop.run(scenario())
        assert not w.banner.isHidden()
        assert w.banner.title.text() == "Call ended" and AGENT_HUNG_UP in w.banner.what.text()
        assert "ICE" not in w.banner.what.text()
        assert w.bridge.history.list()[0].result == "ended"
    finally:
        qloop.run(gw.stop())


def test_an_error_without_a_code_shows_the_gateways_own_words(make_window, qloop):
    w, gw = window_for(make_window, qloop, Faults(error_shape="no-code"))
    try:
        async def scenario():
            w.call_bar.request_call()
            await until(lambda: w.call_bar.status.text() == "Call failed", timeout=8)
        qloop.run(scenario())
        assert w.banner.title.text() == "The gateway reported an error"
        assert f"“{ERROR_SHAPE_MESSAGE}”" in w.banner.what.text()
        assert w.banner.action_button.text() == "Call again"
    finally:
        qloop.run(gw.stop())


def test_a_silent_agent_is_said_and_the_call_stays_up(make_window, qloop):
    w, gw = window_for(make_window, qloop, Faults(pause_rtp=(1.0, 4.0)))
    try:
        async def scenario():
            w.call_bar.request_call()
            await until(lambda: w.call_bar.status.text() == "Connected")
            await until(lambda: w.call_bar.reason.text() == SILENT_AGENT, timeout=6)
            assert w.call_bar.status.text() == "Connected"
            await until(lambda: w.call_bar.reason.text() == "", timeout=6)
            assert w.call_bar.status.text() == "Connected"
            w.bridge.hang_up()
            await until(lambda: w.call_bar.status.text() == "Call ended")
        qloop.run(scenario())
        assert w.banner.isHidden()  # you hung up: no notice
    finally:
        qloop.run(gw.stop())
