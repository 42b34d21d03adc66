#!/usr/bin/env bash
# Load test of mcp_bearer: requests per second of a Caddy `respond` route,
# bare and behind mcp_bearer with a valid token, measured in one run on one
# machine with wrk against a real Caddy binary built from this checkout
# (scripts/build.sh) with the embedded store. The two routes are measured
# in turns, ROUNDS times each, and the script prints a markdown table with
# the ratio of the two. Raw output goes to bench/results/bearer-<date>.txt,
# and, with PROFILE=1, a CPU profile of Caddy under the bearer load to
# bench/results/bearer-<date>.pprof.
#
# Environment:
#   DURATION     length of each measurement (default 10s)
#   ROUNDS       measurements of each route (default 3)
#   CONNECTIONS  keep-alive connections (default 64)
#   THREADS      wrk threads (default 2)
#   WARMUP       untimed run of each route first (default 3s)
#   PROFILE      1: after the rounds, profile Caddy for PROFILE_SECONDS
#                under the bearer load and print the top functions (default 1)
#   PROFILE_SECONDS  (default 10)
#   CADDY_BIN    a Caddy binary with the plugin; default: scripts/build.sh
#                builds .cache/bench/caddy (skipped when up to date)
#
# wrk is Debian's `wrk` package; as root the script installs it with apt
# when it is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3s}
PROFILE=${PROFILE:-1}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}

if ! command -v wrk >/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "wrk is not installed (Debian: apt-get install wrk)" >&2
		exit 1
	fi
	echo "==> installing wrk" >&2
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1; then
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
	fi
fi

if [[ -z ${CADDY_BIN:-} ]]; then
	CADDY_BIN=$PWD/.cache/bench/caddy
	echo "==> building Caddy with the plugin ($CADDY_BIN)" >&2
	scripts/build.sh "$CADDY_BIN" >&2
fi

WORK=$(mktemp -d)
CADDY_PID=""
cleanup() {
	if [[ -n $CADDY_PID ]]; then
		kill "$CADDY_PID" 2>/dev/null || true
		wait "$CADDY_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
ADMIN=$(free_port)
ORIGIN=http://127.0.0.1:$PORT

# One site, two routes to the same `respond`: /bare directly, /bearer
# behind mcp_bearer (resource $ORIGIN/bearer, issuer: the request origin).
cat >"$WORK/Caddyfile" <<EOF
{
	admin 127.0.0.1:$ADMIN
	auto_https off
	persist_config off
	caddymcp {
		embedded_path $WORK/caddymcp.db
	}
}

$ORIGIN {
	mcp_bearer /bearer*
	respond "ok"
}
EOF

echo "==> starting Caddy on $ORIGIN" >&2
XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config \
	"$CADDY_BIN" run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
CADDY_PID=$!
for _ in $(seq 300); do
	if curl -fsS -o /dev/null "$ORIGIN/bare" 2>/dev/null; then
		break
	fi
	if ! kill -0 "$CADDY_PID" 2>/dev/null; then
		cat "$WORK/caddy.log" >&2
		echo "Caddy exited" >&2
		exit 1
	fi
	sleep 0.1
done

# A token as the site's token endpoint issues it: signed with its current
# key, iss = the origin, aud = the /bearer resource.
go build -o "$WORK/bearertoken" ./bench/bearertoken
TOKEN=$("$WORK/bearertoken" -db "$WORK/caddymcp.db" -issuer "$ORIGIN" -resource "$ORIGIN/bearer")

status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check() {
	local want=$1 got
	shift
	got=$(status "$@")
	if [[ $got != "$want" ]]; then
		echo "sanity check failed: ${*: -1} answered $got, want $want" >&2
		cat "$WORK/caddy.log" >&2
		exit 1
	fi
}
check 200 "$ORIGIN/bare"
check 401 "$ORIGIN/bearer"
check 401 -H "Authorization: Bearer ${TOKEN}x" "$ORIGIN/bearer"
check 200 -H "Authorization: Bearer $TOKEN" "$ORIGIN/bearer"

mkdir -p bench/results
STAMP=$(date +%Y-%m-%d-%H%M%S)
OUT=bench/results/bearer-$STAMP.txt
{
	echo "# caddymcp mcp_bearer load test"
	echo "# date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "# commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
	echo "# caddy:     $("$CADDY_BIN" version | head -1)"
	echo "# go:        $(go version)"
	echo "# wrk:       $(wrk -v 2>&1 | head -1)"
	echo "# machine:   $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
	echo "# os:        $(uname -sr)"
	echo "# settings:  $ROUNDS rounds of $DURATION per route, $CONNECTIONS connections, $THREADS threads, keep-alive"
	echo "# load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (before the run)"
} >"$OUT"
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
	echo "warning: load average is $load before the run; other processes will skew the numbers" >&2
fi

# Both routes get the same request, Authorization header included, so that
# only the handling differs.
load_run() { # <route> <duration>
	wrk -t "$THREADS" -c "$CONNECTIONS" -d "$2" --latency \
		-H "Authorization: Bearer $TOKEN" "$ORIGIN/$1"
}

# Caddy's CPU time (user + system) in clock ticks: CPU per request depends
# much less than throughput on how much of the machine other processes take.
TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$CADDY_PID/stat"; }

echo "==> warming up ($WARMUP per route)" >&2
load_run bare "$WARMUP" >/dev/null
load_run bearer "$WARMUP" >/dev/null

for round in $(seq "$ROUNDS"); do
	# Alternate which route goes first, so that drift in the machine's
	# load does not favour one of them.
	if ((round % 2)); then order=(bare bearer); else order=(bearer bare); fi
	for route in "${order[@]}"; do
		echo "==> round $round/$ROUNDS: $route ($DURATION)" >&2
		{
			echo "### round $round $route"
			before=$(cpu_ticks)
			load_run "$route" "$DURATION"
			echo "caddy cpu ticks: $(($(cpu_ticks) - before)) (of $TICKS per second)"
		} | tee -a "$OUT" >&2
	done
done
echo "# load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (after the rounds)" >>"$OUT"

# The table: per round and the median, with p99 latency in ms.
echo
awk '
function ms(v) {
	if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
	if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
	if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
	return v + 0
}
function median(list,   n, v, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
/^### round/ { round = $3; route = $4; next }
/ requests in / { reqs[round, route] = $1 }
/^caddy cpu ticks:/ {
	us = 1e6 * $4 / $6 / reqs[round, route] # "caddy cpu ticks: <n> (of <hz> per second)"
	cpu[round, route] = us; allc[route] = allc[route] " " us
}
/^Requests\/sec:/ { rps[round, route] = $2; all[route] = all[route] " " $2; if (round > rounds) rounds = round }
/^ +99%/ { p99[round, route] = ms($2); allp[route] = allp[route] " " ms($2) }
/Non-2xx or 3xx responses:/ { bad[route] += $NF }
END {
	print "| round | bare req/s | bearer req/s | bearer/bare | bare p99 | bearer p99 | Caddy CPU/req bare | bearer | bare/bearer |"
	print "|---|---|---|---|---|---|---|---|---|"
	for (r = 1; r <= rounds; r++) {
		ratio = 100 * rps[r, "bearer"] / rps[r, "bare"]
		ratios = ratios " " ratio
		cratio = 100 * cpu[r, "bare"] / cpu[r, "bearer"]
		cratios = cratios " " cratio
		printf "| %d | %.0f | %.0f | %.1f%% | %.2f ms | %.2f ms | %.1f µs | %.1f µs | %.1f%% |\n", r, rps[r, "bare"], rps[r, "bearer"],
			ratio, p99[r, "bare"], p99[r, "bearer"], cpu[r, "bare"], cpu[r, "bearer"], cratio
	}
	m = median(ratios)
	printf "| median | %.0f | %.0f | %.1f%% | %.2f ms | %.2f ms | %.1f µs | %.1f µs | %.1f%% |\n", median(all["bare"]), median(all["bearer"]), m,
		median(allp["bare"]), median(allp["bearer"]), median(allc["bare"]), median(allc["bearer"]), median(cratios)
	print ""
	print "(median ratios are those of the rounds, each pair measured back to back; bare/bearer"
	print "of Caddy CPU per request is the throughput ratio to expect when Caddy has the CPUs to itself)"
	printf "target: bearer >= 90%% of bare: %s\n", (m >= 90) ? "met" : "MISSED"
	for (k in bad) if (bad[k]) { printf "\nERROR: %d non-2xx answers on /%s: the numbers are not valid\n", bad[k], k; failed = 1 }
	exit failed
}' "$OUT" | tee -a "$OUT"
echo "load average after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $PROFILE == 1 ]]; then
	PROF=bench/results/bearer-$STAMP.pprof
	echo >&2
	echo "==> profiling Caddy for ${PROFILE_SECONDS}s under the bearer load ($PROF)" >&2
	load_run bearer "$((PROFILE_SECONDS + 2))s" >/dev/null &
	wrk_pid=$!
	sleep 1
	curl -fsS -o "$PROF" "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=$PROFILE_SECONDS"
	wait "$wrk_pid"
	{
		echo
		echo "## CPU profile of Caddy under the bearer load (cumulative, top 40)"
		go tool pprof -top -cum -nodecount=40 "$CADDY_BIN" "$PROF" 2>/dev/null
	} | tee -a "$OUT"
fi
echo
echo "raw output: $OUT"
