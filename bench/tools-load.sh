#!/usr/bin/env bash
# Load test of the MCP tools: tools/call of products_list (a page of 20)
# over real HTTP through an in-process Caddy with mcp_bearer and mcp_tools
# on a throwaway PostgreSQL server, next to a bare mcp-go stateless server
# answering a constant, both with 32 requests in flight
# (BenchmarkToolsCall in caddymcp/tools_bench_test.go). Prints the median
# calls/s of each and the median of their ratio per round, which other
# load on the machine moves less than either number. Raw output goes to
# bench/results/tools-<date>.txt.
#
# Environment:
#   BENCHTIME   go test -benchtime per run (default 20000x)
#   COUNT       rounds, each one run of both benchmarks (default 3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCHTIME=${BENCHTIME:-20000x}
COUNT=${COUNT:-3}

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
bin=$(mktemp)
trap 'pg_stop_throwaway; rm -f "$bin"' EXIT
echo "==> starting a throwaway PostgreSQL server" >&2
pg_start_throwaway >&2

mkdir -p bench/results
out=bench/results/tools-$(date +%Y-%m-%d-%H%M%S).txt
go test -c -o "$bin" ./caddymcp/
echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# One run of each after the other, COUNT times, so that both see the same
# load in each round.
for _ in $(seq "$COUNT"); do
	(cd caddymcp && "$bin" -test.run '^$' -test.bench 'ToolsCall' -test.benchtime "$BENCHTIME") | tee -a "$out"
done
echo
rates() {
	grep "BenchmarkToolsCall/$1-" "$out" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "calls/s") print $i}'
}
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR+1)/2)]}'; }
echo "calls/s (median of $COUNT runs):"
printf '  %-12s %s\n' caddy "$(rates caddy | median)" bare-mcp-go "$(rates bare-mcp-go | median)"
printf '  %-12s %s\n' caddy/bare "$(paste <(rates caddy) <(rates bare-mcp-go) | awk '{printf "%.3f\n", $1 / $2}' | median)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw output: $out"
