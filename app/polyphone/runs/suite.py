"""A suite's verdicts: scripts × targets, each repeated, passed at a pass rate; JUnit XML for CI.

Voice agents are not deterministic, so one call proves little: with `--repeat N --pass-rate P`
a script passes against a target when at least P of its N calls passed (a call passes when
it ended normally and met every expectation, `RunResult.passed`). JUnit XML has one test case
per script and target; a failure carries the evidence: each failed call's unmet expectations
or error, and its report's folder.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .runner import RunResult


@dataclass
class Case:
    """One script against one target: its calls and whether they pass at the pass rate."""

    script: str          # the script's name
    path: str            # the script's file
    target: str
    pass_rate: float
    calls: list[RunResult] = field(default_factory=list)

    @property
    def passed_calls(self) -> int:
        return sum(1 for r in self.calls if r.passed)

    @property
    def needed(self) -> int:
        return max(1, math.ceil(self.pass_rate * len(self.calls) - 1e-9))

    @property
    def passed(self) -> bool:
        return bool(self.calls) and self.passed_calls >= self.needed

    @property
    def only_expectations_failed(self) -> bool:
        """Every failed call connected and ended normally: the agent, not the call, failed."""
        return all(r.ok for r in self.calls if not r.passed)

    def summary(self) -> str:
        return (f"{self.passed_calls} of {len(self.calls)} calls passed "
                f"(needs {self.needed}, pass rate {self.pass_rate:.0%})")

    def evidence(self) -> str:
        lines = []
        for i, r in enumerate(self.calls, 1):
            if r.passed:
                continue
            lines.append(f"call {i} ({r.out_dir}):")
            if r.error:
                lines.append(f"  error: {r.error.get('message', '')} {r.error.get('action', '')}".rstrip())
            elif not r.ok:
                lines.append("  the call did not end normally")
            for where, checks in _checks(r):
                for c in checks:
                    if not c["passed"]:
                        lines.append(f"  {where}{c['what']}: expected {c['expected']}, got {c['actual']}")
        return "\n".join(lines)


def _checks(r: RunResult) -> list[tuple[str, list[dict]]]:
    return [("", r.expectations)] + [(f"turn {t.turn} ", list(t.expectations)) for t in r.turns]


def exit_code(cases: list[Case], call_failure_code: int) -> int:
    """0: every case passed; 1: some failed, each on expectations alone; else the call's code."""
    failed = [c for c in cases if not c.passed]
    if not failed:
        return 0
    return 1 if all(c.only_expectations_failed for c in failed) else call_failure_code


def junit_xml(cases: list[Case], suite_name: str = "polyphone") -> str:
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(cases)),
                       failures=str(sum(1 for c in cases if not c.passed)), errors="0",
                       time=f"{sum(r.duration_s for c in cases for r in c.calls):.2f}")
    for c in cases:
        case = ET.SubElement(suite, "testcase", classname=Path(c.path).stem or "script",
                             name=f"{c.script} [{c.target}]",
                             time=f"{sum(r.duration_s for r in c.calls):.2f}")
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.summary(), type="expectation"
                                    if c.only_expectations_failed else "call")
            failure.text = c.evidence()
        ET.SubElement(case, "system-out").text = "\n".join(
            f"call {i}: {'passed' if r.passed else 'failed'}; report {Path(r.out_dir) / 'report.html'}"
            for i, r in enumerate(c.calls, 1))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def script_files(paths: list[str]) -> list[Path]:
    """Scripts named on the command line; a folder means every *.toml under it, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        found = sorted(p.rglob("*.toml")) if p.is_dir() else [p]
        out += [f for f in found if f not in out]
    return out
