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
import os
import secrets as pysecrets
import signal
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import config, protocol
from ..audio.files import SAMPLE_RATE, NullSink, PacedSource, SilenceSource, WavSink, WavSource, read_wav
from ..engine.call import Call, CallResult
from ..engine.events import (
    AgentSilence,
    AudioStats,
    CallError,
    CallState,
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
from ..engine.request import CallRequest, Timeouts, request_from_profile
from ..paths import resource
from ..secrets import KeyringStore, SecretStoreError, token_key, turn_key

EXIT_BY_KIND = {
    ErrorKind.GATEWAY: 3, ErrorKind.CLOSED: 3, ErrorKind.NETWORK: 4, ErrorKind.ICE: 4, ErrorKind.PROTOCOL: 4,
    ErrorKind.TIMEOUT: 5, ErrorKind.CONFIG: 2, ErrorKind.KEYRING: 6, ErrorKind.DEVICE: 4,
    ErrorKind.INTERNAL: 1,
}
PLAY_TAIL_S = 2.0  # after --play ends (and no --duration), wait this long for the reply
DEMO_LEAD_S = 4.5   # the demo agent's greeting is ~4 s
DEMO_REPLY_S = 4.5  # it repeats the ~4 s prompt after its think time


class UsageError(Exception):
    pass


class DeviceUsageError(Exception):
    """A sound device could not be used (exit 4, like other device failures)."""


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
    except SecretStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6
    except DeviceUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130


def _printer(args: argparse.Namespace):
    def show(event: Event) -> None:
        line = None
        if isinstance(event, StateChanged):
            line = f"[call] {event.state.value}" + (f" — {event.reason}" if event.reason else "")
        elif isinstance(event, ConnectionChanged) and (args.verbose or event.component == "peer"):
            line = f"[{event.component}] {event.state}"
        elif isinstance(event, SelectedPair):
            line = (f"[ice] selected pair {event.local.type} {event.local.address}:{event.local.port}"
                    f" <-> {event.remote.type} {event.remote.address}:{event.remote.port}"
                    f" ({event.local.protocol})")
        elif isinstance(event, MediaStalled):
            line = f"[audio] media lost: nothing from the gateway for {event.seconds:.1f} s"
        elif isinstance(event, MediaResumed):
            line = f"[audio] media back after {event.gap_seconds:.1f} s"
        elif isinstance(event, AgentSilence):
            line = (f"[audio] the agent is silent (no audio packets for {event.seconds:.1f} s)"
                    if event.active else f"[audio] the agent is speaking again after {event.seconds:.1f} s")
        elif isinstance(event, DeviceChanged):
            line = f"[device] {event.reason}"
        elif isinstance(event, TurnLatency):
            line = f"[audio] turn {event.turn}: the agent answered after {event.latency_ms:.0f} ms"
        elif isinstance(event, AudioStats) and args.verbose:
            line = (f"[audio] playout {event.playout_buffer_ms:.0f}/{event.playout_target_ms:.0f} ms, "
                    f"under-runs {event.playout_underruns}, concealed {event.concealed_ms:.0f} ms, "
                    f"mic dropped {event.capture_dropped_ms:.0f} ms")
        elif isinstance(event, LogLine) and args.verbose:
            line = f"[{event.source}] {event.level}: {event.text}"
        if line:
            print(line, file=sys.stderr, flush=True)
    return show


def _resolve_token(profile_name: str | None) -> str:
    env = os.environ.get("POLYPHONE_TOKEN", "").strip()
    if env:
        return env
    if profile_name:
        token = KeyringStore().get(token_key(profile_name))
        if token:
            return token
        raise UsageError(f"No token is stored for profile {profile_name!r}. Store one with "
                         f"`polyphone token set --profile {profile_name!r}` or set POLYPHONE_TOKEN.")
    raise UsageError("No token: set POLYPHONE_TOKEN, or use --profile with a stored token.")


def _timeouts(args: argparse.Namespace) -> Timeouts:
    if args.connect_timeout <= 0 or args.answer_timeout <= 0 or args.media_lost <= 0:
        raise UsageError("timeouts must be positive")
    return Timeouts(connect=args.connect_timeout, answer=args.answer_timeout, media_lost=args.media_lost)


async def _request(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> CallRequest:
    profile = None
    if args.profile:
        try:
            profile = config.ProfileStore().get(args.profile)
        except config.ConfigError as exc:
            raise UsageError(str(exc)) from None
    if args.url or (profile is not None and not profile.is_local):
        url = args.url or profile.signal_url()  # type: ignore[union-attr]
        token = _resolve_token(args.profile)
        local = False
    else:  # the embedded local gateway, with a token made for this call only
        from ..localgw.server import LocalGateway
        token = pysecrets.token_urlsafe(24)
        gateway = LocalGateway(tokens=[token])
        url = await gateway.start()
        stack.push_async_callback(gateway.stop)
        local = True
    if profile is None:
        profile = config.Profile(name="command line", region=config.CUSTOM, url=url,
                                 fetch_ice_servers=not args.no_ice_fetch)
    if args.no_ice_fetch or local:
        profile.fetch_ice_servers = False
    if args.ca_file:
        profile.ca_file = args.ca_file
    store = KeyringStore()
    return request_from_profile(
        profile, url, token, variant_id=args.variant, mode=args.mode,
        turn_credential=lambda u: store.get(turn_key(profile.name, u)), timeouts=_timeouts(args))


async def _main(args: argparse.Namespace) -> int:
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
    async with contextlib.AsyncExitStack() as stack:
        request = await _request(args, stack)
        if args.concurrency is not None:
            return await _many(request, args)
        show = _printer(args)
        audio: dict = {"turn_latencies_ms": [], "stats": None}
        connected = asyncio.Event()

        def listener(event: Event) -> None:
            if isinstance(event, StateChanged) and event.state is CallState.CONNECTED:
                connected.set()
            elif isinstance(event, TurnLatency):
                audio["turn_latencies_ms"].append(round(event.latency_ms, 1))
            elif isinstance(event, AudioStats):
                audio["stats"] = {k: v for k, v in asdict(event).items() if k != "t"}
            show(event)

        if args.input or args.output:
            source, sink = await _devices(args, listener, stack)
        else:
            source, sink = _files(args)
        call = Call(request, source, sink, listener)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(call.hangup()))
        ender = asyncio.ensure_future(_end_when_due(call, connected, source, args))
        try:
            result = await call.run()
        finally:
            ender.cancel()
        if args.demo and args.record and result.connected:
            print(f"The demo agent's reply was recorded to {args.record}", file=sys.stderr)
        return _report(result, args, audio)


def _files(args: argparse.Namespace):
    try:
        source = _source(args)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"--play: cannot read {args.play!r} as a 16-bit WAV ({exc})") from None
    try:
        sink = WavSink(args.record) if args.record else NullSink()
    except OSError as exc:
        raise UsageError(f"--record: cannot write {args.record!r} ({exc.strerror})") from None
    return source, sink


def _device_id(text: str | None, kind: str) -> str | None:
    from ..audio.devices import find_device

    if text is None or text == "default":
        return None
    device = find_device(text, kind)
    if device is None:
        raise UsageError(f"no {kind} device matches {text!r}; see `polyphone devices`")
    return device.id


async def _devices(args: argparse.Namespace, show, stack: contextlib.AsyncExitStack):
    """Real microphone and speaker through the audio pipeline (processing, meters, recording)."""
    from ..audio.devices import DeviceError
    from ..audio.pipeline import AudioPipeline, AudioSettings

    if args.play:
        raise UsageError("--play sends a file instead of the microphone; drop --input/--output")
    on = not args.no_processing
    try:
        settings = AudioSettings(
            input_device=_device_id(args.input, "input"),
            output_device=_device_id(args.output, "output"),
            echo_cancellation=on, noise_suppression=on, gain_control=on,
            record_path=Path(args.record) if args.record else None)
        pipeline = AudioPipeline(settings, show)
        await pipeline.start()
    except DeviceError as exc:
        raise DeviceUsageError(str(exc)) from None
    stack.push_async_callback(pipeline.stop)
    return pipeline.source, pipeline.sink


def _source(args: argparse.Namespace):
    if not args.play:
        return SilenceSource()
    if args.demo:  # let the agent finish its greeting before the caller speaks
        lead = np.zeros(int(DEMO_LEAD_S * SAMPLE_RATE), np.int16)
        return PacedSource(np.concatenate([lead, read_wav(args.play)]))
    return WavSource(args.play)


async def _end_when_due(call: Call, connected: asyncio.Event, source, args) -> None:
    await connected.wait()
    if args.duration is not None:
        await asyncio.sleep(args.duration)
    elif args.play:
        while not source.finished:
            await asyncio.sleep(0.05)
        await asyncio.sleep(PLAY_TAIL_S + (DEMO_REPLY_S if args.demo else 0.0))
    else:
        return  # until Ctrl+C or the agent hangs up
    await call.hangup()


def _exit_code(result: CallResult) -> int:
    if result.error is not None:
        return EXIT_BY_KIND.get(result.error.kind, 1)
    return 0 if result.connected else 4


async def _many(request: CallRequest, args: argparse.Namespace) -> int:
    from .load import run_many

    print(f"[load] {args.concurrency} calls at once", file=sys.stderr, flush=True)
    calls, figures = await run_many(args.concurrency, lambda _i: request, args, _end_when_due)
    codes = [_exit_code(c["result"]) for c in calls]
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
            entry = _result_json(c["result"], code, {"turn_latencies_ms": [], "stats": None})
            entry.update(call=c["call"], recording=c["recording"], send=c["send"], receive=c["receive"])
            entries.append(entry)
        print(json.dumps({"concurrency": args.concurrency, "aggregate": figures, "calls": entries}),
              flush=True)
    return max(codes)


def _result_json(result: CallResult, code: int, audio: dict) -> dict:
    err: CallError | None = result.error
    stats = None
    if result.stats is not None:
        stats = {k: v for k, v in asdict(result.stats).items() if k != "t"}
    return {
        "result": "ended" if code == 0 else "failed",
        "exit_code": code,
        "sessionId": result.session_id or None,
        "callSid": result.call_sid,
        "error": None if err is None else _error_json(err),
        "reason": result.reason,
        "duration_s": result.duration_s,
        "reconnects": result.reconnects,
        "timings_ms": result.timings_ms,
        "stats": stats,
        "turn_latencies_ms": audio["turn_latencies_ms"],
        "audio": audio["stats"],
    }


def _error_json(err: CallError) -> dict:
    """`code` is a spec code, UNKNOWN (an `error` frame with a missing or unlisted code; the
    gateway's own is `gateway_code`), or the kind of failure (network, ice, timeout, closed...)."""
    if err.kind is ErrorKind.GATEWAY:
        code = err.code if protocol.ErrorCode.lookup(err.code or "") else protocol.UNKNOWN_CODE
    else:
        code = err.code or err.kind.value
    gateway_code = (err.code or None) if err.kind is ErrorKind.GATEWAY else None
    return {"code": code, "kind": err.kind.value, "message": err.message, "action": err.action,
            "detail": err.detail, "gateway_code": gateway_code, "close_code": err.close_code}


def _report(result: CallResult, args: argparse.Namespace, audio: dict) -> int:
    code = _exit_code(result)
    err: CallError | None = result.error
    if err is not None:
        shown = _error_json(err)["code"] if err.kind is ErrorKind.GATEWAY else err.code
        print(f"{shown}: {err.message} {err.action}" if shown
              else f"error: {err.message} {err.action}", file=sys.stderr)
    elif not result.connected:
        print(f"error: the call ended before it connected ({result.reason})", file=sys.stderr)
    else:
        print(f"[call] ended after {result.duration_s:.1f} s — {result.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(_result_json(result, code, audio)), flush=True)
    return code
