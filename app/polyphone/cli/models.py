"""`polyphone models list | pull NAME | remove NAME | verify NAME`: the Whisper speech models.

Exit codes (a contract): 0 ok; 1 a failure (its message and what to do on stderr); 2 usage
(an unknown model name for `pull`); 130 interrupted (Ctrl-C: a pull keeps what arrived and
resumes from there next time). Tables go to stdout; the pull's progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..services import speech_models as models

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MB = 1_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="the models Polyphone knows and the ones on this computer")
    pull = sub.add_parser("pull", help="download a model (an interrupted download resumes)",
                          description="Download a Whisper model for the speech recogniser into "
                                      f"the cache. Models: {', '.join(models.CATALOGUE)}.")
    pull.add_argument("name", metavar="NAME")
    sub.add_parser("remove", help="delete a downloaded model").add_argument("name", metavar="NAME")
    sub.add_parser("verify", help="check a downloaded model's files against their checksums") \
        .add_argument("name", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    action = {"list": _list, "pull": _pull, "remove": _remove, "verify": _verify}[args.models_command]
    try:
        return action(args)
    except models.ModelError as exc:
        _error(exc)
        return EXIT_ERROR


def _error(exc: models.ModelError) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.action:
        print(f"  {exc.action}", file=sys.stderr)


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def _list(args: argparse.Namespace) -> int:
    here = {m.name: m for m in models.installed()}
    rows = [("NAME", "DOWNLOAD", "ON THIS COMPUTER")]
    for name, known in models.CATALOGUE.items():
        rows.append((name + (" *" if name == models.DEFAULT_MODEL else ""), f"~{known.size_mb} MB",
                     _status(here.pop(name, None))))
    rows += [(name, "", _status(info)) for name, info in here.items()]   # folders of other models
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip())
    print(f"(* = the default) Models are kept in {models.models_dir()}.")
    return EXIT_OK


def _status(info: models.ModelInfo | None) -> str:
    if info is None:
        return "-"
    if info.complete:
        return f"installed ({_mb(info.size_bytes)})"
    return f"incomplete ({_mb(info.size_bytes)}): `polyphone models pull {info.name}` finishes it"


class _Bar:
    """The pull's progress on stderr: percentage, megabytes, rate. On a terminal one line redrawn
    at most 10 times a second; otherwise a line at every 10 %."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.first: int | None = None
        self.last_draw = 0.0
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done            # what was already here (a resumed pull)
        percent = 100.0 * done / total if total else 0.0
        if self.tty and now - self.last_draw < 0.1 and done < total:
            return
        if not self.tty and int(percent // 10) == self.last_tenth:
            return
        self.last_draw, self.last_tenth = now, int(percent // 10)
        rate = (done - self.first) / max(now - self.started, 1e-3)
        line = f"{percent:5.1f}%  {done / MB:.1f}/{total / MB:.1f} MB  {rate / MB:.1f} MB/s"
        print(f"\r{line}" if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty and self.first is not None:
            print(file=sys.stderr)


def _pull(args: argparse.Namespace) -> int:
    name = args.name
    if name not in models.CATALOGUE:
        print(f"error: there is no speech model called {name!r} to download.\n"
              f"  Use one of: {', '.join(models.CATALOGUE)}.", file=sys.stderr)
        return EXIT_USAGE
    if any(m.name == name and m.complete for m in models.installed()):
        print(f"{name} is already on this computer ({models.models_dir() / name}).")
        return EXIT_OK
    bar = _Bar()
    print(f"Downloading {name} (about {models.CATALOGUE[name].size_mb} MB) from {models.hub_url()}",
          file=sys.stderr)
    try:
        folder = models.pull_blocking(name, progress=bar)
    except KeyboardInterrupt:
        bar.end()
        print(f"interrupted: what arrived is kept in {models.models_dir() / name}; run "
              f"`polyphone models pull {name}` again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except models.ModelError:
        bar.end()
        raise
    bar.end()
    print(f"{name} is ready ({folder}).")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    freed = models.remove(args.name)
    print(f"Removed {args.name} ({_mb(freed)} freed).")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    problems = models.verify(args.name)
    for problem in problems:
        print(f"{args.name}: {problem}", file=sys.stderr)
    if problems:
        print(f"  Remove it and pull it again: `polyphone models remove {args.name}`, then "
              f"`polyphone models pull {args.name}`.", file=sys.stderr)
        return EXIT_ERROR
    print(f"{args.name}: every file matches its checksum.")
    return EXIT_OK
