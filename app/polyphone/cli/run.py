"""`polyphone run SCRIPT... [--repeat N --pass-rate P] [--junit FILE]`: scripted callers
through real calls, measured turn by turn and checked against their expectations.

SCRIPT is a caller script or a folder of them (every *.toml under it). Per script, one
target: the script's (or --profile/--url, --variant, --version); several `--variant` /
`--version` values: one target each, run interleaved (A/B). Every call gets a folder with
recording.wav, report.json, report.html and bundle.zip; with more than one call,
summary.json and summary.html sit beside them. A script passes against a target when at
least --pass-rate of its --repeat calls passed (ended normally, every expectation met).

Exit codes: 0 every script passed; 1 some failed, each only on expectations (the calls
themselves went through); otherwise `polyphone call`'s: 3 a gateway error, 4 another call
failure, 2 a usage or script error, 6 the keyring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path

from .. import config, protocol
from ..engine.request import CallRequest
from ..runs import ab
from ..runs.caller_lines import render_all
from ..runs.report import write_run
from ..runs.runner import RunResult, ScriptRunner
from ..runs.script import Script, ScriptError, load_script
from ..runs.suite import Case, exit_code, junit_xml, script_files
from ..secrets import SecretStoreError
from ..services.requests import Target
from .call import KeyringUsageError, UsageError, request_for


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scripts", nargs="+", metavar="SCRIPT",
                   help="a caller script (TOML; see the README), or a folder of them")
    p.add_argument("--variant", action="append", default=[], metavar="ID",
                   help="a variantId to call; repeat for an A/B run")
    p.add_argument("--version", action="append", default=[], metavar="ARTIFACT[:LAMBDA]",
                   help="an agentVersionOverride (a pinned draft build); repeat for an A/B run")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="calls per target (default 1)")
    p.add_argument("--pass-rate", type=float, default=1.0, metavar="P",
                   help="a script passes when at least this fraction of its calls pass (default 1.0)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one test case per script and target")
    p.add_argument("--no-transcript", action="store_true",
                   help="don't transcribe the calls (expect.heard then fails)")
    p.add_argument("--recognizer", default="pocketsphinx", metavar="ENGINE[:MODEL]",
                   help="the speech recogniser for transcripts and expect.heard: pocketsphinx "
                        "(default, offline) or whisper:MODEL (a model pulled with `polyphone "
                        "models pull`, or a folder holding one)")
    p.add_argument("--out", metavar="DIR", help="where the reports go (default: the data folder's runs/)")
    p.add_argument("--profile", help="profile to call (its token comes from the keyring)")
    p.add_argument("--url", help="signaling URL instead of a profile's")
    p.add_argument("--mode", choices=("end-to-end", "traditional", "echo"))
    p.add_argument("--ca-file", help="extra CA certificate for a private wss:// gateway")
    p.add_argument("--no-ice-fetch", action="store_true", help="don't fetch the gateway's ICE servers")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _override(text: str) -> protocol.AgentVersionOverride:
    artifact, _, lam = text.partition(":")
    if not artifact.strip():
        raise UsageError(f"--version {text!r}: give ARTIFACT or ARTIFACT:LAMBDA")
    return protocol.AgentVersionOverride(artifact.strip(), lam.strip() or None)


def recognizer(args: argparse.Namespace) -> tuple[str, str | None]:
    """--recognizer as (engine, model); UsageError when it cannot be used now."""
    from ..services import speech_models

    engine, _, model = str(args.recognizer).partition(":")
    engine, model = engine.strip().lower(), speech_models.model_for(engine.strip().lower(), model)
    if not args.no_transcript:
        problem = speech_models.validate(engine, model)
        if problem is not None:
            raise UsageError(f"--recognizer {args.recognizer}: {problem}")
    return engine, model


def targets(script: Script, args: argparse.Namespace) -> list[tuple[str, dict]]:
    """(label, CallRequest fields to replace) per target."""
    out = [(f"variant {v}", {"variant_id": v}) for v in args.variant]
    out += [(f"build {v}", {"agent_version_override": _override(v)}) for v in args.version]
    if out:
        return out
    t = script.target
    fields: dict = {}
    if t.variant:
        fields["variant_id"] = t.variant
    if t.version:
        fields["agent_version_override"] = _override(t.version)
    return [(t.label if (t.variant or t.version) else "default target", fields)]


def script_target(script: Script, args: argparse.Namespace) -> Target:
    """The command line's target, the script's where the command line says nothing."""
    t = script.target
    return Target(profile=args.profile or t.profile or None, url=args.url or t.url or None,
                  mode=args.mode or t.mode or None, ca_file=args.ca_file,
                  fetch_ice_servers=not args.no_ice_fetch, prefer_environment=True)


def _show(event: object) -> None:
    from ..runs.events import TurnResult
    if isinstance(event, TurnResult):
        lat = "—" if event.response_latency_ms is None else f"{event.response_latency_ms:.0f} ms"
        extra = ""
        if event.barged_in:
            extra = (f"; stopped {event.barge_in_stop_ms:.0f} ms after the barge-in"
                     if event.stopped_after_barge_in else "; did NOT stop when barged in")
        print(f"[turn {event.turn}] {event.kind}: reply after {lat}{extra}", file=sys.stderr, flush=True)


def _out_root(args: argparse.Namespace, scripts: list[Script]) -> Path:
    if args.out:
        return Path(args.out)
    name = ab.slug(scripts[0].path.stem) if len(scripts) == 1 else "suite"
    return config.data_dir() / "runs" / f"{datetime.now():%Y%m%d-%H%M%S}-{name}"


def _check_args(args: argparse.Namespace) -> None:
    if args.repeat < 1 or args.repeat > 1000:
        raise UsageError("--repeat must be from 1 to 1000")
    if not 0.0 < args.pass_rate <= 1.0:
        raise UsageError("--pass-rate must be above 0 and at most 1 (e.g. 0.8)")
    args.recognizer_choice = recognizer(args)


async def _run_script(script: Script, args: argparse.Namespace, out: Path,
                      lines: dict) -> tuple[list[Case], int, dict | None]:
    """Every target of one script, --repeat times each: its cases, its call-failure code and
    its A/B summary (more than one call)."""
    out.mkdir(parents=True, exist_ok=True)
    plan = targets(script, args)
    labels = [label for label, _ in plan]
    fields = dict(plan)
    async with contextlib.AsyncExitStack() as stack:
        base: CallRequest = await request_for(script_target(script, args), stack)

        async def one(label: str, i: int) -> RunResult:
            folder = out / (f"{ab.slug(label)}-{i}" if len(plan) > 1 or args.repeat > 1 else "call")
            print(f"[run] {script.name} → {label} (call {i} of {args.repeat})", file=sys.stderr, flush=True)
            request = dataclasses.replace(base, **fields[label])
            result = await ScriptRunner(script, request, out_dir=folder, listener=_show, label=label,
                                        lines=lines, transcribe=not args.no_transcript,
                                        recognizer=args.recognizer_choice).run()
            write_run(result, token=base.token)
            print(f"[run] {_state(result)}; report: {folder / 'report.html'}", file=sys.stderr, flush=True)
            return result

        runs = await ab.run_interleaved(labels, args.repeat, one)
    all_runs = [r for rs in runs.values() for r in rs]
    summary = ab.write_summary(script.name, labels, runs, out) if len(all_runs) > 1 else None
    for c in (summary or {}).get("comparisons", []):
        diff = "—" if c["difference_ms"] is None else f"{c['difference_ms']:+.0f} ms"
        print(f"[a/b] turn {c['turn']}: {c['target']} vs {c['baseline']}: {diff} ({c['verdict']})",
              file=sys.stderr)
    cases = [Case(script.name, str(script.path), label, args.pass_rate, runs[label]) for label in labels]
    failed = [r for r in all_runs if not r.ok]
    code = 3 if any((r.error or {}).get("kind") == "gateway" for r in failed) else 4
    return cases, code, summary


def _state(result: RunResult) -> str:
    if not result.ok:
        return f"failed: {(result.error or {}).get('message', '')}"
    unmet = [c for c in result.expectations + [c for t in result.turns for c in t.expectations]
             if not c["passed"]]
    return "ended normally" + (f"; {len(unmet)} expectation(s) not met" if unmet else "")


async def _main(args: argparse.Namespace) -> int:
    _check_args(args)
    files = script_files(args.scripts)
    if not files:
        raise UsageError(f"no caller scripts (*.toml) in {', '.join(args.scripts)}")
    scripts = [load_script(f) for f in files]              # every script checked before any call
    lines = [await asyncio.to_thread(render_all, s) for s in scripts]
    root = _out_root(args, scripts)
    cases: list[Case] = []
    code = 4
    summaries = []
    for script, rendered in zip(scripts, lines):
        out = root if len(scripts) == 1 else root / ab.slug(script.path.stem)
        script_cases, script_code, summary = await _run_script(script, args, out, rendered)
        cases += script_cases
        summaries.append(summary)
        if any(not c.passed and not c.only_expectations_failed for c in script_cases):
            code = min(code, script_code)
    for c in cases:
        print(f"[{'PASS' if c.passed else 'FAIL'}] {c.script} → {c.target}: {c.summary()}", file=sys.stderr)
    if args.junit:
        Path(args.junit).write_text(junit_xml(cases), encoding="utf-8")
    if args.json:
        print(json.dumps({"out": str(root), "summary": summaries[0] if len(scripts) == 1 else None,
                          "summaries": summaries, "cases": [
            {"script": c.script, "target": c.target, "passed": c.passed, "calls": len(c.calls),
             "passed_calls": c.passed_calls} for c in cases],
            "runs": [r.to_json() for c in cases for r in c.calls]}), flush=True)
    return exit_code(cases, code)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except (ScriptError, UsageError, SecretStoreError, KeyringUsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 6 if isinstance(exc, (SecretStoreError, KeyringUsageError)) else 2
    except KeyboardInterrupt:
        return 130
