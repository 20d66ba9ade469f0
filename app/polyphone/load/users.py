"""`CallerUser`: a Locust user whose every iteration is one real call through Polyphone's engine.

Each Locust worker process hosts its calls on one asyncio loop in a native thread
(load/bridge.py), prepares the call request once (load/calls.py: the token comes from this
machine's keyring or POLYPHONE_TOKEN, never from Locust), and reports each call to Locust's own
statistics (load/outcome.py): `call`/`setup` and `turn`/`turn N`, failures by kind.

Options (Locust sends them from the master to every worker; none is secret):
  --polyphone-script FILE     a caller script (say, play, dtmf, wait_for_agent, barge_in, expect);
                              none: a plain call of --polyphone-duration seconds
  --polyphone-profile NAME | --polyphone-url URL   the target (and --polyphone-variant, -mode,
                              -ca-file, --polyphone-no-ice-fetch)
  --polyphone-iterations N    calls per user, then the user is done; when every user is done
                              the run stops by itself (0: until --run-time)

The workers must not be monkey-patched by gevent (LOCUST_SKIP_MONKEY_PATCH=1; `polyphone load`
sets it): see load/bridge.py for what patching does to an asyncio loop's threads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.monkey
from locust import User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from .bridge import CallLoop
from .calls import LoadSetupError, Options, WorkerCalls, failed_setup
from .outcome import SETUP, Sample

log = logging.getLogger("polyphone.load")

DONE_MESSAGE, FIGURES_MESSAGE = "polyphone_user_done", "polyphone_figures"
FIGURES_EVERY_S = 2.0
QUIT_AFTER_DONE_S = 2.5     # the CSV is rewritten every second: let the last counts reach it
PATCHED = ("This Locust worker was monkey-patched by gevent, which runs an asyncio loop's threads "
           "as greenlets of one thread: calls would miss their audio deadlines.")
UNPATCH = "Start workers with `polyphone load` (or set LOCUST_SKIP_MONKEY_PATCH=1 for them)."

_loop = CallLoop()
_calls = WorkerCalls()
_ready: gevent.event.AsyncResult | None = None
_done_users: set[str] = set()
_figures: dict[str, dict[str, Any]] = {}
_reporting: list[Any] = []     # the greenlet sending this worker's figures (one, over every test run)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser   # (Locust's include_in_web_ui works on the parser, not on argument groups)
    for name, text in (("script", "a caller script (TOML); none: a plain call"),
                       ("profile", "a Polyphone profile to call (its token: this machine's keyring)"),
                       ("url", "a signaling URL to call (the token: POLYPHONE_TOKEN)"),
                       ("variant", "a variantId"), ("mode", "end-to-end, traditional or echo"),
                       ("ca-file", "extra CA certificate for a private wss:// gateway"),
                       ("play", "a plain call's caller audio (16-bit WAV); none: silence")):
        group.add_argument(f"--polyphone-{name}", default="", help=text, include_in_web_ui=False)
    group.add_argument("--polyphone-duration", type=float, default=10.0, include_in_web_ui=False,
                       help="a plain call's length once connected, s (default 10)")
    group.add_argument("--polyphone-iterations", type=int, default=0, include_in_web_ui=False,
                       help="calls per user; the run stops when every user has made them (0: no limit)")
    group.add_argument("--polyphone-no-ice-fetch", action="store_true", default=False,
                       include_in_web_ui=False, help="don't fetch the gateway's ICE servers")


def _options(parsed: Any) -> Options:
    def text(name: str) -> str | None:
        return str(getattr(parsed, f"polyphone_{name}", "") or "").strip() or None

    return Options(script=text("script"), profile=text("profile"), url=text("url"), variant=text("variant"),
                   mode=text("mode"), ca_file=text("ca_file"), play=text("play"),
                   duration_s=float(getattr(parsed, "polyphone_duration", 10.0) or 10.0),
                   fetch_ice_servers=not getattr(parsed, "polyphone_no_ice_fetch", False))


def _prepare(environment: Any) -> LoadSetupError | None:
    """Once per process (the first user to get here does it; the others wait)."""
    global _ready
    if _ready is None:
        _ready = gevent.event.AsyncResult()
        try:
            if gevent.monkey.is_module_patched("threading"):
                raise LoadSetupError(PATCHED, UNPATCH)
            _loop.run(_calls.prepare(_options(environment.parsed_options)), timeout=120)
            _ready.set(None)
        except LoadSetupError as exc:
            log.error("Polyphone cannot place calls here: %s %s", exc.message, exc.action)
            _ready.set(exc)
        except Exception as exc:  # a bug: say what, keep the run able to end
            log.exception("Polyphone's load worker could not start")
            _ready.set(LoadSetupError(f"The worker could not start ({type(exc).__name__}).", ""))
    return _ready.get()


def _fire(environment: Any, sample: Sample) -> None:
    environment.events.request.fire(request_type=sample.request_type, name=sample.name,
                                    response_time=sample.response_time_ms, response_length=0,
                                    exception=sample.failure, context={})


class CallerUser(User):
    """One simulated caller: calls back to back (each a real call), `--polyphone-iterations` of them."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self._made = 0
        self._done = False

    @task
    def call(self) -> None:
        if self._done:
            gevent.sleep(3600)      # finished: idle, so Locust does not start this user again
            return
        problem = _prepare(self.environment)
        if problem is not None:
            _fire(self.environment, Sample(*SETUP, 0.0, f"cannot place calls: {problem.message}"))
            self._finish()
            return
        started = time.perf_counter()
        try:
            entries = _loop.run(_calls.one_call(), timeout=_calls.call_timeout())
        except TimeoutError:
            spent = 1000 * (time.perf_counter() - started)
            entries = [Sample(*SETUP, spent, "timeout: the call never ended")]
        except Exception as exc:  # a bug in a call: a failure of its own kind, the run goes on
            log.exception("a call failed unexpectedly")
            entries = [failed_setup(exc)]
        for sample in entries:
            _fire(self.environment, sample)
        self._made += 1
        limit = int(getattr(self.environment.parsed_options, "polyphone_iterations", 0) or 0)
        if limit and self._made >= limit:
            self._finish()

    def _finish(self) -> None:
        self._done = True
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            send = getattr(runner, "_send_stats", None)
            if callable(send):       # the counts reach the master before the user says it is done
                send()
            runner.send_message(DONE_MESSAGE, f"{runner.client_id}/{id(self)}")
        else:
            _user_done(self.environment, f"local/{id(self)}")


def _user_done(environment: Any, who: str) -> None:
    _done_users.add(who)
    wanted = int(getattr(environment.parsed_options, "num_users", 0) or 0)
    if wanted and len(_done_users) >= wanted:
        log.info("every user has made its calls: stopping")
        gevent.spawn_later(QUIT_AFTER_DONE_S, environment.runner.quit)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(DONE_MESSAGE, lambda msg, **_kw: _user_done(environment, str(msg.data)))
        runner.register_message(FIGURES_MESSAGE,
                                lambda msg, **_kw: _figures.__setitem__(str(msg.node_id), msg.data))


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    _done_users.clear()
    if isinstance(environment.runner, WorkerRunner) and not _reporting:
        _reporting.append(gevent.spawn(_report_figures, environment.runner))


def _report_figures(runner: Any) -> None:
    while True:
        gevent.sleep(FIGURES_EVERY_S)
        if _ready is not None and _ready.ready() and _ready.get() is None:
            runner.send_message(FIGURES_MESSAGE, _calls.deadlines.figures())


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _summarise(environment, dict(_figures))
    elif _ready is not None:
        if not isinstance(runner, WorkerRunner):
            _summarise(environment, {"local": _calls.deadlines.figures()})
        try:
            _loop.run(_calls.close(), timeout=10)
        finally:
            _loop.stop()


def _summarise(environment: Any, figures: dict[str, dict[str, Any]]) -> None:
    """What each worker process carried, in the log and beside the CSV (PREFIX_workers.json)."""
    for node, f in sorted(figures.items()):
        lag = (f.get("loop_lag_ms") or {}).get("p99")
        log.info("worker %s: %s calls (at most %s at once), %.2f %% of frames late sending, "
                 "%.2f %% gaps receiving, loop lag p99 %s ms: deadlines %s", node[-12:], f.get("calls"),
                 f.get("peak_active"), 100 * f.get("send_late_share", 0.0),
                 100 * f.get("receive_gap_share", 0.0),
                 lag, "met" if f.get("deadlines_met") else "MISSED")
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix and figures:
        Path(f"{prefix}_workers.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
