"""`polyphone load [SCRIPT] (--profile NAME | --url URL) --users N --spawn-rate R --run-time T ...`:
a load test on Locust (the `load` extra), a thin front end over Locust's own command line.

Locust's master and its workers are child processes running polyphone/load/locustfile.py:
`--workers K` local workers (default: one per core) beside a local master, the master alone
(`--master`, for workers on other machines) or workers alone (`--worker --master-host HOST`).
The workers run with LOCUST_SKIP_MONKEY_PATCH=1 (load/bridge.py says why); each reads the
token on its own machine (the profile's keyring entry, or POLYPHONE_TOKEN): it is never put on
a command line, in Locust's options or in its reports. Without --headless Locust's web UI
opens on 127.0.0.1. Against a gateway that is not on this machine the plan is printed first,
and more than 10 users need --yes.

Exit codes: Locust's master's (0 no failures, 1 some request failed); 2 usage; 6 the keyring;
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from .. import config
from ..protocol.urls import is_loopback_host
from ..runs.script import ScriptError, load_script
from .call import UsageError

EXIT_USAGE, EXIT_KEYRING, EXIT_INTERRUPTED = 2, 6, 130
CONFIRM_ABOVE_USERS = 10
STOP_TIMEOUT_S = 30
WORKER_ENV = {"LOCUST_SKIP_MONKEY_PATCH": "1"}
NO_LOCUST = ("Load tests need Locust, which is an optional part of Polyphone.",
             "Install it with: pip install 'polyphone[load]' (in a checkout: build/setup.sh --test).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("script", nargs="?", metavar="SCRIPT",
                   help="a caller script (TOML; say, play, dtmf, wait_for_agent, barge_in, expect); "
                        "none: each call is a plain call of --duration seconds")
    p.add_argument("--profile", help="profile to call (each worker takes its token from its keyring)")
    p.add_argument("--url", help="signaling URL to call (each worker takes POLYPHONE_TOKEN)")
    p.add_argument("--variant", metavar="ID", help="a variantId to call")
    p.add_argument("--mode", choices=("end-to-end", "traditional", "echo"))
    p.add_argument("--ca-file", help="extra CA certificate for a private wss:// gateway")
    p.add_argument("--no-ice-fetch", action="store_true", help="don't fetch the gateway's ICE servers")
    p.add_argument("-u", "--users", type=int, metavar="N", help="callers at once (not with --worker)")
    p.add_argument("-r", "--spawn-rate", type=float, default=1.0, metavar="R",
                   help="callers started per second (default 1)")
    p.add_argument("-t", "--run-time", metavar="T", help="stop after this long (e.g. 90s, 5m)")
    p.add_argument("--iterations", type=int, default=0, metavar="N",
                   help="calls per caller; the run stops when every caller has made them")
    p.add_argument("--duration", type=float, default=10.0, metavar="S",
                   help="a plain call's length once connected (no SCRIPT; default 10)")
    p.add_argument("--play", metavar="WAV", help="a plain call's caller audio (no SCRIPT; default silence)")
    p.add_argument("--workers", type=int, metavar="K", help="local worker processes (default: one per core)")
    p.add_argument("--master", action="store_true", help="run only Locust's master (workers elsewhere)")
    p.add_argument("--worker", action="store_true", help="run only workers, for --master-host's master")
    p.add_argument("--master-host", metavar="HOST", help="the master's address (with --worker)")
    p.add_argument("--master-bind", default="*", metavar="ADDRESS",
                   help="with --master: the address to listen on for workers (default: all)")
    p.add_argument("--master-port", type=int, default=5557, metavar="PORT",
                   help="the master's port (default 5557; a local run picks a free one)")
    p.add_argument("--csv", metavar="PREFIX", help="write Locust's CSV reports (PREFIX_stats.csv, ...)")
    p.add_argument("--html", metavar="FILE", help="write Locust's HTML report")
    p.add_argument("--headless", action="store_true", help="no web UI: start at once, stop by itself")
    p.add_argument("--web-port", type=int, default=8089, metavar="PORT", help="the web UI's port (8089)")
    p.add_argument("--yes", action="store_true",
                   help="go ahead with more than 10 callers to a gateway on another machine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _target_url(args: argparse.Namespace) -> str:
    if args.url:
        return args.url
    try:
        profile = config.ProfileStore().get(args.profile)
    except config.ConfigError as exc:
        raise UsageError(f"{exc} (see Agents → Profiles, or use --url)") from None
    return "" if profile.is_local else profile.signal_url()


def _check(args: argparse.Namespace) -> None:
    if args.worker:
        if not args.master_host:
            raise UsageError("--worker needs --master-host HOST (the machine running --master)")
        return
    if bool(args.url) == bool(args.profile):
        raise UsageError("give the target: --profile NAME or --url URL (one of them)")
    if args.users is None or args.users < 1 or args.spawn_rate <= 0:
        raise UsageError("--users must be 1 or more and --spawn-rate above 0")
    for name in ("script", "play"):
        if getattr(args, name) and not Path(getattr(args, name)).is_file():
            raise UsageError(f"no such file: {getattr(args, name)}")
    if args.script:
        try:
            load_script(args.script)          # every worker loads it too: say what is wrong once, here
        except ScriptError as exc:
            raise UsageError(str(exc)) from None
    if args.headless and not args.run_time and not args.iterations:
        raise UsageError("a headless run needs --run-time or --iterations to end")
    if args.url and not os.environ.get("POLYPHONE_TOKEN"):
        raise UsageError("--url needs POLYPHONE_TOKEN set (on every worker machine too)")


def plan(args: argparse.Namespace) -> tuple[str, bool]:
    """The plan in words, and whether the gateway is off this machine."""
    url = _target_url(args)
    host = urlparse(url).hostname or ""
    remote = bool(url) and not is_loopback_host(host)
    what = f"script {args.script}" if args.script else f"plain calls of {args.duration:g} s"
    until = f"{args.iterations} call(s) per caller" if args.iterations else f"for {args.run_time or 'ever'}"
    where = f"{host} ({'another machine' if remote else 'this machine'})" if url else "the local demo gateway"
    return (f"plan: {args.users} callers, {args.spawn_rate:g} started per second, {until}; "
            f"{what}; target {where}"), remote


def _polyphone_options(args: argparse.Namespace) -> list[str]:
    out = []
    for name in ("script", "profile", "url", "variant", "mode", "ca_file", "play"):
        value = getattr(args, name)
        if value:
            value = str(Path(value).resolve()) if name in ("script", "ca_file", "play") else str(value)
            out += [f"--polyphone-{name.replace('_', '-')}", value]
    out += ["--polyphone-duration", f"{args.duration:g}", "--polyphone-iterations", str(args.iterations)]
    return out + (["--polyphone-no-ice-fetch"] if args.no_ice_fetch else [])


def locust_command(*extra: str) -> list[str]:
    locustfile = Path(__file__).resolve().parents[1] / "load" / "locustfile.py"
    return [sys.executable, "-m", "locust", "-f", str(locustfile), *extra]


def master_command(args: argparse.Namespace, workers: int, port: int, bind: str) -> list[str]:
    cmd = ["--master", "--master-bind-host", bind, "--master-bind-port", str(port),
           "--expect-workers", str(workers), "--expect-workers-max-wait", "60",
           "-u", str(args.users), "-r", f"{args.spawn_rate:g}", *_polyphone_options(args)]
    if not args.iterations:          # at --run-time, calls under way end as calls do
        cmd += ["--stop-timeout", str(STOP_TIMEOUT_S)]
    if args.run_time:
        cmd += ["-t", args.run_time]
    if args.csv:
        cmd += ["--csv", args.csv]
    if args.html:
        cmd += ["--html", args.html]
    cmd += ["--headless"] if args.headless else ["--web-host", "127.0.0.1", "--web-port", str(args.web_port)]
    return locust_command(*cmd)


def worker_command(host: str, port: int) -> list[str]:
    return locust_command("--worker", "--master-host", host, "--master-port", str(port))


def _spawn(cmd: list[str], worker: bool) -> subprocess.Popen:
    env = dict(os.environ, **(WORKER_ENV if worker else {}))
    if not worker:
        env.pop("LOCUST_SKIP_MONKEY_PATCH", None)    # the master needs gevent's patching
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def _stop(procs: list[subprocess.Popen], timeout: float = 15.0) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _launch(args: argparse.Namespace) -> int:
    workers = args.workers or os.cpu_count() or 1
    if args.worker:
        procs = [_spawn(worker_command(args.master_host, args.master_port), True) for _ in range(workers)]
        try:
            return max(p.wait() for p in procs)
        finally:
            _stop(procs)
    if args.master:
        master = _spawn(master_command(args, workers, args.master_port, args.master_bind), False)
        try:
            return master.wait()
        finally:
            _stop([master])
    port = _free_port()
    master = _spawn(master_command(args, workers, port, "127.0.0.1"), False)
    procs = [_spawn(worker_command("127.0.0.1", port), True) for _ in range(workers)]
    try:
        return master.wait()
    finally:
        _stop(procs + [master])


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("locust") is None:   # not imported here: it patches its process
        print(f"error: {NO_LOCUST[0]}\n  {NO_LOCUST[1]}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _check(args)
        if not args.worker:
            text, remote = plan(args)
            print(text, file=sys.stderr)
            if remote and args.users > CONFIRM_ABOVE_USERS and not args.yes:
                raise UsageError(f"more than {CONFIRM_ABOVE_USERS} callers to a gateway on another machine: "
                                 "check the plan above, ask PolyAI about rate limits, then add --yes")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _launch(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
