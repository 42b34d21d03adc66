#!/usr/bin/env bash
# Load test of the OAuth token endpoint and of access-token signing: runs the
# Go benchmarks of caddymcp/oauth (bench_test.go) against a throwaway
# PostgreSQL server started for the run, keeps the raw output in
# bench/results/<date>.txt and prints a summary table against the targets.
#
# Environment:
#   BENCHTIME   go test -benchtime per benchmark run (default 5s)
#   COUNT       runs of each benchmark; the summary shows medians (default 3)
#   BENCH       benchmark pattern (default SignAccessToken|VerifyAccessToken|TokenEndpoint)
#   PG_FSYNC    on (default): PostgreSQL flushes every commit to disk, as in
#               production; off: the faster setting the test suite uses
#   CADDYMCP_BENCH_PG_MAXCONNS  PostgreSQL pool size (default: the product's
#               default, 16)
#   CADDYMCP_BENCH_USER_POLICY  store (default): every refresh reads the user
#               from the store for the access policy, as the login server
#               does; none: no policy lookup
#
# Raw results can be compared across runs with benchstat
# (golang.org/x/perf/cmd/benchstat).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCHTIME=${BENCHTIME:-5s}
COUNT=${COUNT:-3}
BENCH=${BENCH:-SignAccessToken|VerifyAccessToken|TokenEndpoint}
PG_FSYNC=${PG_FSYNC:-on}
case $PG_FSYNC in on | off) ;; *)
	echo "PG_FSYNC must be on or off" >&2
	exit 2
	;;
esac

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
trap 'pg_stop_throwaway' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> starting a throwaway PostgreSQL server" >&2
pg_start_throwaway
if [[ $PG_FSYNC == on ]]; then
	# The throwaway server runs with fsync=off for test speed; restart it
	# with durable commits, as a production server has.
	# Port, address and socket folder are in its postgresql.conf.
	run_as=()
	[[ -z ${CADDYMCP_TEST_PG_RUNAS:-} ]] || run_as=(runuser -u "$CADDYMCP_TEST_PG_RUNAS" --)
	"${run_as[@]}" "$CADDYMCP_TEST_PG_BINDIR/pg_ctl" -D "$CADDYMCP_TEST_PG_DATADIR" -l "$CADDYMCP_TEST_PG_LOGFILE" \
		-w -t 60 -o "-c fsync=on" restart >/dev/null
fi

mkdir -p bench/results
OUT=bench/results/$(date +%Y-%m-%d-%H%M%S).txt
pg_version=$("$CADDYMCP_TEST_PG_BINDIR/postgres" --version 2>/dev/null || echo unknown)
{
	echo "# caddymcp token endpoint load test"
	echo "# date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
	echo "# go:        $(go version)"
	echo "# machine:   $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
	echo "# os:        $(uname -sr)"
	echo "# postgres:  $pg_version, fsync=$PG_FSYNC, pool size ${CADDYMCP_BENCH_PG_MAXCONNS:-default}"
	echo "# policy:    access policy at refresh: ${CADDYMCP_BENCH_USER_POLICY:-store}"
	echo "# load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (before the run)"
	echo "# command:   go test -run '^\$' -bench '$BENCH' -benchtime $BENCHTIME -count $COUNT ./caddymcp/oauth/"
} >"$OUT"
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
	echo "warning: load average is $load before the run; other processes will skew the numbers" >&2
fi

echo "==> running the benchmarks (raw output: $OUT)" >&2
rc=0
go test -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -count "$COUNT" -timeout 60m \
	./caddymcp/oauth/ 2>&1 | tee -a "$OUT" || rc=$?

# Summary: the median of each metric over the runs of each benchmark.
echo
awk '
function median(key,   n, i, j, t, v) {
	n = split(vals[key], v, " ")
	if (n == 0) return ""
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
function fmt(x, d) { return x == "" ? "-" : sprintf("%." d "f", x) }
function bench(name) {
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++count] = name }
	return name
}
/^Benchmark/ && $2 ~ /^[0-9]+$/ {
	name = bench($1)
	runs[name]++
	for (i = 3; i < NF; i += 2) {
		unit = $(i + 1)
		if (unit == "exchanges/s" || unit == "refreshes/s") unit = "ops/s"
		vals[name SUBSEP unit] = vals[name SUBSEP unit] " " $i
	}
	next
}
/--- FAIL: Benchmark/ {
	for (i = 1; i < NF; i++) if ($i == "FAIL:") name = bench($(i + 1))
	failed[name]++
	want_reason = 1
	next
}
want_reason && /^ +[a-z_]+\.go:[0-9]+: / {
	if (!(name in reason)) { r = $0; sub(/^ +[a-z_]+\.go:[0-9]+: /, "", r); reason[name] = r }
	want_reason = 0
}
END {
	printf "%-34s %4s %12s %10s %8s %8s  %s\n", "benchmark (median of runs)", "runs", "ns/op", "ops/s", "p50 ms", "p99 ms", "target"
	for (k = 1; k <= count; k++) {
		n = order[k]
		parent = 0
		for (m in seen) if (index(m, n "/") == 1) parent = 1
		if (parent) continue
		target = ""
		if (n == "SignAccessToken") target = "< 100 us"
		if (n ~ /\/postgres$/) target = ">= 1500/s, p99 < 50 ms"
		if (runs[n] == 0) {
			printf "%-34s %4d %12s %10s %8s %8s  %s\n", n, 0, "-", "-", "-", "-", "FAILED " failed[n] "x" (target == "" ? "" : ", target " target " not measured")
			continue
		}
		ns = median(n SUBSEP "ns/op"); ops = median(n SUBSEP "ops/s")
		p50 = median(n SUBSEP "p50-ms"); p99 = median(n SUBSEP "p99-ms")
		if (n == "SignAccessToken") target = ((ns < 100000) ? "met (" : "MISSED (") target ")"
		if (n ~ /\/postgres$/) target = ((ops >= 1500 && p99 < 50) ? "met (" : "MISSED (") target ")"
		if (median(n SUBSEP "unavailable") != "") target = target " [503 answers: " median(n SUBSEP "unavailable") "]"
		if (failed[n]) target = target " [FAILED " failed[n] "x]"
		printf "%-34s %4d %12s %10s %8s %8s  %s\n", n, runs[n], fmt(ns, 0), fmt(ops, 0), fmt(p50, 2), fmt(p99, 2), target
	}
	for (n in reason) printf "%s failed: %s\n", n, reason[n]
}' "$OUT" | tee -a "$OUT"
echo
echo "raw output: $OUT"
exit "$rc"
