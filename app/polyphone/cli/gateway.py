"""`polyphone gateway`: run the local gateway until SIGINT/SIGTERM.

stdout gets exactly one line, `listening ws://HOST:PORT/api/v1/webrtc/signal`,
once the socket is ready (scripts wait for it); everything else goes to stderr.
Tokens come from --tokens-file or POLYPHONE_GATEWAY_TOKENS, never from argv
(argv is visible to every user of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from ..localgw.agents import AGENT_KINDS
from ..localgw.faults import ERROR_SHAPES, MAX_CLOSE_REASON_BYTES, valid_close_code
from ..localgw.impair import Impairment
from ..localgw.server import Faults, LocalGateway
from ..protocol import ErrorCode

TOKENS_ENV = "POLYPHONE_GATEWAY_TOKENS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_server_arguments(parser)
    faults = parser.add_argument_group("fault injection")
    _add_signaling_faults(faults)
    _add_media_faults(faults)
    _add_ending_faults(faults)


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Where to listen, which agent answers, which tokens are accepted, how much to log."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else is reachable "
                             "from other machines)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--agent", choices=AGENT_KINDS, default=None,
                        help="force an agent (default: by the offer's mode; echo -> echo, "
                             "otherwise demo; announce repeats its greeting and never listens)")
    parser.add_argument("--think-ms", type=int, default=600,
                        help="demo agent's pause before replying (default 600)")
    parser.add_argument("--tokens-file", type=Path, default=None,
                        help=f"accepted tokens, one per line (else ${TOKENS_ENV}, comma-separated; "
                             "neither: any non-empty token)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"], help="stderr log level")


def _add_signaling_faults(group: argparse._ArgumentGroup) -> None:
    """Faults in the answer and the frames around it."""
    group.add_argument("--answer-delay", type=float, default=0.0, metavar="S",
                       help="wait S seconds before each answer")
    group.add_argument("--never-answer", action="store_true", help="never answer offers")
    group.add_argument("--error-code", default=None, metavar="CODE",
                       help=f"answer every offer with this error code "
                            f"({', '.join(c.value for c in ErrorCode)})")
    group.add_argument("--error-shape", choices=ERROR_SHAPES, default=None,
                       help="answer every valid offer with an error frame without a code: no-code "
                            "(data has only a message), no-data (no data), bare-message (a top-level "
                            "message, no sessionId or data)")
    group.add_argument("--candidates-before-answer", action="store_true",
                       help="send ICE candidates before the answer")
    group.add_argument("--bad-candidates", action="store_true",
                       help="after the answer's candidates, send bad ice-candidate frames: too few "
                            "fields, garbage, an unparsable port, a duplicate, sdpMLineIndex as a "
                            'string, sdpMid only, and "" (end-of-candidates)')
    group.add_argument("--malformed-frames", action="store_true",
                       help="send a few malformed frames after each answer")
    group.add_argument("--no-resume", action="store_true",
                       help="bind each session to its socket: it ends when the socket drops, and "
                            "frames naming it from another socket get HANDLER_ERROR")


def _add_media_faults(group: argparse._ArgumentGroup) -> None:
    """Faults in the RTP audio."""
    group.add_argument("--impair", type=_impairment, default=None, metavar="SPEC",
                       help="impair the media both ways, like netem: loss=5%%,delay=200ms,jitter=30ms")
    group.add_argument("--drop-packet-after", type=float, default=None, metavar="S",
                       help="drop one outbound RTP audio packet S seconds after the answer")
    group.add_argument("--pause-rtp", type=_pause, default=None, metavar="START:LENGTH",
                       help="from START s after the answer, send no RTP audio for LENGTH s (RTCP and "
                            "ICE go on; sequence numbers stay continuous, as with Opus DTX), e.g. 2:20")


def _add_ending_faults(group: argparse._ArgumentGroup) -> None:
    """Ways the gateway ends a session: a dropped socket, a close frame, a server hang-up."""
    group.add_argument("--drop-socket-after", type=float, default=None, metavar="S",
                       help="abort the signaling socket S seconds after the answer")
    group.add_argument("--close-after", type=float, default=None, metavar="S",
                       help="send close S seconds after the answer")
    group.add_argument("--close-without-session", action="store_true",
                       help='with --close-after: send the close frame as {"type":"close"}, '
                            "no sessionId")
    group.add_argument("--hangup-after", type=float, default=None, metavar="S",
                       help="hang up S seconds after the answer like a real server: tear the peer "
                            "connection down and close the websocket at once, no close frame")
    group.add_argument("--hangup-code", type=_close_code, default=None, metavar="CODE",
                       help="with --hangup-after: the websocket close code (default 1000; "
                            "1000-1003, 1007-1014, 3000-4999)")
    group.add_argument("--hangup-reason", type=_close_reason, default=None, metavar="TEXT",
                       help=f"with --hangup-after: the websocket close reason (default empty; at most "
                            f"{MAX_CLOSE_REASON_BYTES} bytes)")


def _close_code(text: str) -> int:
    try:
        code = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not valid_close_code(code):
        raise argparse.ArgumentTypeError(f"{code} is not a close code a server may send "
                                         "(1000-1003, 1007-1014, 3000-4999)")
    return code


def _close_reason(text: str) -> str:
    if len(text.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
        raise argparse.ArgumentTypeError(f"over {MAX_CLOSE_REASON_BYTES} bytes of UTF-8")
    return text


def _pause(text: str) -> tuple[float, float]:
    start, sep, length = text.partition(":")
    try:
        if not sep:
            raise ValueError
        pause = (float(start), float(length))
    except ValueError:
        raise argparse.ArgumentTypeError(f"use START:LENGTH in seconds, e.g. 2:20 (not {text!r})") from None
    if pause[0] < 0 or pause[1] <= 0:
        raise argparse.ArgumentTypeError("START must be >= 0 and LENGTH > 0")
    return pause


def _impairment(text: str) -> Impairment:
    try:
        return Impairment.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def read_tokens(tokens_file: Path | None) -> list[str]:
    if tokens_file is not None:
        lines = tokens_file.read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tokens = read_tokens(args.tokens_file)
    except OSError as exc:
        print(f"polyphone gateway: cannot read the tokens file: {exc.strerror}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(f"polyphone gateway: warning: listening on {args.host}, not loopback: other machines "
              "can reach this gateway", file=sys.stderr)
    if not tokens:
        print("polyphone gateway: no tokens configured; any non-empty token is accepted",
              file=sys.stderr)
    for flag, value, needs, given in (
            ("--hangup-code", args.hangup_code, "--hangup-after", args.hangup_after),
            ("--hangup-reason", args.hangup_reason, "--hangup-after", args.hangup_after),
            ("--close-without-session", args.close_without_session or None, "--close-after",
             args.close_after)):
        if value is not None and given is None:
            print(f"polyphone gateway: {flag} needs {needs}", file=sys.stderr)
            return 2
    faults = Faults(
        answer_delay=args.answer_delay, never_answer=args.never_answer,
        drop_socket_after=args.drop_socket_after, error_code=args.error_code,
        malformed_frames=args.malformed_frames, close_after=args.close_after,
        candidates_before_answer=args.candidates_before_answer,
        drop_packet_after=args.drop_packet_after, impair=args.impair,
        hangup_after=args.hangup_after,
        hangup_code=1000 if args.hangup_code is None else args.hangup_code,
        hangup_reason=args.hangup_reason or "", close_without_session=args.close_without_session,
        error_shape=args.error_shape, pause_rtp=args.pause_rtp, bad_candidates=args.bad_candidates,
        no_resume=args.no_resume,
    )
    gateway = LocalGateway(host=args.host, port=args.port, tokens=tokens, agent=args.agent,
                           faults=faults, think_ms=args.think_ms)
    try:
        asyncio.run(_serve(gateway))
    except OSError as exc:
        print(f"polyphone gateway: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    return 0


async def _serve(gateway: LocalGateway) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises KeyboardInterrupt
            pass
    url = await gateway.start()
    try:
        sys.stdout.write(f"listening {url}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await gateway.stop()
