"""Under build/test.sh (POLYPHONE_NO_SKIPS=1) a test that would skip fails: helpers/no_skips.py.

Each check runs pytest in a subprocess on a small test file of its own, with the plugin
loaded as tests/conftest.py loads it, and reads the outcomes from a JUnit XML report.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import no_skips

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

SAMPLE = '''
import pytest

def test_runs():
    pass

def test_skips_inside():
    pytest.skip("no widget here")

@pytest.mark.skipif(True, reason="needs a widget server")
def test_skipped_by_mark():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False
'''

SKIPPED_MODULE = '''
import pytest

pytest.importorskip("no_such_module_for_polyphone_tests")

def test_never_collected():
    pass
'''


def run_pytest(tmp_path: Path, files: dict[str, str], no_skips_value: str | None):
    """(exit code, {test name: outcome}, output) of pytest on `files` with the plugin loaded."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pytest.ini").write_text(  # not the project's settings
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    env.pop(no_skips.ENV, None)
    if no_skips_value is not None:
        env[no_skips.ENV] = no_skips_value
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "helpers.no_skips",
         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), f"--junitxml={report}",
         *files],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return proc.returncode, outcomes, proc.stdout + proc.stderr


def test_the_suite_loads_the_plugin_and_build_test_sh_turns_it_on() -> None:
    # Parsed, not imported: under pytest "conftest" may be another directory's module.
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text())
    plugins = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", "") == "pytest_plugins" for t in node.targets))
    assert "helpers.no_skips" in plugins
    test_sh = (ROOT / "build" / "test.sh").read_text()
    assert f"export {no_skips.ENV}=1" in test_sh
    # The one opt-out (a laptop without the test services), never under CI=true:
    assert "POLYPHONE_ALLOW_MISSING" in test_sh and 'CI:-}" != true' in test_sh


@pytest.mark.parametrize("value", ["1", "yes"])
def test_under_no_skips_every_skip_is_a_failure_with_its_reason(tmp_path, value) -> None:
    code, outcomes, out = run_pytest(tmp_path, {"test_sample.py": SAMPLE}, value)
    assert code == 1, out
    # A skip in the test fails it; a skip mark acts at setup, so the setup errors. (JUnit
    # reports the xfail as "skipped".)
    assert outcomes == {"test_runs": "passed", "test_skips_inside": "failure",
                        "test_skipped_by_mark": "error", "test_expected_failure": "skipped"}, out
    assert "skipped: no widget here" in out and "skipped: needs a widget server" in out
    assert "may not skip under build/test.sh" in out
    assert "1 xfailed" in out  # an expected failure is not a skip: left alone


def test_a_module_skipped_at_collection_fails_too(tmp_path) -> None:
    code, _, out = run_pytest(tmp_path, {"test_missing.py": SKIPPED_MODULE}, "1")
    assert code != 0, out
    assert "skipped at collection" in out and "no_such_module_for_polyphone_tests" in out, out


@pytest.mark.parametrize("value", [None, "", "0"])
def test_without_it_skips_stay_skips(tmp_path, value) -> None:
    code, outcomes, out = run_pytest(tmp_path, {"test_sample.py": SAMPLE, "test_missing.py": SKIPPED_MODULE},
                                     value)
    assert code == 0, out
    assert outcomes["test_runs"] == "passed"
    assert outcomes["test_skips_inside"] == outcomes["test_skipped_by_mark"] == "skipped", out
    assert "may not skip" not in out
