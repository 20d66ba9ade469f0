"""Under the README's test command a skipped test is a failed one.

build/test.sh sets POLYPHONE_NO_SKIPS=1: every test that would skip (a missing program,
service or package, a machine without something) fails instead, with the skip's own reason
and what to do. A green run then means every test ran. Plain `pytest` keeps ordinary skips,
for a developer running part of the suite somewhere the services are not installed.
Expected failures (xfail) are not skips and are left alone.
"""

from __future__ import annotations

import os

import pytest

ENV = "POLYPHONE_NO_SKIPS"
HINT = ("a test may not skip under build/test.sh: install what is missing "
        "(build/setup.sh --test does it on Debian/Ubuntu), or run plain pytest to allow skips")


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def _reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if enabled() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped: {_reason(report.longrepr)}\n{HINT}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if enabled() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped at collection: {_reason(report.longrepr)}\n{HINT}"
