# shellcheck shell=bash disable=SC2034
# Shared helpers for build/*.sh. Source it; don't run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0" .sh)}"

# Progress and errors go to stderr, so `build/run.sh ... | tool` sees only the app.
say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# The calling script's header comment (line 2 up to `set -euo`) as its --help; then exit.
show_help() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0; }
bad_arg() { die "unknown argument '$1' (try --help)"; }

# SHA-256 of stdin as "HEX  -" (macOS has shasum, not sha256sum).
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi
}

# Seconds since $1 (an epoch second), e.g. "12 s".
elapsed() { echo "$(( $(date +%s) - $1 )) s"; }
