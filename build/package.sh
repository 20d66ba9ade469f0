#!/usr/bin/env bash
# Builds the frozen app (PyInstaller, one folder) for the OS this runs on:
#   Linux: dist/Polyphone/polyphone    macOS: dist/Polyphone.app    Windows: dist/Polyphone/
# Sets up first (build/setup.sh --build: the app's and PyInstaller's locked versions from
# build/requirements/OS-build.txt in .venv, the Python shared library).
# The build's own files go to build/out/pyinstaller; its log to build/out/package.log.
#
# usage: build/package.sh [--if-changed] [--clean] [--verbose]
#   --if-changed  do nothing when dist/ already holds a build of these very sources
#   --clean       drop PyInstaller's cache first (slower; after upgrading a library)
#   --verbose     show PyInstaller's output (otherwise it goes to the log)
# Linux and macOS. On Windows run the same spec with Python 3.11+ (see README, "Building the
# app"): `pip install --require-hashes -r build/requirements/windows-build.txt`,
# `pip install --no-deps -e .`, `pyinstaller --noconfirm build/polyphone.spec`.
set -euo pipefail

SCRIPT_NAME="package"
# shellcheck source=build/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

IF_CHANGED=0 CLEAN=() VERBOSE=0
for arg in "$@"; do
  case "$arg" in
    --if-changed) IF_CHANGED=1 ;;
    --clean) CLEAN=(--clean) ;;
    -v | --verbose) VERBOSE=1 ;;
    -h | --help) show_help ;;
    *) bad_arg "$arg" ;;
  esac
done

VENV="$ROOT/.venv"
OUT="$ROOT/build/out"
LOG="$OUT/package.log"
DIST="$ROOT/dist"
APP="$DIST/Polyphone"
START=$(date +%s)

"$ROOT/build/setup.sh" --build
mkdir -p "$OUT"
if [ "$(uname -s)" = Linux ]; then
  for tool in objdump strip; do  # PyInstaller reads binaries with objdump; the spec strips libpython
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing: sudo apt-get install binutils"
  done
fi

# What the build is made from: the sources, the spec and the installed packages.
build_key() {
  {
    git ls-files -z app resources build/polyphone.spec build/pyinstaller pyproject.toml 2>/dev/null |
      xargs -0 cat 2>/dev/null
    "$VENV/bin/python" -m pip freeze --all 2>/dev/null
  } | sha256 | cut -c1-64
}

key=$(build_key)
if [ "$IF_CHANGED" = 1 ] && [ -f "$APP/.build-key" ] && [ "$(cat "$APP/.build-key")" = "$key" ]; then
  say "up to date: $APP"
  exit 0
fi

say "building with PyInstaller $("$VENV/bin/python" -c 'import PyInstaller; print(PyInstaller.__version__)') ..."
cmd=("$VENV/bin/python" -m PyInstaller --noconfirm ${CLEAN[@]+"${CLEAN[@]}"} --log-level WARN
  --distpath "$DIST" --workpath "$OUT/pyinstaller" build/polyphone.spec)
if [ "$VERBOSE" = 1 ]; then
  "${cmd[@]}" 2>&1 | tee "$LOG" >&2
  rc=${PIPESTATUS[0]}
else
  set +e
  "${cmd[@]}" >"$LOG" 2>&1
  rc=$?
  set -e
fi
if [ "$rc" != 0 ]; then
  tail -n 40 "$LOG" | sed 's/^/    /' >&2
  die "PyInstaller failed (exit $rc); the whole log is ${LOG#"$ROOT"/}"
fi
echo "$key" >"$APP/.build-key"
say "built $(du -sh "$APP" | cut -f1) in $(elapsed "$START"): ${APP#"$ROOT"/}/"
if [ "$(uname -s)" = Darwin ]; then
  say "check it: dist/Polyphone.app/Contents/MacOS/Polyphone --self-test"
else
  say "check it: QT_QPA_PLATFORM=offscreen ${APP#"$ROOT"/}/polyphone --self-test"
fi
