#!/bin/sh
# tests/try.sh - build cpfs and mount it.
#
#   tests/try.sh [--batch] [MOUNTPOINT] [cpfs options...]
#
# As root (or with sudo) the first time: installs the build dependencies
# (apt-get; the C toolchain, meson, libfuse3, libcurl and cJSON headers,
# fuse3 and python3 - not the test packages), builds into build/ with
# meson and ninja, then:
#   - with CHECKOUTPAGE_API_KEY set: runs cpfs in the foreground against
#     the real API (https://api.checkoutpage.com, or $CPFS_API_URL) on
#     MOUNTPOINT, passing the remaining arguments through
#     (e.g. -o names); discovery lists the whole account;
#   - without it: starts the local stand-in (tests/standin/standin.py
#     --sample: a small store with pages, an event, products, private
#     files and images), mounts cpfs on MOUNTPOINT with no manifest,
#     waits for discovery to list the store, shows its files by id and by
#     page and reads some, and keeps the mount up until Enter or Ctrl-C.
# MOUNTPOINT defaults to /tmp/cpfs-demo.
#
# --batch (or CPFS_TRY_BATCH=1): a self-test that needs no terminal.
# Always the local stand-in (CHECKOUTPAGE_API_KEY is ignored): mounts,
# lists the root, reads every file in it (sha256sum), lists by-page/,
# unmounts, and exits 0 when all of that worked and cpfs exited 0.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MNT=/tmp/cpfs-demo
BATCH=${CPFS_TRY_BATCH:-0}
if [ "${1:-}" = --batch ]; then
	BATCH=1
	shift
fi
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	MNT=$1
	shift
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

say() { printf '%s\n' "try.sh: $*" >&2; }

# --- dependencies -------------------------------------------------------
# What the build needs and the demo runs; the test packages (cmocka,
# pytest...) are tests/run.sh's business.
PKGS="gcc libc6-dev pkg-config meson ninja-build libfuse3-dev libcurl4-openssl-dev libcjson-dev fuse3 python3"
missing=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		say "missing packages:$missing - run me as root (or with sudo)"
		exit 1
	fi
	say "installing:$missing"
	apt-get update
	# shellcheck disable=SC2086 # a list of words on purpose
	DEBIAN_FRONTEND=noninteractive apt-get install -y $PKGS
fi

# --- build --------------------------------------------------------------
cd "$ROOT"
if [ ! -f build/build.ninja ]; then
	meson setup build
fi
ninja -C build
CPFS="$ROOT/build/src/cpfs"

mkdir -p "$MNT"
if mountpoint -q "$MNT"; then
	say "$MNT is already a mount point; unmount it first (fusermount3 -u $MNT)"
	exit 1
fi

# --- the real API -------------------------------------------------------
if [ "$BATCH" = 1 ]; then
	unset CHECKOUTPAGE_API_KEY
elif [ -n "${CHECKOUTPAGE_API_KEY:-}" ]; then
	say "mounting ${CPFS_API_URL:-https://api.checkoutpage.com} on $MNT (Ctrl-C to unmount)"
	exec "$CPFS" -f "$@" "${CPFS_API_URL:-https://api.checkoutpage.com}" "$MNT"
fi

# --- the local stand-in demo -------------------------------------------
WORK=$(mktemp -d /tmp/cpfs-try.XXXXXX)
KEY="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
STANDIN_PID=""
CPFS_PID=""

cleanup() {
	trap - EXIT INT TERM HUP
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	fi
	if [ -n "$CPFS_PID" ]; then
		# cpfs exits by itself once unmounted; give it a moment
		i=0
		while kill -0 "$CPFS_PID" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill "$CPFS_PID" 2>/dev/null || true
		wait "$CPFS_PID" 2>/dev/null || true
	fi
	if [ -n "$STANDIN_PID" ]; then
		kill "$STANDIN_PID" 2>/dev/null || true
		wait "$STANDIN_PID" 2>/dev/null || true
	fi
	if [ -n "${READER_PID:-}" ]; then kill "$READER_PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
	say "unmounted $MNT, stand-in stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

say "no CHECKOUTPAGE_API_KEY: using the local stand-in with a sample store"
"$PY" "$ROOT/tests/standin/standin.py" --sample --key "$KEY" \
	--port-file "$WORK/ports" \
	>"$WORK/standin.out" 2>"$WORK/standin.log" &
STANDIN_PID=$!
i=0
while [ ! -s "$WORK/ports" ]; do
	if ! kill -0 "$STANDIN_PID" 2>/dev/null || [ $i -gt 100 ]; then
		say "the stand-in did not start:"
		cat "$WORK/standin.log" >&2
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done
read -r API_PORT DATA_PORT IMAGE_PORT <"$WORK/ports"
API_URL="http://127.0.0.1:$API_PORT"
say "stand-in API on $API_URL, data host on port $DATA_PORT, images on port $IMAGE_PORT"

# No manifest: discovery walks the sample store's pages, event and
# products and lists every file and image it finds.
CHECKOUTPAGE_API_KEY="$KEY" "$CPFS" -f -o "names,cache_dir=$WORK/cache" \
	"$@" "$API_URL" "$MNT" 2>"$WORK/cpfs.log" &
CPFS_PID=$!
i=0
until mountpoint -q "$MNT"; do
	if ! kill -0 "$CPFS_PID" 2>/dev/null || [ $i -gt 100 ]; then
		say "cpfs did not mount; its log:"
		cat "$WORK/cpfs.log" >&2
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done

# The mount is up at once; the walk runs beside it.  Wait (at most 20 s)
# until it has completed once, from the live counters on the root.
walks() {
	"$PY" -c 'import os, sys
s = os.getxattr(sys.argv[1], "user.cpfs.stats").decode()
print(dict(l.split("=") for l in s.split())["discovery_walks"])' "$MNT" 2>/dev/null || echo 0
}
i=0
while [ "$(walks)" = 0 ] && [ $i -lt 200 ]; do
	sleep 0.1
	i=$((i + 1))
done

if [ "$BATCH" = 1 ]; then
	echo "\$ ls -l $MNT"
	ls -l "$MNT"
	echo "\$ sha256sum $MNT/*"
	n=0
	for f in "$MNT"/*; do
		[ -f "$f" ] || continue
		sha256sum "$f"
		n=$((n + 1))
	done
	if [ $n = 0 ]; then
		say "FAILED: no files listed in $MNT"
		exit 1
	fi
	echo "\$ ls $MNT/by-page"
	ls "$MNT/by-page"
	if [ -z "$(ls "$MNT/by-page")" ]; then
		say "FAILED: by-page/ is empty"
		exit 1
	fi
	fusermount3 -u "$MNT"
	rc=0
	wait "$CPFS_PID" || rc=$?
	CPFS_PID=""
	if [ $rc != 0 ]; then
		say "FAILED: cpfs exited with status $rc after unmounting; its log:"
		cat "$WORK/cpfs.log" >&2
		exit 1
	fi
	say "batch OK: mounted, listed and read $n files, unmounted (cpfs exit 0)"
	exit 0
fi

DL="$MNT/by-page/Digital download"
echo
echo "\$ ls -l $MNT          # every file of the store, found by discovery"
ls -l "$MNT"
echo
echo "\$ ls $MNT/by-page"
ls "$MNT/by-page"
echo
echo "\$ ls -l '$DL'"
ls -l "$DL"
echo
echo "\$ cat '$DL/README.txt'"
cat "$DL/README.txt"
echo
echo "\$ head -3 '$DL/orders.csv'"
head -3 "$DL/orders.csv"
echo
for f in "$MNT/by-page/Summer sale"/*; do
	echo "\$ head -c 8 '$f' | od -c      # an image, read from its public URL"
	head -c 8 "$f" | od -c | head -1
	break
done
echo
say "cpfs stays mounted on $MNT; try it from another shell."
say "press Enter or Ctrl-C to unmount and stop."
# Wait for Enter in a child and `wait` for it: unlike a plain `read`,
# `wait` returns as soon as a trapped signal (Ctrl-C) arrives.  With stdin
# not a terminal (e.g. in CI) the child sees end-of-file and we go on.
# stdin is passed through fd 3: background jobs get /dev/null otherwise.
exec 3<&0
sh -c 'read -r _ <&3' 3<&3 &
READER_PID=$!
wait "$READER_PID" || true
