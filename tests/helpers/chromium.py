"""Headless Chromium as a real libwebrtc peer, for tests and benchmarks.

`await launch(tmp_dir, url, fake_media=True)` starts Debian's Chromium headless
(root-safe, `--no-sandbox`) with its own HOME, XDG_RUNTIME_DIR and
`--user-data-dir`, flags that keep it off the network, and a DevTools port on
127.0.0.1; it opens `url`. `Browser.page()` connects to that page over the
DevTools protocol (a plain websocket: no Selenium/Playwright, no download), and
`Page.evaluate(js)` runs an expression there (awaiting promises).

Media: `fake_media=True` gives Chromium its built-in fake microphone (a beep)
and no sound output; `fake_media=False` uses the real devices of the PulseAudio
server named by `pulse_env` (PULSE_SERVER...), e.g. the virtual devices of
tests/helpers/sound_server.py: getUserMedia records the default source and an
<audio> element plays to the default sink.

`PageServer(directory)` serves a folder (the test page, tests/bench/chromium_page)
on 127.0.0.1. Every wait is bounded; `Browser.close()` (also at interpreter exit)
kills the browser's whole process group, which this module created.

Why /usr/lib/chromium/chromium and not the /usr/bin/chromium wrapper when both
exist: the Debian wrapper adds `--enable-remote-extensions`, Google API keys and
GPU flags from /etc/chromium.d; the binary it execs takes only our flags.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import http.server
import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.waits import until

LAUNCH_TIMEOUT = 20.0
CDP_TIMEOUT = 10.0
CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "chromium", "chromium-browser")
PAGE_DIR = Path(__file__).resolve().parent.parent / "bench" / "chromium_page"

# Off the network (the machine's closed network refuses these connections anyway,
# many at a time), no first-run UI, no keyring/D-Bus prompts.
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",                       # root in a container: the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-client-side-phishing-detection",
    "--disable-quic",
    "--metrics-recording-only",
    "--no-pings",
    "--password-store=basic",
    "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,"
    "OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
)
# WebRTC on loopback with no prompt and no user gesture.
MEDIA_FLAGS = (
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
)
FAKE_DEVICE_FLAGS = ("--use-fake-device-for-media-stream", "--mute-audio")

_live: set["Browser"] = set()


class ChromiumError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """The Chromium executable, or None."""
    env = os.environ.get("POLYPHONE_CHROMIUM")
    for cand in ((env,) if env else ()) + CANDIDATES:
        path = cand if os.path.isabs(cand) else shutil.which(cand)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def available() -> str | None:
    """None if Chromium can be launched here, else why not (for pytest.skip)."""
    if find_chromium() is None:
        return ("chromium is not installed (Debian package `chromium`; "
                "build/setup.sh --test installs it)")
    return None


# --- the page server ------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class PageServer:
    """Serves `directory` on http://127.0.0.1:PORT/ from a thread until `close()`."""

    def __init__(self, directory: Path = PAGE_DIR) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="chromium page server")
        self._thread.start()

    def url(self, path: str = "index.html", **query: str) -> str:
        q = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return f"http://127.0.0.1:{self.port}/{path}" + (f"?{q}" if q else "")

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "PageServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- DevTools protocol --------------------------------------------------------------------


class Page:
    """One page target over the DevTools protocol (JSON-RPC on a websocket)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self.console: list[str] = []   # console messages and uncaught exceptions (bounded)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                fut = self._waiting.pop(msg.get("id"), None) if "id" in msg else None
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                elif msg.get("method") == "Runtime.consoleAPICalled":
                    args = msg["params"].get("args", [])
                    self._note(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
                elif msg.get("method") == "Runtime.exceptionThrown":
                    details = msg["params"].get("exceptionDetails", {})
                    self._note("exception: " + str(details.get("exception", {}).get("description")
                                                   or details.get("text")))
        except Exception:  # the socket closed: fail whoever still waits
            pass
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ChromiumError("the DevTools connection closed"))
        self._waiting.clear()

    def _note(self, text: str) -> None:
        self.console.append(text[:500])
        del self.console[:-200]

    async def send(self, method: str, params: dict | None = None, timeout: float = CDP_TIMEOUT) -> dict:
        if self._reader.done():
            raise ChromiumError("the DevTools connection is closed")
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        await self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._waiting.pop(msg_id, None)
            raise ChromiumError(f"DevTools {method} did not answer in {timeout:g} s") from None
        if "error" in reply:
            raise ChromiumError(f"DevTools {method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expression: str, timeout: float = CDP_TIMEOUT) -> Any:
        """The value of a JS expression in the page (promises awaited, JSON-able values)."""
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
        }, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"page exception: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float, what: str = "",
                       interval: float = 0.05) -> Any:
        """Poll `expression` until it is truthy; ChromiumError after `timeout` s."""
        last: list[Any] = [None]

        async def value() -> Any:
            last[0] = await self.evaluate(expression, timeout=min(CDP_TIMEOUT, max(1.0, timeout)))
            return last[0]

        return await until(value, timeout, interval,
                           lambda: f"{what or expression} (last value {last[0]!r})", error=ChromiumError)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 2)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


# --- the browser -------------------------------------------------------------------------


@dataclass(eq=False)
class Browser:
    proc: subprocess.Popen
    root: Path
    port: int
    log_path: Path
    pages: list[Page] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """The browser and every process under it (renderers, GPU, audio and network services)."""
        return process_tree(self.proc.pid)

    def _http_json(self, path: str) -> Any:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        with opener.open(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            return json.loads(resp.read())

    async def page(self, timeout: float = CDP_TIMEOUT) -> Page:
        """Attach to the first page target (the one launched with the URL)."""
        from websockets.asyncio.client import connect

        async def page_target() -> dict | None:
            if self.proc.poll() is not None:
                raise ChromiumError(f"chromium exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                targets = await asyncio.to_thread(self._http_json, "/json/list")
            except OSError:
                return None
            return next((t for t in targets if t.get("type") == "page"), None)

        target = await until(page_target, timeout, 0.1, lambda: f"a page target:\n{self.log_tail()}",
                             error=ChromiumError)
        ws = await connect(target["webSocketDebuggerUrl"], proxy=None, max_size=16 * 2**20,
                           open_timeout=timeout, ping_interval=None, compression=None)
        page = Page(ws)
        self.pages.append(page)
        await page.send("Runtime.enable")
        return page

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def aclose(self) -> None:
        for page in self.pages:
            await page.close()
        self.pages.clear()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Kill the browser and its process group (idempotent, bounded)."""
        _live.discard(self)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers (zygote, utilities)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("latin-1")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


async def launch(tmp_dir: Path, url: str = "about:blank", *, fake_media: bool = True,
                 pulse_env: dict[str, str] | None = None, extra_flags: tuple[str, ...] = (),
                 timeout: float = LAUNCH_TIMEOUT) -> Browser:
    """Start headless Chromium on `url`; returns once its DevTools port answers."""
    exe = find_chromium()
    if exe is None:
        raise ChromiumError(available() or "chromium not found")
    tmp_dir = Path(tmp_dir)
    home, runtime, profile = tmp_dir / "home", tmp_dir / "run", tmp_dir / "profile"
    for path in (home, profile):
        path.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PULSE_", "CHROME_", "DBUS_SESSION", "DISPLAY", "WAYLAND"))}
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), TMPDIR=str(tmp_dir))
    flags = [*QUIET_FLAGS, *MEDIA_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]
    if fake_media:
        flags += FAKE_DEVICE_FLAGS
    else:
        if not pulse_env or "PULSE_SERVER" not in pulse_env:
            raise ChromiumError("fake_media=False needs pulse_env with PULSE_SERVER")
        env.update(pulse_env)
    flags += extra_flags
    log_path = tmp_dir / "chromium.log"
    port_file = profile / "DevToolsActivePort"
    with contextlib.suppress(FileNotFoundError):
        port_file.unlink()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([exe, *flags, url], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    browser = Browser(proc, tmp_dir, 0, log_path)
    _live.add(browser)
    def devtools_port() -> int | None:
        if proc.poll() is not None:
            raise ChromiumError(f"chromium exited ({proc.returncode}) while starting:\n"
                                f"{browser.log_tail()}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(port_file.read_text().splitlines()[0])
        return None

    try:
        browser.port = await until(devtools_port, timeout, 0.05,
                                   lambda: f"chromium's DevTools port:\n{browser.log_tail()}",
                                   error=ChromiumError)
    except BaseException:
        browser.close()
        raise
    return browser


@atexit.register
def _kill_leftovers() -> None:
    for browser in list(_live):
        browser.close()
