#!/usr/bin/env bash
# Load test of the MCP tools: tools/call of products_list (a page of 20)
# over real HTTP through an in-process Caddy with mcp_bearer and mcp_tools
# on a throwaway PostgreSQL server, next to a bare mcp-go stateless server
# answering a constant, both with 32 requests in flight
# (BenchmarkToolsCall in caddymcp/tools_bench_test.go). Raw output goes to
# bench/results/tools-<date>.txt.
#
# Environment:
#   BENCHTIME   go test -benchtime per run (default 20000x)
#   COUNT       runs of each benchmark (default 3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCHTIME=${BENCHTIME:-20000x}
COUNT=${COUNT:-3}

# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
trap 'pg_stop_throwaway' EXIT
echo "==> starting a throwaway PostgreSQL server" >&2
pg_start_throwaway >&2

mkdir -p bench/results
out=bench/results/tools-$(date +%Y-%m-%d-%H%M%S).txt
echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
go test -run '^$' -bench 'ToolsCall' -benchtime "$BENCHTIME" -count "$COUNT" ./caddymcp/ | tee "$out"
echo
echo "calls/s (median of $COUNT runs):"
for name in caddy bare-mcp-go; do
	grep "BenchmarkToolsCall/$name-" "$out" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "calls/s") print $i}' |
		sort -n | awk -v n="$name" '{v[NR] = $1} END {printf "  %-12s %s\n", n, v[int((NR+1)/2)]}'
done
echo "raw output: $out"
