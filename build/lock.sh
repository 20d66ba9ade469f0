#!/usr/bin/env bash
# Writes the hashed lock files in build/requirements/ from pyproject.toml, one set per OS:
#   OS.txt        the app's runtime dependencies only (what a frozen build or pipx install runs)
#   OS-build.txt  those plus the `build` extra (PyInstaller): build/setup.sh --build, package.sh
#   OS-test.txt   those plus the `test` and `load` extras: build/setup.sh --test, CI
# for OS = linux (x86-64, glibc 2.36: Debian 12), macos (Apple silicon, macOS 14) and windows
# (x86-64). Every file pins exact versions with the hashes of all their files (wheels for every
# architecture and Python version too), and the larger sets keep the smaller ones' pins.
# Run it after changing dependencies in pyproject.toml and commit what it writes; pins already
# in the files are kept unless asked to move. It then checks that every file installs from
# wheels alone on each Python it supports (3.11 to 3.13).
#
# usage: build/lock.sh [--upgrade] [--upgrade-package NAME]...
#   --upgrade               move every pin to the newest version pyproject.toml allows
#   --upgrade-package NAME  move only NAME (and what it needs); may be repeated
# environment:
#   UV=/path/to/uv     the uv to use (default: uv $UV_VERSION, installed by this script into
#                      build/out/lock-tools with pip)
#   UV_DEFAULT_INDEX   the package index to resolve against (uv's default: PyPI)
set -euo pipefail

SCRIPT_NAME="lock"
# shellcheck source=build/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

UPGRADE=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --upgrade) UPGRADE+=(--upgrade) ;;
    --upgrade-package) UPGRADE+=(--upgrade-package "${2:?--upgrade-package needs a name}"); shift ;;
    -h | --help) show_help ;;
    *) bad_arg "$1" ;;
  esac
  shift
done

# The uv that wrote the files (its output format is part of them).
UV_VERSION=0.13.9
# The lowest Python the locked versions must support: pyproject.toml's requires-python (aiortc 1.16
# needs 3.11).
LOCK_PYTHON=3.11
CHECK_PYTHONS=(3.11 3.12 3.13)
# OS name -> uv's target platform: the oldest system the wheels support there. macOS: PyAV's
# Apple-silicon wheels need macOS 14 (on 12 and 13 pip would build PyAV from source).
OSES=(linux macos windows)
MACOS_VERSION=14.0
platform_of() {
  case "$1" in
    linux) echo x86_64-manylinux_2_36 ;;
    macos) echo aarch64-apple-darwin ;;
    windows) echo x86_64-pc-windows-msvc ;;
  esac
}

OUT="$ROOT/build/out"
DIR="build/requirements"
mkdir -p "$DIR" "$OUT"

if [ -z "${UV:-}" ]; then
  tools="$OUT/lock-tools"
  UV="$tools/bin/uv"
  if ! [ -x "$UV" ] || [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    say "installing uv $UV_VERSION into ${tools#"$ROOT"/} ..."
    rm -rf "$tools"
    python3 -m venv "$tools" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$tools/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" ||
      die "pip install uv==$UV_VERSION failed"
  fi
fi
# The OS's trust store, as pip and Polyphone use (a company proxy's CA is there).
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

compile() {  # compile OS OUTPUT [uv pip compile args...]
  local os=$1 out=$2
  shift 2
  MACOSX_DEPLOYMENT_TARGET=$MACOS_VERSION "$UV" pip compile pyproject.toml --quiet --generate-hashes "${UPGRADE[@]+"${UPGRADE[@]}"}" \
    --python-version "$LOCK_PYTHON" --python-platform "$(platform_of "$os")" \
    --custom-compile-command "build/lock.sh" -o "$out" "$@" ||
    die "resolving $out failed"
}

for os in "${OSES[@]}"; do
  compile "$os" "$DIR/$os.txt"
  compile "$os" "$DIR/$os-build.txt" --extra build -c "$DIR/$os.txt"
  compile "$os" "$DIR/$os-test.txt" --extra build --extra test --extra load -c "$DIR/$os-build.txt"
  say "locked $os: $(grep -c '^[A-Za-z0-9]' "$DIR/$os.txt") packages (app), $(grep -c '^[A-Za-z0-9]' "$DIR/$os-test.txt") with the build, test and load extras"
done

# The files pin for $LOCK_PYTHON without environment markers: each must also install, from
# wheels only, on the newer Pythons (a dependency that only they need would be missing).
check_dir=$(mktemp -d)
trap 'rm -rf "$check_dir"' EXIT
for os in "${OSES[@]}"; do
  for file in "$DIR/$os.txt" "$DIR/$os-build.txt" "$DIR/$os-test.txt"; do
    for py in "${CHECK_PYTHONS[@]}"; do
      MACOSX_DEPLOYMENT_TARGET=$MACOS_VERSION "$UV" pip install --quiet --dry-run --only-binary :all: --require-hashes -r "$file" \
        --python-version "$py" --python-platform "$(platform_of "$os")" --target "$check_dir" \
        >"$OUT/lock-check.log" 2>&1 ||
        { cat "$OUT/lock-check.log" >&2; die "$file does not install on Python $py"; }
    done
  done
done
say "every file installs on Python ${CHECK_PYTHONS[*]}; commit build/requirements/"
