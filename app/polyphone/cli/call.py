"""`polyphone call`: one headless call; human progress on stderr, `--json` on stdout.

Exit codes (a contract): 0 connected and ended normally; 2 usage or
configuration; 3 the gateway sent an error (prints `CODE: explanation`) or closed the socket
with a terminal code;
4 network, ICE or protocol failure; 5 timeout; 6 keyring; 1 internal.
With --concurrency N, the highest code of the N calls (0 only when all ended normally).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

from .. import config
from ..engine.events import (
    AgentSilence,
    AudioStats,
    ConnectionChanged,
    DeviceChanged,
    ErrorKind,
    Event,
    LogLine,
    MediaResumed,
    MediaStalled,
    SelectedPair,
    StateChanged,
    TurnLatency,
)
from ..engine.request import CallRequest, Timeouts
from ..paths import resource
from ..secrets import SecretStoreError
from ..services import headless
from ..services.app_events import Caption, CaptionsStatus
from ..services.errors import EDIT_TOKEN, PrepError
from ..services.headless import MediaError, Plan
from ..services.load_run import run_many
from ..services.local_gateway import EmbeddedGateway
from ..services.redact import Redactor
from ..services.requests import RequestBuilder, Target
from ..services.tokens import TokenVault
from .call_result import exit_code, report, result_json

DEMO_LEAD_S = 4.5   # the demo agent's greeting is ~4 s
DEMO_REPLY_S = 4.5  # it repeats the ~4 s prompt after its think time


class UsageError(Exception):
    pass


class DeviceUsageError(Exception):
    """A sound device (or the embedded gateway) could not be used (exit 4, like other device failures)."""


class KeyringUsageError(Exception):
    """The keyring failed and no token came from elsewhere (exit 6)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="signaling URL (wss://…, or ws:// on this computer)")
    p.add_argument("--profile", help="profile name (its token is read from the OS keyring)")
    p.add_argument("--mode", choices=("end-to-end", "traditional", "echo"))
    p.add_argument("--variant", help="variantId to call (overrides the profile's)")
    p.add_argument("--play", metavar="WAV", help="send this WAV file as the microphone")
    p.add_argument("--record", metavar="WAV", help="write the agent's audio to this WAV file")
    p.add_argument("--duration", type=float, metavar="S",
                   help="hang up S seconds after connecting (default: when --play ends, or Ctrl+C)")
    p.add_argument("--input", metavar="DEVICE",
                   help="microphone: a device id or name from `polyphone devices`, or 'default'")
    p.add_argument("--output", metavar="DEVICE",
                   help="speaker: a device id or name from `polyphone devices`, or 'default'")
    p.add_argument("--captions", action="store_true",
                   help="with --input/--output: print what each side says, recognised offline")
    p.add_argument("--no-processing", action="store_true",
                   help="with devices: echo cancellation, noise suppression and gain control off")
    p.add_argument("--json", action="store_true", help="print one JSON result object on stdout")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="make N calls at once and report their deadline figures (load-testing an "
                        "agent; files only, not devices)")
    p.add_argument("--ca-file", help="extra CA certificate for a private wss:// gateway")
    p.add_argument("--no-ice-fetch", action="store_true",
                   help="don't ask the gateway for ICE servers")
    p.add_argument("--connect-timeout", type=float, default=30.0, metavar="S")
    p.add_argument("--answer-timeout", type=float, default=15.0, metavar="S")
    p.add_argument("--media-lost", type=float, default=Timeouts.media_lost, metavar="S",
                   help="end the call when no audio has come for this long (default %(default)g)")
    p.add_argument("--demo", action="store_true",
                   help="call the embedded demo agent with a bundled prompt and record its reply")
    p.add_argument("-v", "--verbose", action="store_true", help="print the event log")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SecretStoreError, KeyringUsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6
    except DeviceUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130


def _pair(e: SelectedPair) -> str:
    return (f"[ice] selected pair {e.local.type} {e.local.address}:{e.local.port}"
            f" <-> {e.remote.type} {e.remote.address}:{e.remote.port} ({e.local.protocol})")


def _silence(e: AgentSilence) -> str:
    return (f"[audio] the agent is silent (no audio packets for {e.seconds:.1f} s)" if e.active
            else f"[audio] the agent is speaking again after {e.seconds:.1f} s")


def _audio_stats(e: AudioStats) -> str:
    return (f"[audio] playout {e.playout_buffer_ms:.0f}/{e.playout_target_ms:.0f} ms, "
            f"under-runs {e.playout_underruns}, concealed {e.concealed_ms:.0f} ms, "
            f"mic dropped {e.capture_dropped_ms:.0f} ms")


# How each event reads on stderr: (always shown?, words). Not always shown: only with -v.
LINES: dict[type, tuple[bool, Callable[[Any], str]]] = {
    StateChanged: (True, lambda e: f"[call] {e.state.value}" + (f" — {e.reason}" if e.reason else "")),
    SelectedPair: (True, _pair),
    MediaStalled: (True, lambda e: f"[audio] media lost: nothing from the gateway for {e.seconds:.1f} s"),
    MediaResumed: (True, lambda e: f"[audio] media back after {e.gap_seconds:.1f} s"),
    AgentSilence: (True, _silence),
    DeviceChanged: (True, lambda e: f"[device] {e.reason}"),
    TurnLatency: (True, lambda e: f"[audio] turn {e.turn}: the agent answered after {e.latency_ms:.0f} ms"),
    AudioStats: (False, _audio_stats),
    LogLine: (False, lambda e: f"[{e.source}] {e.level}: {e.text}"),
    Caption: (True, lambda e: (f"[{'agent' if e.who == 'agent' else 'you'}] {e.text}"
                               if e.final and e.text else None)),
    CaptionsStatus: (True, lambda e: f"[captions] {e.engine or 'off: ' + e.problem}"),
}


def _printer(args: argparse.Namespace) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if isinstance(event, ConnectionChanged):
            shown = args.verbose or event.component == "peer"
            line = f"[{event.component}] {event.state}" if shown else None
        else:
            always, words = LINES.get(type(event), (False, None))
            line = words(event) if words is not None and (always or args.verbose) else None
        if line:
            print(line, file=sys.stderr, flush=True)
    return show


def _timeouts(args: argparse.Namespace) -> Timeouts:
    if args.connect_timeout <= 0 or args.answer_timeout <= 0 or args.media_lost <= 0:
        raise UsageError("timeouts must be positive")
    return Timeouts(connect=args.connect_timeout, answer=args.answer_timeout, media_lost=args.media_lost)


def target(args: argparse.Namespace, **fields) -> Target:
    """What the command line asks to call (`call`, and `run` with its script's target)."""
    return Target(profile=args.profile or None, url=args.url or None, variant_id=args.variant or None,
                  mode=args.mode, ca_file=args.ca_file, fetch_ice_servers=not args.no_ice_fetch,
                  timeouts=_timeouts(args), prefer_environment=True, **fields)


async def request_for(tgt: Target, stack: contextlib.AsyncExitStack) -> CallRequest:
    """The request, through the application layer; the embedded gateway (when one is started)
    stops when `stack` closes. A problem before the call is a UsageError (exit 2) or, for
    the keyring, a KeyringUsageError (exit 6)."""
    gateway = EmbeddedGateway()
    stack.push_async_callback(gateway.stop)
    builder = RequestBuilder(config.ProfileStore(), TokenVault(), gateway, Redactor())
    try:
        return await builder.build(tgt)
    except PrepError as exc:
        err = exc.error
        if err.hint == EDIT_TOKEN and err.kind is ErrorKind.CONFIG:
            name = tgt.profile or "NAME"
            raise UsageError(f"{err.message} Store one with `polyphone token set --profile {name!r}` "
                             "or set POLYPHONE_TOKEN.") from None
        if err.kind is ErrorKind.KEYRING:
            raise KeyringUsageError(f"{err.message} Or set POLYPHONE_TOKEN for this session.") from None
        if err.kind is ErrorKind.CONFIG:
            raise UsageError(f"{err.message} {err.action}".strip()) from None
        raise DeviceUsageError(f"{err.message} {err.action}".strip()) from None


def _check(args: argparse.Namespace) -> None:
    """Usage errors before anything starts (and --demo's defaults)."""
    if args.demo:
        args.play = args.play or str(resource("sounds/caller-demo.wav"))
        if not args.record:
            folder = config.data_dir() / "recordings"
            folder.mkdir(parents=True, exist_ok=True)
            args.record = str(folder / "demo-reply.wav")
    if args.play and not Path(args.play).is_file():
        raise UsageError(f"--play: no such file {args.play!r}")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be 1 or more")
    if args.concurrency is not None and (args.input or args.output):
        raise UsageError("--concurrency plays files, not sound devices; drop --input/--output")


def plan(args: argparse.Namespace) -> Plan:
    demo = bool(args.demo)
    return Plan(play=args.play, record=args.record, duration=args.duration,
                lead_s=DEMO_LEAD_S if demo and args.play else 0.0, reply_s=DEMO_REPLY_S if demo else 0.0,
                input=args.input, output=args.output, processing=not args.no_processing,
                captions=args.captions)


async def _main(args: argparse.Namespace) -> int:
    _check(args)
    async with contextlib.AsyncExitStack() as stack:
        request = await request_for(target(args), stack)
        try:
            if args.concurrency is not None:
                return await _many(request, args)
            result, audio = await headless.run(request, plan(args), _printer(args), stack)
        except MediaError as exc:
            raise (DeviceUsageError if exc.device else UsageError)(exc.message) from None
    if args.demo and args.record and result.connected:
        print(f"The demo agent's reply was recorded to {args.record}", file=sys.stderr)
    return report(result, args, audio)


async def _many(request: CallRequest, args: argparse.Namespace) -> int:
    print(f"[load] {args.concurrency} calls at once", file=sys.stderr, flush=True)
    calls, figures = await run_many(args.concurrency, lambda _i: request, plan(args))
    codes = [exit_code(c["result"]) for c in calls]
    lag = figures["loop_lag_ms"]
    print(f"[load] {figures['connected']}/{figures['calls']} connected; "
          f"failures {figures['failures'] or 'none'}; "
          f"set-up median {figures['setup_ms']['median']} ms; late frames sent "
          f"{figures['send_late_share']:.2%}, received gaps {figures['receive_gap_share']:.2%}; "
          f"loop lag p99 {lag['p99']} ms — deadlines {'met' if figures['deadlines_met'] else 'MISSED'}",
          file=sys.stderr, flush=True)
    if args.json:
        entries = []
        for c, code in zip(calls, codes):
            entry = result_json(c["result"], code, {"turn_latencies_ms": [], "stats": None})
            entry.update(call=c["call"], recording=c["recording"], send=c["send"], receive=c["receive"])
            entries.append(entry)
        print(json.dumps({"concurrency": args.concurrency, "aggregate": figures, "calls": entries}),
              flush=True)
    return max(codes)
