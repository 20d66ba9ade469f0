#!/usr/bin/env bash
# Sets up everything Polyphone needs on Debian/Ubuntu (or macOS: no system packages there).
# Safe to run again:
#   1. the Debian packages of build/lib/apt-packages.sh that are missing,
#   2. a virtual environment in .venv (Python 3.11 or newer: aiortc 1.16 needs it),
#   3. the Python packages from this OS's lock file (build/requirements/: OS.txt, OS-build.txt
#      for --build, OS-test.txt for --test; exact versions, hash-checked, written by
#      build/lock.sh), then Polyphone itself, editable, with nothing resolved again.
# When nothing changed it takes about a second: step 3 is skipped while a stamp
# in .venv matches pyproject.toml, the lock files, the package lists and this script.
#
# usage: build/setup.sh [--build] [--test] [--verbose]
#   --build    also what building the frozen app needs (PyInstaller, the Python shared library)
#   --test     also the test-only system packages and Python packages (implies --build)
#   --verbose  show apt's and pip's output (otherwise it goes to build/out/setup.log)
# environment:
#   PYTHON=python3.12   the interpreter for a new .venv (default: python3)
#   POLYPHONE_ALLOW_MISSING=1
#                       with --test, carry on when system packages are missing and cannot be
#                       installed here (not root, no sudo): print them and go on. Without it
#                       that stops set-up with what to install. Ignored when CI=true.
# Linux and macOS; on Windows see the README ("Building the app").
set -euo pipefail

SCRIPT_NAME="setup"
# shellcheck source=build/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=build/lib/apt-packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
cd "$ROOT"

MODE=run
VERBOSE="${POLYPHONE_SETUP_VERBOSE:-0}"
for arg in "$@"; do
  case "$arg" in
    --test) MODE="test" ;;
    --build) [ "$MODE" = test ] || MODE="build" ;;
    -v | --verbose) VERBOSE=1 ;;
    -h | --help) show_help ;;
    *) bad_arg "$arg" ;;
  esac
done

VENV="$ROOT/.venv"
OUT="$ROOT/build/out"
LOG="$OUT/setup.log"
# The lock files for this OS: build/requirements/$LOCK_OS{,-build,-test}.txt.
LOCKS="build/requirements"
case "$(uname -s)" in
  Linux) LOCK_OS=linux ;;
  Darwin) LOCK_OS=macos ;;
  MINGW* | MSYS* | CYGWIN*)
    die "on Windows set up as the README's \"Building the app\" says: a venv, then
  pip install --require-hashes -r $LOCKS/windows-build.txt (or windows-test.txt) and
  pip install --no-deps -e . (.github/workflows/ci.yml does the same)" ;;
  *) die "no lock file for $(uname -s) in $LOCKS/ (Linux and macOS have one)" ;;
esac
START=$(date +%s)
DID_WORK=0
mkdir -p "$OUT"

# One setup at a time: run.sh and test.sh may be started together.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUT/setup.lock"
  flock 9
fi
: >"$LOG"

# --- helpers ------------------------------------------------------------------

# Runs "$@" with its output in $LOG (and on stderr with --verbose).
logged() {
  printf '\n$ %s\n' "$*" >>"$LOG"
  if [ "$VERBOSE" = 1 ]; then
    "$@" 2>&1 | tee -a "$LOG" >&2
    return "${PIPESTATUS[0]}"
  fi
  "$@" >>"$LOG" 2>&1
}

# fail STEP: says what failed, shows the end of the log, stops.
fail() {
  say "FAILED: $1. The last lines of ${LOG#"$ROOT"/}:"
  tail -n 40 "$LOG" | sed 's/^/    /' >&2
  exit 1
}

py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }
py_recent() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

# The first Python >= 3.11 among $PYTHON, python3, python3.N; prints its path.
find_python() {
  local c
  if [ -n "${PYTHON:-}" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "PYTHON=$PYTHON: no such program"
    py_recent "$PYTHON" || die "PYTHON=$PYTHON is Python $(py_version "$PYTHON" || echo '?'); Polyphone needs 3.11 or newer"
    command -v "$PYTHON"
    return 0
  fi
  for c in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$c" >/dev/null 2>&1 && py_recent "$c"; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

# A usable .venv: runs, is recent enough, and its scripts point at this checkout
# (a moved or copied checkout keeps stale paths in them).
venv_ok() {
  [ -x "$VENV/bin/python" ] && [ -f "$VENV/bin/pip" ] &&
    head -n 2 "$VENV/bin/pip" | grep -qF "$VENV/bin/python" &&
    py_recent "$VENV/bin/python"
}

# Prints each entry of "$@" ("pkg" or "pkg|alternative|...") that has no
# alternative installed.
missing_packages() {
  local installed entry alt found
  local -a alts
  # shellcheck disable=SC2046  # one word per package name, on purpose
  installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' \
    $(printf '%s\n' "$@" | tr '|' '\n') 2>/dev/null |
    awk '$2 == "installed" { print $1 }' | tr '\n' ' ' || true) "
  for entry in "$@"; do
    found=0
    IFS='|' read -ra alts <<<"$entry"
    for alt in "${alts[@]}"; do
      case "$installed" in *" $alt "*) found=1 && break ;; esac
    done
    [ "$found" = 1 ] || printf '%s\n' "$entry"
  done
}

# The alternative of ENTRY that apt can install (the first one, failing that).
pick_alternative() {
  local entry=$1 alt candidate
  local -a alts
  IFS='|' read -ra alts <<<"$entry"
  for alt in "${alts[@]}"; do
    candidate=$(apt-cache policy "$alt" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
      echo "$alt"
      return 0
    fi
  done
  echo "${alts[0]}"
}

# POLYPHONE_ALLOW_MISSING=1 (not under CI=true): --test may go on without system packages.
allow_missing() { [ "${POLYPHONE_ALLOW_MISSING:-0}" = 1 ] && [ "${CI:-}" != true ]; }

# cannot_install WHY COMMAND PKG...: the packages are missing and cannot be installed here.
# Says what to run; with --test that stops set-up (a test that needs them could only fail
# or skip, far from the cause) unless allow_missing.
cannot_install() {
  local why=$1 cmd=$2
  shift 2
  say "system packages: MISSING $*"
  if [ "$MODE" = test ] && ! allow_missing; then
    say "ERROR: the tests need these system packages and they cannot be installed here ($why)."
    say "  Install them with:  $cmd $*"
    say "  then run this again. To set up without them (a laptop running part of the suite),"
    if [ "${CI:-}" = true ]; then
      say "  POLYPHONE_ALLOW_MISSING=1 would do, but not under CI=true."
    else
      say "  run it as:  POLYPHONE_ALLOW_MISSING=1 build/setup.sh --test"
    fi
    exit 1
  fi
  say "  ($why) install them with:  $cmd $*"
}

# install_packages ENTRY...: apt-get install, as root or through sudo; if neither
# is possible, cannot_install.
install_packages() {
  local -a sudo=() pkgs=()
  local entry t0
  for entry in "$@"; do pkgs+=("${entry%%|*}"); done
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      cannot_install "not root and no sudo" "apt-get install" "${pkgs[@]}"
      return 0
    fi
    sudo=(sudo)
    if ! [ -t 0 ] && ! sudo -n true 2>/dev/null; then
      cannot_install "sudo needs a password" "sudo apt-get install" "${pkgs[@]}"
      return 0
    fi
  fi
  t0=$(date +%s)
  say "system packages: installing $# (${pkgs[*]}) ..."
  logged "${sudo[@]}" apt-get update -q ||
    say "system packages: warning: 'apt-get update' failed; trying the install anyway"
  pkgs=()
  for entry in "$@"; do pkgs+=("$(pick_alternative "$entry")"); done
  logged "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o DPkg::Lock::Timeout=300 "${pkgs[@]}" ||
    fail "installing system packages (${pkgs[*]})"
  say "system packages: installed in $(elapsed "$t0")"
  DID_WORK=1
}

stamp_key() {
  cat "$ROOT/pyproject.toml" "$ROOT/build/lib/apt-packages.sh" "$ROOT/build/setup.sh" \
    "$ROOT/$LOCKS/$LOCK_OS".txt "$ROOT/$LOCKS/$LOCK_OS"-*.txt \
    "$VENV/pyvenv.cfg" 2>/dev/null | { cat; echo "$ROOT"; } | sha256 | cut -c1-64
}

# --- 1. Python (only when .venv has to be made) -------------------------------

PY=""
if ! venv_ok; then
  PY=$(find_python) || die "Polyphone needs Python 3.11 or newer; python3 here is \
$(py_version python3 || echo 'missing'). Install one (Debian 12: apt-get install python3 \
python3-venv; Ubuntu 24.04 has it; on Ubuntu 22.04: apt-get install python3.11 python3.11-venv) or point PYTHON= at one, then run this again."
fi

# --- 2. system packages -------------------------------------------------------

wanted=("${APT_RUNTIME[@]}")
if [ "$MODE" != run ]; then wanted+=("${APT_BUILD[@]}"); fi
if [ "$MODE" = test ]; then wanted+=("${APT_TEST[@]}"); fi
# The distribution's own Python keeps `venv` (ensurepip) and its shared library (which
# PyInstaller bundles) in packages of their own; a python.org, pyenv or uv Python has both.
base_py="$PY"
if [ -z "$base_py" ]; then
  base_py=$("$VENV/bin/python" -c 'import sys; print(getattr(sys, "_base_executable", ""))' 2>/dev/null || true)
fi
if [ -n "$base_py" ] && command -v dpkg >/dev/null 2>&1 &&
  dpkg -S "$(readlink -f "$base_py")" >/dev/null 2>&1; then
  pyver=$(py_version "$base_py")
  pyver=${pyver%.*}
  if [ -n "$PY" ]; then wanted+=("python$pyver-venv"); fi
  if [ "$MODE" != run ]; then wanted+=("libpython${pyver}t64|libpython$pyver"); fi
fi

if command -v dpkg-query >/dev/null 2>&1; then
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    install_packages "${missing[@]}"
  fi
elif [ "$LOCK_OS" = macos ]; then
  wanted=()  # the macOS wheels carry their own libraries
else
  say "system packages: not Debian/Ubuntu; make sure these (or your system's equivalents) are installed: ${wanted[*]}"
fi

# --- 3. virtual environment ---------------------------------------------------

if [ -n "$PY" ]; then
  t0=$(date +%s)
  rm -rf "$VENV"
  logged "$PY" -m venv "$VENV" || fail "creating .venv with $PY"
  say "virtual environment: created .venv with Python $(py_version "$VENV/bin/python") ($PY) in $(elapsed "$t0")"
  DID_WORK=1
fi

# --- 4. Python packages -------------------------------------------------------

lock="$LOCKS/$LOCK_OS.txt" label="polyphone"
# The tests build the frozen app (tests/frozen), so --test brings PyInstaller too.
case "$MODE" in
  test) lock="$LOCKS/$LOCK_OS-test.txt" label="polyphone[test,build,load]" ;;
  build) lock="$LOCKS/$LOCK_OS-build.txt" label="polyphone[build]" ;;
esac
[ -f "$ROOT/$lock" ] || die "$lock is missing: build/lock.sh writes the lock files"
key=$(stamp_key)
stamp_ok() { [ -f "$VENV/.polyphone-setup-$1" ] && [ "$(cat "$VENV/.polyphone-setup-$1")" = "$key" ]; }
# A stamp covers its own mode and the ones below it: test > build > run.
if stamp_ok test || { [ "$MODE" != test ] && stamp_ok build; } || { [ "$MODE" = run ] && stamp_ok run; }; then
  :
else
  t0=$(date +%s)
  say "python packages: installing $label from $lock ..."
  rm -f "$VENV/.polyphone-setup-run" "$VENV/.polyphone-setup-build" "$VENV/.polyphone-setup-test"
  pip=(env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$VENV/bin/python" -m pip)
  # Exactly the locked versions, each file checked against its hash; then Polyphone itself
  # without resolving anything again.
  logged "${pip[@]}" install --require-hashes -r "$lock" ||
    fail "pip install --require-hashes -r $lock"
  logged "${pip[@]}" install --no-deps -e . || fail "pip install --no-deps -e ."
  # A dependency pyproject.toml asks for that the lock lacks (or pins outside its range).
  stale=$("${pip[@]}" check 2>&1 | grep -i '^polyphone ' || true)
  if [ -n "$stale" ]; then
    say "FAILED: $lock does not match pyproject.toml:"
    printf '%s\n' "$stale" | sed 's/^/    /' >&2
    die "refresh the lock files with build/lock.sh (and commit them), then run this again"
  fi
  echo "$key" >"$VENV/.polyphone-setup-$MODE"
  say "python packages: installed in $(elapsed "$t0")"
  DID_WORK=1
fi

if [ "$DID_WORK" = 1 ]; then
  say "ready in $(elapsed "$START")"
else
  say "up to date (${#wanted[@]} system packages, .venv Python $(py_version "$VENV/bin/python"), $label)"
fi
