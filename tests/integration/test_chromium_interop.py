"""Chromium (libwebrtc) calls the local gateway: proof that our gateway speaks to a browser.

Headless Chromium with its fake microphone (a beep) loads the test page
(tests/bench/chromium_page), which speaks the gateway's signaling protocol:
offer with authToken and mode `echo`, answer, trickle ICE both ways. ICE
connects on loopback, the echo agent sends the beep back, and Chromium's own
getStats() shows the decoded audio energy. Leaving the page sends `close`.
Skipped when Chromium is not installed (Debian package `chromium`).
"""

from __future__ import annotations

import pytest

from helpers import chromium
from helpers.gateway_caller import wait_until

pytestmark = pytest.mark.integration

TOKEN = "chromium-token"
STATE = "window.polyphoneTest"


@pytest.fixture
async def browser_page(tmp_path, gateway_factory):
    why = chromium.available()
    if why:
        pytest.skip(why)
    gateway = await gateway_factory(tokens=[TOKEN], agent="echo")
    with chromium.PageServer() as pages:
        browser = await chromium.launch(tmp_path, pages.url(url=gateway.url, token=TOKEN, mode="echo"),
                                        fake_media=True)
        try:
            page = await browser.page()
            yield gateway, page
        except BaseException:
            print(browser.log_tail())
            raise
        finally:
            await browser.aclose()


async def test_chromium_calls_the_gateway_and_hears_the_echo(browser_page):
    gateway, page = browser_page
    try:
        await page.wait_for(f"{STATE} && ['connected', 'failed'].includes({STATE}.phase)", 10,
                            "the page's call to connect")
        state = await page.evaluate(STATE)
        assert state["phase"] == "connected", (state["error"], state["gatewayErrors"], state["log"])
        assert state["sessionId"] in gateway.sessions
        session = gateway.sessions[state["sessionId"]]
        assert session.agent_kind == "echo"
        assert state["candidatesSent"] >= 1 and session.candidates_added >= 1, "trickle ICE, client side"
        assert state["candidatesReceived"] >= 1, "trickle ICE, gateway side"
        assert state["remoteTrack"] and state["playing"], state["playError"]

        # Audio both ways: the gateway hears the beep, Chromium decodes the echo with energy.
        stats_js = f"{STATE}.stats()"
        await page.wait_for(f"{stats_js}.then(s => s.inbound && s.inbound.totalAudioEnergy > 0.05 "
                            f"&& s.inbound.packetsReceived >= 100)", 8, "echoed audio energy in Chromium")
        stats = await page.evaluate(stats_js)
    except chromium.ChromiumError:
        print("page log:", await page.evaluate(f"{STATE} && {STATE}.log"), page.console)
        raise
    assert session.agent.counters()["frames_heard"] >= 100
    assert stats["codec"]["mimeType"].lower() == "audio/opus" and stats["codec"]["clockRate"] == 48000
    assert stats["outbound"]["packetsSent"] >= 100
    assert stats["inbound"]["packetsLost"] == 0
    # what came back carries the energy Chromium sent (the echo of the beep, not silence)
    assert stats["inbound"]["totalAudioEnergy"] >= 0.25 * stats["source"]["totalAudioEnergy"], stats
    assert stats["pair"] is not None, "a nominated, succeeded candidate pair"

    # Leaving the page hangs up: the gateway gets `close` for the session.
    await page.send("Page.navigate", {"url": "about:blank"})
    await wait_until(lambda: state["sessionId"] in gateway.ended, 5, "the session to end")
    assert gateway.ended[state["sessionId"]] == "closed by the client"
