#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets (if needed) and
# fuzz each for SECONDS (default 30), starting from a copy of its seed
# corpus in tests/fuzz/corpus/<target>/.  Fails when a target crashes,
# leaks, hangs, breaks a contract check or could not be built; ends with
# one table of executions per target.
#
# Environment:
#   CPFS_FUZZ_BUILD  build directory (default: build-fuzz at the top)
#   CPFS_FUZZ_ARGS   extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Crashing inputs are kept in $CPFS_FUZZ_BUILD/fuzz-artifacts/; replay one
# with   build-fuzz/tests/fuzz/fuzz_http build-fuzz/fuzz-artifacts/FILE
# The grown corpora stay in $CPFS_FUZZ_BUILD/fuzz-work/ until the next run
# (copy the interesting ones into tests/fuzz/corpus/ by hand).
set -uo pipefail

secs=${1:-30}
case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${CPFS_FUZZ_BUILD:-$root/build-fuzz}
targets=(fuzz_api_json fuzz_http fuzz_manifest fuzz_opts fuzz_walk fuzz_listing)

# Configure with clang and -Dfuzz=true, unless a fuzz build is there.
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$root" -Dfuzz=true || exit 1
elif ! grep -q 'tests/fuzz/fuzz_http' "$build/build.ninja"; then
	CC=clang meson setup --wipe "$build" "$root" -Dfuzz=true || exit 1
fi

# Build only the fuzz targets; -k 0 builds every target that can be
# built, so one module that does not compile does not hide the others.
build_ok=1
ninja -C "$build" -k 0 "${targets[@]/#/tests/fuzz/}" >"$build/fuzz-build.log" 2>&1 ||
	build_ok=0
if [ $build_ok = 0 ]; then
	echo "fuzz: build failed (last lines of $build/fuzz-build.log):" >&2
	grep -E 'error|FAILED' "$build/fuzz-build.log" | tail -n 30 >&2
fi

work=$build/fuzz-work
artifacts=$build/fuzz-artifacts
rm -rf "$work"
mkdir -p "$work" "$artifacts"

# Sanitizer settings for the targets: leaks count, UB stops the run.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

stat_of() { # stat_of LOG NAME -> value of "stat::NAME: value", or "-"
	local v
	v=$(sed -n "s/^stat::$2: *\([0-9]*\).*/\1/p" "$1" | tail -n 1)
	echo "${v:--}"
}

failed=0
rows=()
for t in "${targets[@]}"; do
	exe=$build/tests/fuzz/$t
	if [ ! -x "$exe" ]; then
		rows+=("$(printf '%-15s %-10s %12s %9s %7s %7s' "$t" 'NOT BUILT' - - - -)")
		failed=1
		continue
	fi
	mkdir -p "$work/$t" "$work/tmp"
	cp -a "$here/corpus/$t/." "$work/$t/"
	log=$work/$t.log
	echo "fuzz: $t for ${secs}s" >&2
	# cwd is the scratch directory: options that name relative paths
	# stay there.  stdin is /dev/null (api_key_file=/dev/stdin is a
	# valid input), the targets' stdout (cpfs -h) is closed.  A target
	# that wedges despite -timeout is ended with a margin.
	(
		cd "$work" && export TMPDIR=$work/tmp &&
			timeout -k 10 $((secs + 300)) "$exe" \
				-max_total_time="$secs" -max_len=65536 \
				-timeout=10 -rss_limit_mb=2048 -close_fd_mask=1 \
				-print_final_stats=1 \
				-artifact_prefix="$artifacts/$t-" \
				${CPFS_FUZZ_ARGS:-} "$work/$t" </dev/null >"$log" 2>&1
	)
	rc=$?
	if [ $rc = 0 ]; then
		result=ok
	else
		result="FAIL($rc)"
		failed=1
		echo "fuzz: $t failed; last lines of $log:" >&2
		tail -n 60 "$log" >&2
	fi
	execs=$(stat_of "$log" number_of_executed_units)
	rate=$(stat_of "$log" average_exec_per_sec)
	added=$(stat_of "$log" new_units_added)
	rss=$(stat_of "$log" peak_rss_mb)
	rows+=("$(printf '%-15s %-10s %12s %9s %7s %7s' "$t" "$result" "$execs" "$rate" "$added" "$rss")")
done

echo
echo "fuzz summary (${secs}s per target, max_len 65536)"
printf '%-15s %-10s %12s %9s %7s %7s\n' target result executions exec/s new rss_mb
for r in "${rows[@]}"; do
	echo "$r"
done
if [ $failed != 0 ]; then
	echo "fuzz: FAILED (inputs, if any, in $artifacts)"
	exit 1
fi
echo "fuzz: all targets clean"
