"""Unit tests of polyphone.protocol: the gateway's wire format.

Examples from the spec first, then each message type both ways, the error
codes, the ProtocolError taxonomy, size limits, and property tests: whatever
arrives, parse() returns a message or raises ProtocolError, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyphone import protocol
from polyphone.protocol import (
    MAX_MESSAGE_BYTES,
    AgentVersionOverride,
    Answer,
    Candidate,
    Close,
    Error,
    ErrorCode,
    IceCandidate,
    Mode,
    Offer,
    Pong,
    ProtocolError,
    UnknownMessageType,
    encode,
    explain,
    parse,
    to_wire,
)

MESSAGE_CLASSES = (Offer, Answer, IceCandidate, Close, Error, Pong)
TYPES = {cls.__dataclass_fields__["type"].default: cls for cls in MESSAGE_CLASSES}
SESSION = "550e8400-e29b-41d4-a716-446655440000"
TOKEN = "tok-7f3c9a1e5b2d4c8e9f0a1b2c3d4e5f60"
SDP_OFFER = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SDP_ANSWER = "v=0\r\no=- 4611731400430051336 2 IN IP4 192.168.1.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = "candidate:1 1 UDP 2130706431 192.168.1.1 54321 typ host"

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def wire(raw: str | bytes) -> dict[str, Any]:
    return json.loads(raw)


def outcome(raw: Any) -> Any:
    """parse(raw), checking the contract: a message, or a well-formed ProtocolError.

    Any other exception propagates and fails the test. A ProtocolError from the
    catch-all in parse() ("unreadable message") means _parse itself crashed: it is
    re-run unguarded so the test shows the real traceback.
    """
    try:
        msg = parse(raw)
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode)
        assert isinstance(exc.reason, str) and exc.reason
        assert str(exc) == exc.reason
        assert exc.msg_type is None or isinstance(exc.msg_type, str)
        if exc.reason.startswith("unreadable message"):
            protocol._parse(raw)  # shows the hidden exception
            pytest.fail(f"parse() hid an internal error: {exc.reason}")
        return exc
    assert isinstance(msg, MESSAGE_CLASSES), type(msg)
    return msg


def error_of(raw: Any) -> ProtocolError:
    result = outcome(raw)
    if not isinstance(result, ProtocolError):
        pytest.fail(f"expected a ProtocolError, but it parsed as {type(result).__name__}")
    return result


def full_offer(**changes: Any) -> Offer:
    offer = Offer(
        sdp=SDP_OFFER,
        auth_token=TOKEN,
        session_id="",
        mode="traditional",
        call_sid="0b0f5c2e-2f8a-4a59-9a43-1f2d3c4b5a69",
        caller="+14155551234",
        callee="+14155555678",
        account_id="acc-1",
        project_id="proj-2",
        variant_id="var-3",
        agent_version_override=AgentVersionOverride("artifact-42", "lambda-7"),
    )
    return replace(offer, **changes)


# --- the spec's own examples ---------------------------------------------------

SPEC_OFFER = """{
  "type": "offer", "sessionId": "",
  "data": {"type": "offer", "sdp": "v=0 o=- 4611731400430051336 2 IN IP4 127.0.0.1"},
  "authToken": "your-auth-token", "callSid": "call-unique-id",
  "caller": "+14155551234", "callee": "+14155555678"
}"""
SPEC_ANSWER = """{
  "type": "answer", "sessionId": "550e8400-e29b-41d4-a716-446655440000",
  "data": {"type": "answer", "sdp": "v=0 o=- 4611731400430051336 2 IN IP4 192.168.1.1"}
}"""
SPEC_CANDIDATE = """{
  "type": "ice-candidate", "sessionId": "550e8400-e29b-41d4-a716-446655440000",
  "data": {"candidate": "candidate:1 1 UDP 2130706431 192.168.1.1 54321 typ host",
           "sdpMid": "0", "sdpMLineIndex": 0}
}"""
SPEC_CLOSE = '{"type": "close", "sessionId": "550e8400-e29b-41d4-a716-446655440000"}'
SPEC_ERROR = """{
  "type": "error", "sessionId": "550e8400-e29b-41d4-a716-446655440000",
  "data": {"code": "UNAUTHORIZED", "message": "Invalid authentication token"}
}"""


def test_spec_offer_example():
    assert parse(SPEC_OFFER) == Offer(
        sdp="v=0 o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        auth_token="your-auth-token",
        session_id="",
        call_sid="call-unique-id",
        caller="+14155551234",
        callee="+14155555678",
    )


def test_spec_answer_example():
    assert parse(SPEC_ANSWER) == Answer(
        session_id=SESSION, sdp="v=0 o=- 4611731400430051336 2 IN IP4 192.168.1.1")


def test_spec_ice_candidate_example():
    assert parse(SPEC_CANDIDATE) == IceCandidate(SESSION, Candidate(CANDIDATE, "0", 0))


def test_spec_close_example():
    assert parse(SPEC_CLOSE) == Close(SESSION)


def test_spec_error_example():
    msg = parse(SPEC_ERROR)
    assert msg == Error(SESSION, "UNAUTHORIZED", "Invalid authentication token")
    assert msg.error_code is ErrorCode.UNAUTHORIZED


@pytest.mark.parametrize("raw", [SPEC_OFFER, SPEC_ANSWER, SPEC_CANDIDATE, SPEC_CLOSE, SPEC_ERROR])
def test_spec_examples_encode_back_to_the_same_json(raw):
    assert wire(encode(parse(raw))) == wire(raw)


# --- round trips, message by message -------------------------------------------


def test_offer_with_every_field_round_trips():
    offer = full_offer()
    assert parse(encode(offer)) == offer
    assert parse(encode(offer).encode("utf-8")) == offer
    assert to_wire(offer) == {
        "type": "offer",
        "sessionId": "",
        "data": {"type": "offer", "sdp": SDP_OFFER},
        "authToken": TOKEN,
        "mode": "traditional",
        "callSid": "0b0f5c2e-2f8a-4a59-9a43-1f2d3c4b5a69",
        "caller": "+14155551234",
        "callee": "+14155555678",
        "accountId": "acc-1",
        "projectId": "proj-2",
        "variantId": "var-3",
        "agentVersionOverride": {
            "artifactVersion": "artifact-42",
            "lambdaDeploymentVersion": "lambda-7",
        },
    }


@pytest.mark.parametrize("mode", list(Mode))
def test_offer_modes_round_trip(mode):
    offer = full_offer(mode=mode)
    assert wire(encode(offer))["mode"] == mode.value
    parsed = parse(encode(offer))
    assert parsed.mode == mode.value
    assert parsed == offer


@pytest.mark.parametrize("avo, expected", [
    (AgentVersionOverride("a-1", None), {"artifactVersion": "a-1"}),
    (AgentVersionOverride(None, "l-2"), {"lambdaDeploymentVersion": "l-2"}),
    (AgentVersionOverride("a-1", "l-2"), {"artifactVersion": "a-1", "lambdaDeploymentVersion": "l-2"}),
])
def test_agent_version_override_sends_only_what_is_set(avo, expected):
    offer = full_offer(agent_version_override=avo)
    assert wire(encode(offer))["agentVersionOverride"] == expected
    assert parse(encode(offer)).agent_version_override == avo


def test_offer_leaves_unset_optional_fields_out():
    minimal = Offer(sdp=SDP_OFFER, auth_token=TOKEN)
    assert wire(encode(minimal)) == {
        "type": "offer",
        "sessionId": "",
        "data": {"type": "offer", "sdp": SDP_OFFER},
        "authToken": TOKEN,
    }
    assert parse(encode(minimal)) == minimal


def test_offer_leaves_empty_optional_fields_out():
    empty = Offer(sdp=SDP_OFFER, auth_token=TOKEN, mode="", call_sid="", caller="", callee="",
                  account_id="", project_id="", variant_id="",
                  agent_version_override=AgentVersionOverride("", None))
    assert set(wire(encode(empty))) == {"type", "sessionId", "data", "authToken"}


def test_offer_without_token_still_sends_the_field():
    # The spec requires authToken on every offer: the gateway answers UNAUTHORIZED.
    assert wire(encode(Offer(sdp=SDP_OFFER)))["authToken"] == ""


@pytest.mark.parametrize("session_json", ['""', "null"])
def test_offer_session_id_empty_or_null(session_json):
    raw = ('{"type":"offer","sessionId":%s,"data":{"type":"offer","sdp":"v=0"},"authToken":"t"}'
           % session_json)
    offer = parse(raw)
    assert isinstance(offer, Offer)
    assert offer.session_id == ""
    assert wire(encode(offer))["sessionId"] == ""  # always sends "", as the spec says


def test_offer_without_session_id_field_is_a_new_session():
    offer = parse('{"type":"offer","data":{"sdp":"v=0"},"authToken":"t"}')
    assert offer == Offer(sdp="v=0", auth_token="t")


def test_offer_data_type_may_be_left_out():
    assert parse('{"type":"offer","sessionId":"","data":{"sdp":"v=0"}}').sdp == "v=0"


def test_answer_round_trips():
    answer = Answer(session_id=SESSION, sdp=SDP_ANSWER)
    assert to_wire(answer) == {"type": "answer", "sessionId": SESSION,
                               "data": {"type": "answer", "sdp": SDP_ANSWER}}
    assert parse(encode(answer)) == answer


@pytest.mark.parametrize("candidate", [
    Candidate(CANDIDATE, "0", 0),
    Candidate(CANDIDATE, "audio", 3),
    Candidate(CANDIDATE, None, None),
    Candidate("", "0", 0),  # end-of-candidates
])
def test_ice_candidate_round_trips_both_ways(candidate):
    msg = IceCandidate(SESSION, candidate)
    data = wire(encode(msg))["data"]
    assert data["candidate"] == candidate.candidate
    assert data.get("sdpMid") == candidate.sdp_mid
    assert data.get("sdpMLineIndex") == candidate.sdp_mline_index
    assert parse(encode(msg)) == msg


def test_close_round_trips():
    assert to_wire(Close(SESSION)) == {"type": "close", "sessionId": SESSION}
    assert parse(encode(Close(SESSION))) == Close(SESSION)


@pytest.mark.parametrize("code", [c.value for c in ErrorCode] + ["SOMETHING_NEW"])
def test_error_round_trips(code):
    err = Error(SESSION, code, "what went wrong")
    assert to_wire(err) == {"type": "error", "sessionId": SESSION,
                            "data": {"code": code, "message": "what went wrong"}}
    assert parse(encode(err)) == err
    assert err.error_code == ErrorCode.lookup(code)


def test_error_without_message_or_session():
    assert parse('{"type":"error","data":{"code":"HANDLER_ERROR"}}') == Error("", "HANDLER_ERROR", "")
    assert parse('{"type":"error","sessionId":null,"data":{"code":"X","message":null}}') == Error("", "X")


def test_pong_round_trips():
    assert parse(encode(Pong(SESSION))) == Pong(SESSION)
    assert parse('{"type":"pong"}') == Pong()
    assert to_wire(Pong()) == {"type": "pong", "sessionId": ""}


def test_unknown_fields_are_ignored():
    raw = wire(encode(full_offer()))
    raw["somethingNew"] = {"nested": [1, 2, 3]}
    raw["data"]["extra"] = True
    assert parse(json.dumps(raw)) == full_offer()


def test_encode_is_compact_ascii_json():
    text = encode(full_offer(caller="☎ Zoë"))
    assert text.isascii()
    assert ": " not in text and ", " not in text
    assert parse(text).caller == "☎ Zoë"


# --- the token stays secret ------------------------------------------------------


def test_repr_never_shows_the_auth_token():
    offer = full_offer()
    for text in (repr(offer), str(offer), f"{offer!r}", f"{offer}", repr([offer]),
                 repr({"offer": offer}), repr(replace(offer, caller="x"))):
        assert TOKEN not in text
    parsed = parse(encode(offer))
    assert parsed.auth_token == TOKEN
    assert TOKEN not in repr(parsed)
    assert TOKEN in encode(offer)  # ...but it is sent


@settings(max_examples=300, deadline=None)
@given(token=st.text(alphabet="ΩЖ龍ψ", min_size=6, max_size=40))
def test_repr_never_shows_any_auth_token(token):
    assert token not in repr(full_offer(auth_token=token))


@pytest.mark.parametrize("breakage", [
    {"mode": "loud"}, {"mode": 1}, {"caller": []}, {"sessionId": 7},
    {"data": {"type": "offer", "sdp": 5}}, {"agentVersionOverride": "x"}, {"data": None},
])
def test_errors_about_an_offer_never_show_the_token(breakage):
    raw = wire(encode(full_offer()))
    raw.update(breakage)
    exc = error_of(json.dumps(raw))
    assert TOKEN not in str(exc) and TOKEN not in repr(exc)


# --- error codes, explained --------------------------------------------------------


def test_the_six_error_codes_of_the_spec():
    assert {c.value for c in ErrorCode} == {
        "UNAUTHORIZED", "INVALID_ARGUMENT", "INVALID_MESSAGE",
        "HANDLER_ERROR", "MEDIA_BRIDGE_FAILURE", "AGENT_FAILURE",
    }


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_error_code_has_an_explanation_and_an_action(code):
    assert isinstance(code.explanation, str) and code.explanation.strip()
    assert isinstance(code.action, str) and code.action.strip()
    assert code.explanation != code.action
    assert explain(code.value) == (code.explanation, code.action)
    assert ErrorCode.lookup(code.value) is code


def test_explanations_are_distinct():
    assert len({c.explanation for c in ErrorCode}) == len(ErrorCode)


@pytest.mark.parametrize("code", ["NOT_A_CODE", "", "unauthorized", "X" * 500, "\x00\n"])
def test_explain_an_unknown_code(code):
    what, action = explain(code)
    assert what.strip() and action.strip()
    assert repr(code[:40]) in what  # names it, cut short
    assert len(what) < 300
    assert ErrorCode.lookup(code) is None


def test_error_code_lookup_of_odd_values():
    assert ErrorCode.lookup(None) is None  # type: ignore[arg-type]
    assert ErrorCode.lookup(5) is None  # type: ignore[arg-type]
    assert Error(SESSION, "NEW_CODE").error_code is None


# --- what is not a valid message, and how it is reported ------------------------------


def _offer(**fields: Any) -> str:
    obj: dict[str, Any] = {"type": "offer", "sessionId": "",
                           "data": {"type": "offer", "sdp": "v=0"}, "authToken": "t"}
    for key, value in fields.items():
        if value is _DROP:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(obj)


def _msg(mtype: str, session: Any = SESSION, **fields: Any) -> str:
    obj: dict[str, Any] = {"type": mtype}
    if session is not _DROP:
        obj["sessionId"] = session
    obj.update(fields)
    return json.dumps(obj)


_DROP = object()
_CAND = {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0}

INVALID_MESSAGE_CASES = {
    # not JSON, not an object, no type
    "not utf-8": b"\xff\xfe{}",
    "not json": "hello",
    "empty": "",
    "truncated": '{"type":"offer"',
    "json array": '[{"type":"offer"}]',
    "json number": "42",
    "json string": '"offer"',
    "json null": "null",
    "no type": '{"sessionId":""}',
    "null type": '{"type":null}',
    "type is a number": '{"type":5}',
    "type is an object": '{"type":{"name":"offer"}}',
    # missing fields
    "offer without data": _offer(data=_DROP),
    "offer with null data": _offer(data=None),
    "offer data not an object": _offer(data="v=0"),
    "offer without sdp": _offer(data={"type": "offer"}),
    "answer without sessionId": _msg("answer", _DROP, data={"type": "answer", "sdp": "v=0"}),
    "answer with empty sessionId": _msg("answer", "", data={"type": "answer", "sdp": "v=0"}),
    "answer with null sessionId": _msg("answer", None, data={"type": "answer", "sdp": "v=0"}),
    "answer without data": _msg("answer"),
    "answer without sdp": _msg("answer", data={"type": "answer"}),
    "candidate without sessionId": _msg("ice-candidate", _DROP, data=_CAND),
    "candidate without data": _msg("ice-candidate"),
    "candidate data is a list": _msg("ice-candidate", data=[_CAND]),
    "candidate without candidate": _msg("ice-candidate", data={"sdpMid": "0", "sdpMLineIndex": 0}),
}

INVALID_ARGUMENT_CASES = {
    "unknown mode": _offer(mode="loud"),
    "mode in capitals": _offer(mode="ECHO"),
    "mode is a number": _offer(mode=1),
    "mode is a list": _offer(mode=["echo"]),
    "offer sessionId is a number": _offer(sessionId=0),
    "authToken is a number": _offer(authToken=12345),
    "authToken is an object": _offer(authToken={"token": "t"}),
    "callSid is a list": _offer(callSid=["c"]),
    "caller is a number": _offer(caller=14155551234),
    "callee is a bool": _offer(callee=True),
    "accountId is a float": _offer(accountId=1.5),
    "projectId is an object": _offer(projectId={}),
    "variantId is a list": _offer(variantId=[]),
    "agentVersionOverride is a string": _offer(agentVersionOverride="artifact-42"),
    "agentVersionOverride is a list": _offer(agentVersionOverride=["a", "l"]),
    "artifactVersion is a number": _offer(agentVersionOverride={"artifactVersion": 42}),
    "lambdaDeploymentVersion is a bool": _offer(
        agentVersionOverride={"artifactVersion": "a", "lambdaDeploymentVersion": False}),
    "offer sdp is a number": _offer(data={"type": "offer", "sdp": 0}),
    "offer sdp is a list": _offer(data={"type": "offer", "sdp": ["v=0"]}),
    "offer data.type says answer": _offer(data={"type": "answer", "sdp": "v=0"}),
    "answer sessionId is a number": _msg("answer", 1, data={"type": "answer", "sdp": "v=0"}),
    "answer sdp is an object": _msg("answer", data={"type": "answer", "sdp": {}}),
    "answer data.type says offer": _msg("answer", data={"type": "offer", "sdp": "v=0"}),
    "candidate sessionId is a list": _msg("ice-candidate", [SESSION], data=_CAND),
    "candidate is a number": _msg("ice-candidate", data={**_CAND, "candidate": 1}),
    "sdpMLineIndex is a word": _msg("ice-candidate", data={**_CAND, "sdpMLineIndex": "zero"}),
    "sdpMLineIndex is negative": _msg("ice-candidate", data={**_CAND, "sdpMLineIndex": -1}),
    "sdpMLineIndex is a bool": _msg("ice-candidate", data={**_CAND, "sdpMLineIndex": True}),
    "sdpMLineIndex is a float": _msg("ice-candidate", data={**_CAND, "sdpMLineIndex": 1.0}),
    "close sessionId is a number": _msg("close", 5),
    "close sessionId is an object": _msg("close", {"id": SESSION}),
    "error sessionId is a number": _msg("error", 5, data={"code": "X"}),
    "pong sessionId is a bool": _msg("pong", False),
}


@pytest.mark.parametrize("raw", INVALID_MESSAGE_CASES.values(), ids=INVALID_MESSAGE_CASES.keys())
def test_invalid_message(raw):
    exc = error_of(raw)
    assert exc.code is ErrorCode.INVALID_MESSAGE, exc.reason
    assert not isinstance(exc, UnknownMessageType)


@pytest.mark.parametrize("raw", INVALID_ARGUMENT_CASES.values(), ids=INVALID_ARGUMENT_CASES.keys())
def test_invalid_argument(raw):
    exc = error_of(raw)
    assert exc.code is ErrorCode.INVALID_ARGUMENT, exc.reason


def test_errors_name_the_message_type():
    assert error_of(_offer(mode="loud")).msg_type == "offer"
    assert error_of(_msg("answer", "", data={"sdp": "v=0"})).msg_type == "answer"
    assert error_of(_msg("ice-candidate", data={})).msg_type == "ice-candidate"
    assert error_of(_msg("close", 5)).msg_type == "close"
    assert error_of(_msg("error", 5, data={})).msg_type == "error"
    assert error_of("not json").msg_type is None


# What a real server may send where the spec is silent, accepted as PolyAI's SDKs accept it.
LIBERAL_CASES = {
    "close without sessionId": (_msg("close", _DROP), Close("")),
    "close with null sessionId": (_msg("close", None), Close("")),
    "error without data": (_msg("error"), Error(SESSION, "", "")),
    "error without code": (_msg("error", data={"message": "m"}), Error(SESSION, "", "m")),
    "error with empty code": (_msg("error", data={"code": "", "message": "m"}), Error(SESSION, "", "m")),
    "error data is the message": (_msg("error", data="busy"), Error(SESSION, "", "busy")),
    "error message at the top": (_msg("error", _DROP, message="busy"), Error("", "", "busy")),
    "error code is a number": (_msg("error", data={"code": 401, "message": "m"}), Error(SESSION, "401", "m")),
    "error message is a list": (_msg("error", data={"code": "X", "message": ["m"]}), Error(SESSION, "X", "")),
    "null candidate": (_msg("ice-candidate", data={**_CAND, "candidate": None}),
                       IceCandidate(SESSION, Candidate("", "0", 0))),
    "sdpMLineIndex as digits": (_msg("ice-candidate", data={**_CAND, "sdpMLineIndex": " 1"}),
                                IceCandidate(SESSION, Candidate(CANDIDATE, "0", 1))),
    "sdpMid is a number": (_msg("ice-candidate", data={**_CAND, "sdpMid": 0}),
                           IceCandidate(SESSION, Candidate(CANDIDATE, "0", 0))),
    "sdpMid alone": (_msg("ice-candidate", data={"candidate": CANDIDATE, "sdpMid": "audio"}),
                     IceCandidate(SESSION, Candidate(CANDIDATE, "audio", None))),
}


@pytest.mark.parametrize("raw, expected", LIBERAL_CASES.values(), ids=LIBERAL_CASES.keys())
def test_what_a_real_server_may_send_is_accepted(raw, expected):
    assert parse(raw) == expected


@pytest.mark.parametrize("mtype", ["ping", "OFFER", "Answer", "", " offer", "ice_candidate", "x" * 200])
def test_unknown_message_type(mtype):
    exc = error_of(json.dumps({"type": mtype, "sessionId": SESSION}))
    assert isinstance(exc, UnknownMessageType)
    assert exc.code is ErrorCode.INVALID_MESSAGE
    assert exc.msg_type == mtype[:40]
    assert len(exc.reason) < 100


def test_bad_types_are_not_unknown_types():
    assert not isinstance(error_of('{"type":5}'), UnknownMessageType)
    assert not isinstance(error_of(_offer(mode="loud")), UnknownMessageType)


@pytest.mark.parametrize("raw", [None, 42, 4.2, ["{}"], {"type": "close"}, memoryview(b"{}")])
def test_non_text_input(raw):
    assert error_of(raw).code is ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("raw", [
    '{"type":"close","sessionId":"s","x":' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"type":"offer","data":{"sdp":"v=0","type":' + "[" * 950 + "]" * 950 + "}}",
    '{"type":"close","sessionId":"s","n":' + "9" * 5000 + "}",
    '{"type":"close","sessionId":"s","n":1e999}',
    '{"type":"close","sessionId":"\\ud800"}',
    "\ufeff" + SPEC_CLOSE,
    SPEC_CLOSE + SPEC_CLOSE,
])
def test_pathological_json_does_not_crash(raw):
    outcome(raw)


# --- size limits ---------------------------------------------------------------------


def _frame_of_size(size: int) -> str:
    """A valid close frame of exactly `size` ASCII characters."""
    base = encode(Close(SESSION))
    padded = base[:-1] + ',"pad":""}'
    text = padded[:-2] + "x" * (size - len(padded)) + '"}'
    assert len(text) == size
    return text


def test_a_frame_at_the_limit_is_accepted():
    text = _frame_of_size(MAX_MESSAGE_BYTES)
    assert parse(text) == Close(SESSION)
    assert parse(text.encode()) == Close(SESSION)
    assert parse(bytearray(text.encode())) == Close(SESSION)


@pytest.mark.parametrize("convert", [str, str.encode, lambda s: bytearray(s.encode())],
                         ids=["str", "bytes", "bytearray"])
def test_an_oversized_frame_is_rejected(convert):
    exc = error_of(convert(_frame_of_size(MAX_MESSAGE_BYTES + 1)))
    assert exc.code is ErrorCode.INVALID_MESSAGE
    assert "too large" in exc.reason


def test_a_huge_frame_is_rejected():
    assert "too large" in error_of(b"{" + b" " * (8 * MAX_MESSAGE_BYTES) + b"}").reason


def test_an_oversized_text_frame_is_rejected_by_its_utf8_size():
    # A text frame's size on the wire is its UTF-8 length: 100,000 "€" are
    # 300,000 bytes, over the limit, and must be refused as the same frame
    # arriving as bytes is.
    text = json.dumps({"type": "offer", "sessionId": "", "authToken": "t",
                       "data": {"type": "offer", "sdp": "€" * 100_000}}, ensure_ascii=False)
    assert len(text) < MAX_MESSAGE_BYTES < len(text.encode("utf-8"))
    assert "too large" in error_of(text.encode("utf-8")).reason
    assert "too large" in error_of(text).reason


@pytest.mark.parametrize("extra, accepted", [(0, True), (1, False)])
def test_a_text_frame_is_measured_in_utf8_bytes_at_the_limit(extra, accepted):
    ascii_frame = _frame_of_size(MAX_MESSAGE_BYTES - 2 * 50_000 + extra)
    text = ascii_frame.replace("x" * 50_000, "€" * 50_000, 1)  # 3 bytes each
    assert len(text.encode("utf-8")) == MAX_MESSAGE_BYTES + extra
    result = outcome(text)
    assert (result == Close(SESSION)) if accepted else isinstance(result, ProtocolError)


# --- property tests -------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
any_text = st.text(st.characters(exclude_categories=()) | st.characters(categories=["Cs"]),
                   max_size=300)

opt_text = st.none() | st.text(min_size=1, max_size=40)


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes(raw):
    outcome(raw)


@FUZZ
@given(any_text)
def test_fuzz_arbitrary_text(raw):
    outcome(raw)


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(value):
    outcome(json.dumps(value))
    outcome(json.dumps(value).encode())


KNOWN_KEYS = ["sessionId", "data", "authToken", "mode", "callSid", "caller", "callee",
              "accountId", "projectId", "variantId", "agentVersionOverride"]
DATA_KEYS = ["type", "sdp", "candidate", "sdpMid", "sdpMLineIndex", "code", "message"]


@FUZZ
@given(
    mtype=st.sampled_from(sorted(TYPES)),
    top=st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=8),
    data=st.none() | st.dictionaries(st.sampled_from(DATA_KEYS), json_values, max_size=6),
)
def test_fuzz_known_keys_with_arbitrary_values(mtype, top, data):
    obj = {"type": mtype, **top}
    if data is not None:
        obj["data"] = data
    result = outcome(json.dumps(obj))
    if not isinstance(result, ProtocolError):
        assert result.type == mtype
        assert encode(parse(encode(result))) == encode(result)


# Valid messages, as dataclasses.

offers = st.builds(
    Offer,
    sdp=st.text(max_size=200),
    auth_token=st.text(min_size=1, max_size=60),
    session_id=st.just("") | st.text(max_size=40),
    mode=st.none() | st.sampled_from([m.value for m in Mode]),
    call_sid=opt_text, caller=opt_text, callee=opt_text,
    account_id=opt_text, project_id=opt_text, variant_id=opt_text,
    agent_version_override=st.none() | st.builds(
        AgentVersionOverride, opt_text, opt_text).filter(lambda a: a.to_wire()),
)
answers = st.builds(Answer, session_id=st.text(min_size=1, max_size=40), sdp=st.text(max_size=200))
candidates = st.builds(
    IceCandidate,
    session_id=st.text(max_size=40),
    candidate=st.builds(Candidate, st.text(max_size=100), st.none() | st.text(max_size=10),
                        st.none() | st.integers(min_value=0, max_value=2**40)),
)
closes = st.builds(Close, session_id=st.text(max_size=40))
errors = st.builds(Error, session_id=st.text(max_size=40), code=st.text(min_size=1, max_size=30),
                   message=st.text(max_size=100))
pongs = st.builds(Pong, session_id=st.text(max_size=40))
messages = st.one_of(offers, answers, candidates, closes, errors, pongs)


@FUZZ
@given(messages)
def test_every_valid_message_round_trips(msg):
    text = encode(msg)
    assert parse(text) == msg
    assert parse(text.encode("utf-8")) == msg
    assert wire(text)["type"] == msg.type


# Valid wire objects, then broken in every way a peer might break them.

PATHS = [(), ("data",), ("agentVersionOverride",)]


@st.composite
def mutated_frames(draw):
    msg = draw(messages)
    obj = to_wire(msg)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = obj
        path = draw(st.sampled_from(PATHS))
        for key in path:
            if isinstance(where, dict) and isinstance(where.get(key), dict):
                where = where[key]
        if not isinstance(where, dict):
            continue
        keys = sorted(where) + KNOWN_KEYS + DATA_KEYS
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["drop", "retype", "null", "empty", "swap-type"]))
        if action == "drop":
            where.pop(key, None)
        elif action == "retype":
            where[key] = draw(json_values)
        elif action == "null":
            where[key] = None
        elif action == "empty":
            where[key] = draw(st.sampled_from(["", 0, [], {}, False]))
        else:
            obj["type"] = draw(st.sampled_from(sorted(TYPES) + ["ping", "OFFER", ""]))
    return msg, obj


@FUZZ
@given(mutated_frames())
def test_fuzz_mutated_valid_messages(frame):
    original, obj = frame
    result = outcome(json.dumps(obj))
    if isinstance(result, ProtocolError):
        if isinstance(original, Offer) and len(original.auth_token or "") >= 8:
            assert original.auth_token not in str(result)
        return
    assert result.type == obj["type"]
    # What we accept we can send on: encoding it again is stable.
    again = parse(encode(result))
    assert encode(again) == encode(result)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(TYPES)), any_text)
def test_fuzz_frames_with_odd_strings(mtype, text):
    obj = {"type": mtype, "sessionId": text or "s",
           "data": {"type": mtype, "sdp": text, "candidate": text, "sdpMid": text,
                    "code": text or "X", "message": text},
           "authToken": text, "caller": text, "callSid": text}
    for raw in (json.dumps(obj), json.dumps(obj, ensure_ascii=False)):
        result = outcome(raw)
        if not isinstance(result, ProtocolError):
            assert encode(parse(encode(result))) == encode(result)
