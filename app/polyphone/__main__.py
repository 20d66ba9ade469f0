"""`polyphone` command line: the desktop window (default) | call | run | gateway | token | devices
| check | desktop | models, and `--self-test`."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import APP_NAME, __version__


def build_parser() -> argparse.ArgumentParser:
    from .cli import call, desktop, devices, gateway, load, models, run, token

    parser = argparse.ArgumentParser(
        prog="polyphone", description=f"{APP_NAME}: a softphone for PolyAI voice agents.")
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check, without a network, that this installation can make a call")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    call.add_arguments(sub.add_parser(
        "call", help="place one call from the command line (headless)",
        description="Place one call. The token comes from the profile's keyring entry or "
                    "the POLYPHONE_TOKEN environment variable, never from the command line. "
                    "Without --url or --profile, calls the embedded local demo gateway."))
    run.add_arguments(sub.add_parser(
        "run", help="play a caller script through a real call and report every turn (A/B too)",
        description="Play a caller script (TOML) through a real call: per-turn response latency, "
                    "barge-in behaviour, a stereo recording, JSON and HTML reports and a repro "
                    "bundle. Several --variant/--version values run an interleaved A/B."))
    gateway.add_arguments(sub.add_parser(
        "gateway", help="run the local, spec-faithful gateway",
        description="Serve the local gateway until SIGINT/SIGTERM. Accepted tokens come from "
                    "--tokens-file or POLYPHONE_GATEWAY_TOKENS; with none, any token is accepted."))
    token.add_arguments(sub.add_parser("token", help="store or clear a profile's token in the OS keyring"))
    devices.add_arguments(sub.add_parser("devices", help="list microphones and speakers"))
    devices.add_check_arguments(sub.add_parser("check", help="test a speaker and a microphone"))
    desktop.add_arguments(sub.add_parser(
        "desktop", help="add Polyphone to (or remove it from) your desktop's menu (Linux)"))
    load.add_arguments(sub.add_parser(
        "load", help="a load test on Locust: many callers, one worker process per core, several machines",
        description="Locust's master and workers place real calls (the `load` extra: "
                    "pip install 'polyphone[load]'). See the README's \"Load testing\"."))
    models.add_arguments(sub.add_parser(
        "models", help="download, list, check or remove Whisper speech models",
        description="The Whisper models of the quality speech recogniser, kept in the user's cache. "
                    "POLYPHONE_MODEL_HUB sets where they are downloaded from."))
    return parser


COMMANDS = ("call", "run", "gateway", "token", "devices", "check", "desktop", "models", "load")
COMMAND_MODULES = {"check": "devices"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--asr-worker"]:   # the speech recogniser's process (speech/remote.py)
        from .speech.worker import main as asr_worker
        return asr_worker(argv[1:])
    if argv[:1] == ["--self-test"]:
        from .cli import self_test
        if argv[1:] == [self_test.QT_PROBE_FLAG]:  # the self-test's child process: the Qt half
            from .gui.probe import main as qt_probe
            return qt_probe()
        return self_test.run(argv[1:])
    if not any(a in COMMANDS for a in argv[:1]) and not any(a in ("-h", "--help", "--version")
                                                           for a in argv[:1]):
        # No command: the desktop window (`--demo` places a call to the local demo agent).
        from .gui.app import main as gui_main
        return gui_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in COMMANDS:   # each command is cli/<name>.py's run(); `check` is devices'
        name = COMMAND_MODULES.get(args.command, args.command)
        module = importlib.import_module(f".cli.{name}", __package__)
        return module.run(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
