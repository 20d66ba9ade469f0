"""A pytest plugin that fails the session when a test token turns up in anything the tests wrote.

The registry holds every token the tests use: module-level string constants named
`…TOKEN` (12+ characters with a digit, so "token" itself is not one) in every
collected test module, plus whatever a test passes to `register()` (`canary()`
makes and registers a distinctive one). At the end of the session it searches

- pytest's base temporary directory (every `tmp_path`, and the HOME, XDG, config,
  data and keyring directories the tests point the app at, which live there),
- the real user directories of Polyphone (config, data, cache, state, log), if any,
- pytest's own `--log-file` and `--junitxml` outputs, and directories passed to `watch()`,
- every test's captured stdout, stderr and log records, and failure reports,

for each token raw, URL-quoted, base64 (standard and URL-safe, at every alignment)
and UTF-16 (Windows APIs), in file contents and in file names. Any hit fails the run
(exit status 1) with the place named. Files marked with `allow()` are skipped (a test
that writes a token on purpose, e.g. a gateway's --tokens-file). build/test.sh runs
two pytest processes; each loads this plugin (tests/conftest.py) and scans its own.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import urllib.parse
from pathlib import Path
from typing import Iterable, Iterator

import pytest

MIN_LEN = 12
CHUNK = 8 * 1024 * 1024
MAX_FILE_BYTES = 512 * 1024 * 1024
_TOKENS: set[str] = set()
_ALLOWED: set[Path] = set()
_WATCHED: set[Path] = set()
_CAPTURED_HITS: list[str] = []


def register(*tokens: str) -> None:
    """Add tokens to the registry (distinctive ones: short common words would match anywhere)."""
    for token in tokens:
        if len(token) < MIN_LEN:
            raise ValueError(f"a token to scan for needs {MIN_LEN}+ characters: {token!r}")
        _TOKENS.add(token)


def canary(prefix: str = "canary") -> str:
    """A fresh, registered, unmistakable test token."""
    token = f"{prefix}-leakcanary-{secrets.token_hex(8)}"
    register(token)
    return token


def allow(path: str | os.PathLike) -> None:
    """Don't scan this file (a test wrote a token there on purpose)."""
    _ALLOWED.add(Path(path).resolve())


def watch(path: str | os.PathLike) -> None:
    """Also scan this directory (for outputs outside pytest's temporary directory)."""
    _WATCHED.add(Path(path))


def tokens() -> frozenset[str]:
    return frozenset(_TOKENS)


# --- how a token can appear -----------------------------------------------------------


def _b64_cores(raw: bytes) -> Iterator[bytes]:
    """The part of the token's base64 that is the same wherever it sits in a longer blob."""
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + raw)
            start = (shift * 8 + 5) // 6 + 1 if shift else 0
            end = len(text) - 4  # the last group may mix in what follows
            if end - start >= 8:
                yield text[start:end]


def forms(token: str) -> dict[bytes, str]:
    """Byte patterns to look for -> the name of the encoding."""
    raw = token.encode("utf-8")
    out: dict[bytes, str] = {raw: "raw"}
    out.setdefault(urllib.parse.quote(token, safe="").encode(), "url-quoted")
    out.setdefault(urllib.parse.quote_plus(token).encode(), "url-quoted")
    out.setdefault(token.encode("utf-16-le"), "UTF-16")
    for core in _b64_cores(raw):
        out.setdefault(core, "base64")
    return out


class Scanner:
    def __init__(self, token_set: Iterable[str]) -> None:
        self.tokens = frozenset(token_set)
        self.names: dict[bytes, tuple[str, str]] = {}
        for token in self.tokens:
            for pattern, how in forms(token).items():
                self.names.setdefault(pattern, (token, how))
        patterns = sorted(self.names, key=len, reverse=True)
        self.regex = re.compile(b"|".join(re.escape(p) for p in patterns)) if patterns else None
        self.overlap = max((len(p) for p in patterns), default=0)

    def find(self, data: bytes) -> list[tuple[str, str]]:
        if self.regex is None:
            return []
        return [self.names[m.group(0)] for m in self.regex.finditer(data)]

    def scan_text(self, text: str, where: str) -> list[str]:
        return [_describe(tok, how, where) for tok, how in
                dict.fromkeys(self.find(text.encode("utf-8", "surrogatepass")))]

    def scan_file(self, path: Path) -> list[str]:
        hits: dict[tuple[str, str], None] = {}
        tail = b""
        read = 0
        try:
            with open(path, "rb") as fh:
                while read < MAX_FILE_BYTES:
                    block = fh.read(CHUNK)
                    if not block:
                        break
                    read += len(block)
                    for hit in self.find(tail + block):
                        hits[hit] = None
                    tail = block[-self.overlap:] if self.overlap else b""
        except OSError:
            return []
        return [_describe(tok, how, str(path)) for tok, how in hits]

    def scan_tree(self, root: Path, seen: set[Path]) -> list[str]:
        found: list[str] = []
        if not root.exists():
            return found
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            for name in dirnames + filenames:
                found += self.scan_text(name, f"the name of {here / name}")
            for name in filenames:
                path = here / name
                try:
                    real = path.resolve()
                    if path.is_symlink() or not path.is_file() or real in seen or real in _ALLOWED:
                        continue
                except OSError:
                    continue
                seen.add(real)
                found += self.scan_file(path)
        return found


def _describe(token: str, how: str, where: str) -> str:
    return f"test token {token[:6]}… ({how}) in {where}"


# --- the plugin -------------------------------------------------------------------------


def _module_tokens(module: object) -> Iterator[str]:
    for name, value in vars(module).items():
        if (name.upper().endswith("TOKEN") and isinstance(value, str) and len(value) >= MIN_LEN
                and any(ch.isdigit() for ch in value) and not value.isspace()):
            yield value


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    for module in {id(item.module): item.module for item in items
                   if getattr(item, "module", None) is not None}.values():
        for token in _module_tokens(module):
            _TOKENS.add(token)


_SCANNER: list[Scanner] = []


def _scanner() -> Scanner:
    """One Scanner per registry size (tests may register tokens as they run)."""
    if not _SCANNER or len(_SCANNER[0].tokens) != len(_TOKENS):
        _SCANNER[:] = [Scanner(_TOKENS)]
    return _SCANNER[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _TOKENS:
        return
    scanner = _scanner()
    texts = [(f"{report.nodeid}: {title}", content) for title, content in report.sections]
    if report.failed and report.longrepr is not None:
        texts.append((f"{report.nodeid}: the failure report", str(report.longrepr)))
    for where, text in texts:
        _CAPTURED_HITS.extend(scanner.scan_text(text, where))


def _user_dirs() -> list[Path]:
    import platformdirs

    return [Path(fn("polyphone")) for fn in (
        platformdirs.user_config_dir, platformdirs.user_data_dir, platformdirs.user_cache_dir,
        platformdirs.user_state_dir, platformdirs.user_log_dir)]


def output_roots(config: pytest.Config) -> list[Path]:
    roots: list[Path] = []
    factory = getattr(config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None)
    if base is not None:
        roots.append(Path(base))
    roots += _user_dirs()
    for option in ("log_file", "xmlpath", "resultlog"):
        value = getattr(config.option, option, None)
        if value:
            roots.append(Path(value))
    roots += sorted(_WATCHED)
    return roots


def scan_outputs(config: pytest.Config) -> list[str]:
    scanner = _scanner()
    seen: set[Path] = set()
    found: list[str] = list(dict.fromkeys(_CAPTURED_HITS))
    for root in output_roots(config):
        if root.is_file():
            if root.resolve() not in _ALLOWED:
                found += scanner.scan_file(root)
        else:
            found += scanner.scan_tree(root, seen)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _TOKENS or exitstatus not in (0, 1):
        return
    found = scan_outputs(session.config)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found:
        if reporter is not None:
            reporter.section("token leak scan", sep="=", red=True, bold=True)
            for line in found[:50]:
                reporter.line(f"LEAK: {line}", red=True)
            if len(found) > 50:
                reporter.line(f"... and {len(found) - 50} more")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and reporter.verbosity >= 0:
        reporter.write_line(f"token leak scan: {len(_TOKENS)} test tokens, no hits in the "
                            "tests' outputs")
