#!/usr/bin/env bash
# tests/run.sh - the test command (README): `sudo tests/run.sh`.
#
# On a fresh Debian 12, as root: installs what is missing with apt-get,
# builds into build/ with warnings as errors, runs the unit tests
# (meson test) and the mounted tests (pytest, as root: they mount FUSE).
# The last line printed is pytest's summary line of that mounted run; the
# exit status is non-zero when any stage failed.
#
# Optional stages, run before the main mounted tests (so its summary stays
# last), each in a build directory of its own:
#
#   CPFS_SANITIZE=1  build-asan: ASan+UBSan (gcc), unit + mounted tests
#   CPFS_TSAN=1      build-tsan: ThreadSanitizer (clang), unit tests and the
#                    mounted tests matching -k "concurr or parallel or stress"
#   CPFS_FUZZ=SECS   tests/fuzz/run.sh SECS: each libFuzzer target SECS s
#
# Other knobs:
#   CPFS_PYTEST_ARGS           extra pytest arguments for every mounted run
#   CPFS_SANITIZE_PYTEST_ARGS  extra pytest arguments for the ASan/TSan runs
#                              (e.g. -k "not rss" to skip memory-bound
#                              checks that the shadow memory would break)
#   CPFS_SKIP_DEPS=1           do not look at packages at all
#
# How the sanitizer runs reach the daemon: the fixtures
# (tests/integration/conftest.py) start the binary named by CPFS_BIN in
# the foreground as a child of pytest, so the sanitizer options below
# (ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS) are exported to pytest and
# inherited by every cpfs it starts.  Reports go to the daemon's stderr,
# which the fixtures capture into the mount's log and print with a failing
# test.  abort_on_error/halt_on_error make the first report end the
# daemon, so the test that triggered it fails on the spot (ENOTCONN); a
# leak found at exit ends cpfs with SIGABRT (LeakSanitizer honours
# abort_on_error; without it, status 23) and a race found by TSan without
# halting gives status 66, and the fixtures' teardown, which wants exit
# status 0 after unmount, turns either into a failure.  CPFS_SANITIZER is
# "address" or "thread" in those runs, so a test whose figure the
# sanitizer distorts (peak RSS, wall time) can relax or skip itself.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

packages=(libfuse3-dev fuse3 libcurl4-openssl-dev libcjson-dev
	libcmocka-dev meson ninja-build pkg-config python3-pytest attr rsync
	clang libclang-rt-14-dev restic borgbackup)

say() { echo "run.sh: $*"; }
failures=()
fail() {
	failures+=("$1")
	say "FAILED: $1"
}

# --- (a) dependencies ---------------------------------------------------
if [ "${CPFS_SKIP_DEPS:-0}" != 1 ] &&
	! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		say "missing packages and not root: run it as 'sudo tests/run.sh'" >&2
		exit 1
	fi
	say "installing packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || { say "apt-get update failed" >&2; exit 1; }
	apt-get install -y -q "${packages[@]}" ||
		{ say "apt-get install failed" >&2; exit 1; }
fi

# setup DIR [meson options...]: configure DIR, reusing it when it exists
# (a wipe when the reconfigure is refused, e.g. a different meson).
setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null ||
			meson setup --wipe "$dir" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$@"
	fi
}

# mounted DIR [pytest args...]: the mounted tests against DIR's cpfs.
mounted() {
	local dir=$1
	shift
	CPFS_BIN="$root/$dir/src/cpfs" /usr/bin/python3 -m pytest \
		tests/integration -q -p no:cacheprovider \
		${CPFS_PYTEST_ARGS:-} "$@"
}

# --- (b) the main build -------------------------------------------------
say "building build/ (-Dwerror=true)"
if ! setup build -Dwerror=true || ! meson compile -C build; then
	say "build failed; nothing tested" >&2
	exit 1
fi

# --- (c) unit tests -----------------------------------------------------
say "unit tests (build/)"
meson test -C build --print-errorlogs || fail "unit tests"

# --- optional: ASan + UBSan ---------------------------------------------
if [ "${CPFS_SANITIZE:-0}" = 1 ]; then
	say "building build-asan/ (address,undefined)"
	# b_lundef=false: the sanitizer runtimes resolve symbols at run time.
	if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-omit-frame-pointer &&
		meson compile -C build-asan; then
		(
			# detect_leaks: a leak at exit fails the run (status
			# 23); abort_on_error: any error kills the daemon at
			# once.  UBSan stops at the first report too.
			export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
			export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
			export CPFS_SANITIZER=address
			say "unit tests (build-asan/)"
			meson test -C build-asan --print-errorlogs ||
				exit 1
		) || fail "unit tests (asan)"
		(
			export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
			export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
			export CPFS_SANITIZER=address
			say "mounted tests (build-asan/)"
			mounted build-asan ${CPFS_SANITIZE_PYTEST_ARGS:-}
		) || fail "mounted tests (asan)"
	else
		fail "build (asan)"
	fi
fi

# --- optional: ThreadSanitizer ------------------------------------------
if [ "${CPFS_TSAN:-0}" = 1 ]; then
	say "building build-tsan/ (thread, clang)"
	# TSan of clang 14 cannot map its shadow when the kernel randomizes
	# mmap with more than 28 bits (newer kernels do): run without ASLR.
	# The personality is inherited by pytest and the daemons it starts.
	norand=()
	if setarch "$(uname -m)" -R true 2>/dev/null; then
		norand=(setarch "$(uname -m)" -R)
	fi
	if CC=clang setup build-tsan -Db_sanitize=thread -Db_lundef=false \
		-Dc_args=-fno-omit-frame-pointer &&
		meson compile -C build-tsan; then
		(
			# halt_on_error: the first race kills the daemon, so
			# the test that saw it fails; without it a race only
			# shows as exit status 66 at unmount.
			export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4
			export CPFS_SANITIZER=thread
			say "unit tests (build-tsan/)"
			"${norand[@]}" meson test -C build-tsan --print-errorlogs ||
				exit 1
		) || fail "unit tests (tsan)"
		(
			export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4
			export CPFS_SANITIZER=thread
			say "mounted concurrency tests (build-tsan/)"
			CPFS_BIN="$root/build-tsan/src/cpfs" "${norand[@]}" \
				/usr/bin/python3 -m pytest tests/integration -q \
				-p no:cacheprovider ${CPFS_PYTEST_ARGS:-} \
				${CPFS_SANITIZE_PYTEST_ARGS:-} \
				-k "concurr or parallel or stress"
			rc=$?
			# 5: no test matched the expression - not a failure.
			[ $rc = 0 ] || [ $rc = 5 ]
		) || fail "mounted tests (tsan)"
	else
		fail "build (tsan)"
	fi
fi

# --- optional: fuzzing --------------------------------------------------
if [ -n "${CPFS_FUZZ:-}" ] && [ "${CPFS_FUZZ}" != 0 ]; then
	say "fuzzing, ${CPFS_FUZZ}s per target"
	bash tests/fuzz/run.sh "$CPFS_FUZZ" || fail "fuzz"
fi

# --- (d) the mounted tests; pytest's summary is the last line -----------
if [ ${#failures[@]} != 0 ]; then
	say "failed so far: ${failures[*]}"
fi
say "mounted tests (build/)"
mounted build
rc=$?
[ ${#failures[@]} = 0 ] || exit 1
exit $rc
