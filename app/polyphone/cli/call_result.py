"""What `polyphone call` says when a call ends: the exit code (a contract, see cli/call.py),
one line on stderr, and with --json the result object on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from .. import protocol
from ..engine.call import CallResult
from ..engine.events import CallError, ErrorKind

EXIT_BY_KIND = {
    ErrorKind.GATEWAY: 3, ErrorKind.CLOSED: 3, ErrorKind.NETWORK: 4, ErrorKind.ICE: 4, ErrorKind.PROTOCOL: 4,
    ErrorKind.TIMEOUT: 5, ErrorKind.CONFIG: 2, ErrorKind.KEYRING: 6, ErrorKind.DEVICE: 4,
    ErrorKind.INTERNAL: 1,
}

def exit_code(result: CallResult) -> int:
    if result.error is not None:
        return EXIT_BY_KIND.get(result.error.kind, 1)
    return 0 if result.connected else 4


def result_json(result: CallResult, code: int, audio: dict) -> dict:
    err: CallError | None = result.error
    stats = None
    if result.stats is not None:
        stats = {k: v for k, v in asdict(result.stats).items() if k != "t"}
    return {
        "result": "ended" if code == 0 else "failed",
        "exit_code": code,
        "sessionId": result.session_id or None,
        "callSid": result.call_sid,
        "error": None if err is None else error_json(err),
        "reason": result.reason,
        "duration_s": result.duration_s,
        "reconnects": result.reconnects,
        "timings_ms": result.timings_ms,
        "stats": stats,
        "turn_latencies_ms": audio["turn_latencies_ms"],
        "audio": audio["stats"],
        "transcript": audio.get("transcript"),
        "loop_lag_ms": audio.get("loop_lag_ms"),
    }


def error_json(err: CallError) -> dict:
    """`code` is a spec code, UNKNOWN (an `error` frame with a missing or unlisted code; the
    gateway's own is `gateway_code`), or the kind of failure (network, ice, timeout, closed...)."""
    if err.kind is ErrorKind.GATEWAY:
        code = err.code if protocol.ErrorCode.lookup(err.code or "") else protocol.UNKNOWN_CODE
    else:
        code = err.code or err.kind.value
    gateway_code = (err.code or None) if err.kind is ErrorKind.GATEWAY else None
    return {"code": code, "kind": err.kind.value, "message": err.message, "action": err.action,
            "detail": err.detail, "gateway_code": gateway_code, "close_code": err.close_code}


def report(result: CallResult, args: argparse.Namespace, audio: dict) -> int:
    code = exit_code(result)
    err: CallError | None = result.error
    if err is not None:
        shown = error_json(err)["code"] if err.kind is ErrorKind.GATEWAY else err.code
        print(f"{shown}: {err.message} {err.action}" if shown
              else f"error: {err.message} {err.action}", file=sys.stderr)
    elif not result.connected:
        print(f"error: the call ended before it connected ({result.reason})", file=sys.stderr)
    else:
        print(f"[call] ended after {result.duration_s:.1f} s — {result.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(result_json(result, code, audio)), flush=True)
    return code
