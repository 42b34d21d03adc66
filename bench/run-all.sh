#!/usr/bin/env bash
# Runs every load test of caddymcp in one go — the token endpoint
# (token-load.sh), the bearer check against bare Caddy (bearer-load.sh) and
# MCP tool calls through Caddy against a bare mcp-go server (tools-load.sh) —
# and writes one markdown summary with the machine it ran on to
# bench/results/summary-<date>.md (also printed). Each script's full output
# is kept next to it. The numbers mean most on an otherwise idle machine.
#
# Environment: whatever the three scripts accept (COUNT, BENCHTIME, …).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bench/results
stamp=$(date +%Y-%m-%d-%H%M%S)
summary=bench/results/summary-$stamp.md
failed=() # names of the scripts that failed

# log_of prints the file that keeps the output of bench/<name>.sh.
log_of() { echo "bench/results/run-all-$stamp-$1.txt"; }

# run runs bench/<name>.sh with its output in its log. It must run in this
# shell, never inside $(…): a subshell's additions to failed would be lost,
# and with them the failure in the summary and the exit status.
run() {
	local name=$1 log
	log=$(log_of "$name")
	echo "==> $name ($log)" >&2
	if ! bash "bench/$name.sh" >"$log" 2>&1; then
		failed+=("$name")
		echo "    FAILED: see $log" >&2
	fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run token-load
run bearer-load
run tools-load
token_log=$(log_of token-load)
bearer_log=$(log_of bearer-load)
tools_log=$(log_of tools-load)

{
	echo "# caddymcp load tests, $(date -u +'%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "- $(go version | cut -d' ' -f3-), PostgreSQL $(psql --version 2>/dev/null | awk '{print $3}' || echo '?') on loopback"
	echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "## Token endpoint (bench/token-load.sh)"
	echo
	echo '```'
	sed -n '/^benchmark (median of runs)/,/^$/p' "$token_log"
	echo '```'
	echo
	echo "## Bearer check against bare Caddy (bench/bearer-load.sh)"
	echo
	grep -E '^\|' "$bearer_log" || echo "(no table: see $bearer_log)"
	echo
	grep -E '^target:' "$bearer_log" || true
	echo
	echo "## MCP tool calls (bench/tools-load.sh)"
	echo
	echo '```'
	# One sed, not sed | grep -v: grep fails when a failed run left no
	# table, and under pipefail that would cut the summary short.
	sed -n '/^calls\/s/,/^raw output/{/^raw output/!p;}' "$tools_log"
	echo '```'
	if [[ ${#failed[@]} -gt 0 ]]; then
		echo
		echo "FAILED: ${failed[*]}"
		for name in "${failed[@]}"; do
			echo "- $name: see $(log_of "$name")"
		done
	fi
} | tee "$summary"
echo
echo "summary: $summary"
if [[ ${#failed[@]} -gt 0 ]]; then
	exit 1
fi
