"""Liveness: RTP silence alone is a silent agent; nothing at all is media lost, then a failure."""

from __future__ import annotations

from polyphone.engine.events import AgentSilence, MediaResumed, MediaStalled
from polyphone.engine.liveness import LOST, Liveness
from polyphone.protocol import clean_text, gateway_error_words


def test_rtp_silence_with_other_traffic_says_silent_once_and_never_fails() -> None:
    live = Liveness(stall=2, lost=15, silent=2)
    assert live.update(1.0, rtp_at=0.0, heard_at=0.9) == []
    [event] = live.update(2.5, rtp_at=0.0, heard_at=2.4)
    assert isinstance(event, AgentSilence) and event.active and event.seconds == 2.5
    for now in range(3, 60):  # a minute of DTX: RTCP and consent keep arriving
        assert live.update(float(now), rtp_at=0.0, heard_at=now - 0.5) == []
    [back] = live.update(60.2, rtp_at=60.1, heard_at=60.1)
    assert isinstance(back, AgentSilence) and not back.active and abs(back.seconds - 60.1) < 1e-9


def test_nothing_at_all_is_media_lost_then_a_failure_and_recovery_is_said() -> None:
    live = Liveness(stall=2, lost=5, silent=2)
    [lost] = live.update(2.1, rtp_at=0.0, heard_at=0.1)
    assert isinstance(lost, MediaStalled) and live.media_lost
    assert live.update(4.0, rtp_at=0.0, heard_at=0.1) == []
    [back] = live.update(4.5, rtp_at=4.4, heard_at=4.4)
    assert isinstance(back, MediaResumed) and abs(back.gap_seconds - 4.3) < 1e-9 and not live.media_lost
    live.update(7.0, rtp_at=4.4, heard_at=4.4)
    assert live.update(9.5, rtp_at=4.4, heard_at=4.4) == LOST


def test_without_a_view_of_other_traffic_rtp_is_all_there_is() -> None:
    live = Liveness(stall=2, lost=5, silent=2)
    [event] = live.update(2.0, rtp_at=0.0, heard_at=None)
    assert isinstance(event, MediaStalled)


def test_the_gateways_words_are_cleaned_and_capped() -> None:
    assert clean_text("a\x00b\u202ec\td\n\ne") == "abc d e"
    assert clean_text(None) == "" and clean_text(42) == ""
    long = clean_text("x" * 1000)
    assert len(long) == 300 and long.endswith("…")


def test_codeless_and_unknown_errors_show_the_gateways_own_message() -> None:
    what, action = gateway_error_words("", "Agent is not available")
    assert what == "The gateway reported an error without a code: “Agent is not available”" and action
    what, _ = gateway_error_words("QUOTA_EXCEEDED", "too many calls")
    assert "QUOTA_EXCEEDED" in what and "“too many calls”" in what
    assert gateway_error_words("UNAUTHORIZED", "x")[0].startswith("The gateway rejected the authentication")

