#!/usr/bin/env bash
# Proves the README's promise the way a new user meets it: makes a minimal Debian root
# (debootstrap --variant=minbase, plus only python3, git and ca-certificates), clones this
# repository into it (with ../shared beside it, as CI has it), runs the README's two commands
# inside it with a clean environment, and reports both exit codes and the test summary.
# Needs root and debootstrap (apt-get install debootstrap); takes as long as the suite itself.
#
# usage: build/fresh-debian.sh [--suite bookworm] [--keep] [--repo DIR] [--rev REV] [--run-only]
#   --suite S    the Debian release to make (default bookworm, Debian 12)
#   --keep       keep the root afterwards (in build/out/fresh-S) to look inside it
#   --repo DIR   the repository to clone (default: this checkout); commit first, a clone
#                takes only what is committed
#   --rev REV    the revision to check out (default: the repository's HEAD)
#   --run-only   run only the first command (set-up and a demo call), not the tests
# Output: build/out/fresh-S/{run,test}.log and a summary on stdout; exits non-zero when
# either command failed or the tests skipped anything.
set -euo pipefail

SCRIPT_NAME="fresh-debian"
# shellcheck source=build/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SUITE=bookworm KEEP=0 REPO="$ROOT" REV=HEAD RUN_ONLY=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --suite) SUITE=${2:?--suite needs a name}; shift ;;
    --keep) KEEP=1 ;;
    --repo) REPO=${2:?--repo needs a folder}; shift ;;
    --rev) REV=${2:?--rev needs a revision}; shift ;;
    --run-only) RUN_ONLY=1 ;;
    -h | --help) show_help ;;
    *) bad_arg "$1" ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "this needs root (debootstrap, chroot, mounts)"
REV=$(git -C "$REPO" rev-parse --verify "$REV^{commit}") || die "no such revision: $REV"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: apt-get install debootstrap"

OUT="$ROOT/build/out/fresh-$SUITE"
FS="$OUT/root"
SHARED="$(cd "$REPO/.." && pwd)/shared"
START=$(date +%s)

# The mirror this machine's apt uses (a fresh install would use its own).
mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +[a-z]+://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE '[a-z]+://[^ ]+' | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

processes_inside() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$FS" ] && echo "${p#/proc/}"
  done
  return 0
}

unmount_all() {
  local pids
  pids=$(processes_inside)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086  # one word per pid
    kill -TERM $pids 2>/dev/null || true
    sleep 2
    pids=$(processes_inside)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  fi
  # Deepest first: the recursive /dev bind, network namespaces under /run.
  { grep -oE " $FS[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

cleanup() {
  unmount_all
  if [ "$KEEP" = 0 ] && [ -d "$FS" ]; then rm -rf --one-file-system "$FS"; fi
}
trap cleanup EXIT

# --- the root --------------------------------------------------------------------------------
unmount_all
rm -rf --one-file-system "$FS"
mkdir -p "$FS"
say "debootstrap --variant=minbase $SUITE from $(mirror) ..."
debootstrap --variant=minbase "$SUITE" "$FS" "$(mirror)" >"$OUT/debootstrap.log" 2>&1 ||
  { tail -n 20 "$OUT/debootstrap.log" >&2; die "debootstrap failed (log: $OUT/debootstrap.log)"; }

# A fresh install has the release's updates and security suites too.
cp /etc/apt/sources.list.d/*.sources "$FS/etc/apt/sources.list.d/" 2>/dev/null || true
if ls "$FS"/etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then : >"$FS/etc/apt/sources.list"; fi
# How this machine reaches the registries (not part of a user's machine, and not of the
# project): its extra CA certificates, apt's and pip's global settings.
cp -r /usr/local/share/ca-certificates/. "$FS/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/apt/apt.conf.d/99artifact-registry "$FS/etc/apt/apt.conf.d/" 2>/dev/null || true
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$FS/etc/pip.conf"
cp /etc/resolv.conf "$FS/etc/resolv.conf" 2>/dev/null || true

# The root is a mount point of its own, as on a real machine: `ip netns` remounts / (rslave).
mount --bind "$FS" "$FS"
mount -t proc proc "$FS/proc"
mount -t sysfs sys "$FS/sys"
mount --rbind /dev "$FS/dev"
mount --make-rslave "$FS/dev"
mount -t tmpfs tmpfs "$FS/run"
mount -t tmpfs tmpfs "$FS/tmp"

inside() {
  env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb chroot "$FS" /bin/bash -c "$1"
}

say "installing python3, git, ca-certificates (a minimal install plus those) ..."
inside "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  --no-install-recommends python3 git ca-certificates && update-ca-certificates" \
  >"$OUT/base.log" 2>&1 || { tail -n 20 "$OUT/base.log" >&2; die "the base packages failed"; }

# --- the clone -------------------------------------------------------------------------------
git clone -q --no-hardlinks "$REPO" "$FS/root/work/polyphone"
git -C "$FS/root/work/polyphone" checkout -q "$REV"
if [ -d "$SHARED" ]; then cp -r "$SHARED" "$FS/root/work/shared"; fi
say "cloned $(git -C "$FS/root/work/polyphone" log -1 --format='%h %s' | cut -c1-70)"
say "root ready in $(elapsed "$START")"

# --- the README's two commands ---------------------------------------------------------------
t0=$(date +%s)
set +e
inside "cd /root/work/polyphone && ./build/run.sh call --demo" >"$OUT/run.log" 2>&1
run_rc=$?
run_s=$(elapsed "$t0")
test_rc=-
test_s=-
if [ "$RUN_ONLY" = 0 ]; then
  t0=$(date +%s)
  inside "cd /root/work/polyphone && CI=true ./build/test.sh" >"$OUT/test.log" 2>&1
  test_rc=$?
  test_s=$(elapsed "$t0")
fi
set -e

# --- the report ------------------------------------------------------------------------------
summary() { grep -E '^(=+ )?[0-9]+ (passed|failed|error)|(passed|failed|skipped|error)[^a-z]*in [0-9.]+s' "$1" || true; }
echo "fresh $SUITE (debootstrap minbase + python3 git ca-certificates), $(git -C "$REPO" rev-parse --short "$REV")"
echo "  ./build/run.sh call --demo  exit $run_rc  ($run_s)"
if [ "$RUN_ONLY" = 0 ]; then
  echo "  ./build/test.sh             exit $test_rc  ($test_s)"
  summary "$OUT/test.log" | sed 's/^/    /'
  grep -E '^(SKIPPED|FAILED|ERROR) ' "$OUT/test.log" | sed 's/^/    /' || true
fi
echo "  logs: ${OUT#"$ROOT"/}/{run,test}.log"
skipped=0
if [ "$RUN_ONLY" = 0 ] && grep -qE '[0-9]+ skipped' "$OUT/test.log"; then skipped=1; fi
if [ "$run_rc" != 0 ] || { [ "$RUN_ONLY" = 0 ] && [ "$test_rc" != 0 ]; } || [ "$skipped" = 1 ]; then
  exit 1
fi
