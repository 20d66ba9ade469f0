"""`polyphone devices [--json] [--all]` and `polyphone check [--input ID] [--output ID] ...`.

Exit codes (a contract): 0 ok; 2 usage; 4 device error (no audio library,
no device, unknown, busy or unsupported device). Messages go to stderr, the
table, the JSON and the check's progress to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ..audio.devices import INPUT, OUTPUT, Device, DeviceError, current_backend, find_device, list_devices

EXIT_OK, EXIT_USAGE, EXIT_DEVICE = 0, 2, 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`polyphone devices`."""
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--all", action="store_true",
                   help="include monitor sources (what an output plays), hidden by default")
    p.set_defaults(devices_command="devices")


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    """`polyphone check`."""
    p.add_argument("--input", metavar="ID", help="microphone: an id or name from "
                   "`polyphone devices` (default: the system default)")
    p.add_argument("--output", metavar="ID", help="speaker: an id or name (default: the system default)")
    p.add_argument("--seconds", type=float, default=3.0, metavar="S",
                   help="how long to record from the microphone (default 3)")
    p.add_argument("--tone-only", action="store_true", help="only play the speaker test tone")
    p.add_argument("--json", action="store_true", help="print one JSON result object on stdout")
    p.set_defaults(devices_command="check")


def run(args: argparse.Namespace) -> int:
    """Runs `devices` or `check`, whichever parser `args` came from."""
    try:
        if getattr(args, "devices_command", "devices") == "check":
            return _check(args)
        return _devices(args)
    except DeviceError as exc:
        _error(exc)
        return EXIT_DEVICE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _error(exc: DeviceError) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.action:
        print(f"  {exc.action}", file=sys.stderr)


# --- devices --------------------------------------------------------------------

COLUMNS = ("KIND", "", "NAME", "ID", "HOST API", "CH", "RATE")


def format_table(devices: list[Device]) -> str:
    rows = [COLUMNS] + [(d.kind, "*" if d.is_default else "", d.name, d.id, d.hostapi,
                         str(d.channels), str(d.default_rate)) for d in devices]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n(* = system default)"


def _devices(args: argparse.Namespace) -> int:
    devices = list_devices(include_monitors=args.all)
    if args.json:
        print(json.dumps([d.to_dict() for d in devices], indent=2))
    else:
        if devices:
            print(format_table(devices))
    if not devices:
        print(f"error: no sound devices found ({current_backend()}).", file=sys.stderr)
        print("  Connect a microphone and a speaker or headset; on Linux check that the "
              "sound server runs (`pactl info`).", file=sys.stderr)
        return EXIT_DEVICE
    return EXIT_OK


# --- check ----------------------------------------------------------------------

def _pick(text: str | None, kind: str) -> str | None:
    """The id for --input/--output TEXT (an id or a name); DeviceError if unknown."""
    if text is None:
        return None
    dev = find_device(text, kind)
    if dev is None:
        what = "microphone" if kind == INPUT else "speaker"
        raise DeviceError(f"No {what} matches {text!r}.",
                          "Run `polyphone devices` and pass an ID (or a unique part of a name).")
    return dev.id


def _check(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 60:
        print("error: --seconds must be more than 0 and at most 60", file=sys.stderr)
        return EXIT_USAGE
    input_id = None if args.tone_only else _pick(args.input, INPUT)
    output_id = _pick(args.output, OUTPUT)
    return asyncio.run(_check_async(args, input_id, output_id))


def _say(args: argparse.Namespace, text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr if args.json else sys.stdout, flush=True)


async def _check_async(args: argparse.Namespace, input_id: str | None, output_id: str | None) -> int:
    from ..audio import check

    report: dict = {}
    target = await asyncio.to_thread(check.resolve, output_id, OUTPUT)
    _say(args, f"Speaker: {target.device.name}  [{target.device.id}]")
    if target.fallback_reason:
        _say(args, f"  note: {target.fallback_reason}")
    _say(args, "  playing a 440 Hz test tone (1 s) ... ", end="")
    played = await check.play_to(target, check.check_tone(1.0))
    _say(args, f"done ({played.peak_dbfs:.0f} dBFS peak). Did you hear it?")
    report["output"] = {"device": target.device.to_dict(), "tone_peak_dbfs": round(played.peak_dbfs, 1)}
    if not args.tone_only:
        mic = await asyncio.to_thread(check.resolve, input_id, INPUT)
        _say(args, f"Microphone: {mic.device.name}  [{mic.device.id}]")
        if mic.fallback_reason:
            _say(args, f"  note: {mic.fallback_reason}")
        _say(args, f"  recording {args.seconds:g} s — say something ... ", end="")
        heard = await check.record(mic, args.seconds)
        _say(args, f"heard: {heard.level_dbfs:.0f} dBFS (peak {heard.peak_dbfs:.0f} dBFS)")
        if heard.quiet:
            _say(args, "  warning: almost silence. Is the microphone muted, or is it the wrong one?")
        _say(args, "  playing it back ... ", end="")
        await check.play_to(target, heard.samples)
        _say(args, "done.")
        report["input"] = {"device": mic.device.to_dict(), "seconds": round(heard.seconds, 3),
                           "level_dbfs": round(heard.level_dbfs, 1),
                           "peak_dbfs": round(heard.peak_dbfs, 1),
                           "quiet": heard.quiet}
    if args.json:
        print(json.dumps(report, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser (`python -m polyphone.cli.devices devices|check ...`)."""
    parser = argparse.ArgumentParser(prog="polyphone")
    sub = parser.add_subparsers(dest="command", required=True)
    add_arguments(sub.add_parser("devices", help="list microphones and speakers"))
    add_check_arguments(sub.add_parser("check", help="test a speaker and a microphone"))
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
