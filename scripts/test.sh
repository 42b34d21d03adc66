#!/usr/bin/env bash
# Run every check and test: gofmt, go vet (also with the e2e build tag), the Go
# tests (with -race) against a throwaway PostgreSQL server, then the end-to-end
# tests against a Caddy binary built from this checkout.
#
# Environment:
#   CI=true                     a missing PostgreSQL, skipped tests and
#                               CADDYMCP_SKIP_E2E=1 are errors
#   CADDYMCP_TEST_DATABASE_URL  use this PostgreSQL server instead of starting one
#   GOTESTFLAGS                 extra flags appended to both go test runs
#   CADDYMCP_SKIP_E2E=1         skip the end-to-end tests
#
# The end-to-end stage also runs real clients (the MCP TypeScript SDK in
# headless Chromium, MCP Inspector's CLI, mcp-go) against the binary: it
# installs Debian's chromium when missing and runs npm ci in
# caddymcp/e2e/clients (scripts/lib/clients.sh).
#
# Full test logs are kept in .cache/test-logs/, screenshots and the clients'
# HTTP trace in .cache/test-artifacts/.
set -euo pipefail

step() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\nERROR: %s\n' "$*" >&2
	exit 1
}
is_ci() { [[ ${CI:-} == true ]]; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

step "repo root"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
echo "$ROOT"
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/clients.sh
source scripts/lib/clients.sh

if [[ ${CADDYMCP_SKIP_E2E:-} == 1 ]] && is_ci; then
	die "CADDYMCP_SKIP_E2E=1 is not allowed when CI=true"
fi
read -r -a EXTRA_FLAGS <<<"${GOTESTFLAGS:-}"

# Lines of go test output shown while the tests run.
SUMMARY_RE='^(ok|FAIL|---|panic:|PASS|\?)'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/caddymcp-test.XXXXXX")
LOGS=()         # go test logs, for the final count
FAILED_STEPS=() # names of the steps that failed
CHILD=""        # process group of the running go test
FILTER=""       # its output filter

# Stops the running go test and everything it started (its own process group).
stop_child() {
	if [[ -n $FILTER ]]; then
		kill "$FILTER" 2>/dev/null || true
		FILTER=""
	fi
	[[ -n $CHILD ]] || return 0
	if kill -0 -- "-$CHILD" 2>/dev/null; then
		kill -TERM -- "-$CHILD" 2>/dev/null || true
		local _
		for _ in $(seq 50); do
			kill -0 -- "-$CHILD" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$CHILD" 2>/dev/null || true
	fi
	CHILD=""
}

stop_postgres() {
	if [[ -n $_PG_TMPDIR ]]; then
		local t0
		t0=$(now)
		pg_stop_throwaway
		echo "throwaway PostgreSQL server stopped and removed in $(elapsed "$t0")"
	fi
}

cleanup() {
	local rc=$?
	trap '' INT TERM
	stop_child
	stop_postgres
	if compgen -G "$WORK/*.log" >/dev/null; then
		mkdir -p .cache/test-logs
		cp "$WORK"/*.log .cache/test-logs/
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "\ninterrupted\n" >&2; exit 130' INT
trap 'exit 143' TERM

# Restore default SIGINT/SIGQUIT in the tests (background jobs of a script
# ignore them), when env supports it.
RESET_SIGNALS=()
if env --default-signal=INT,QUIT true 2>/dev/null; then
	RESET_SIGNALS=(env "--default-signal=INT,QUIT")
fi

# run_go_test <log> <command...>: runs a go test command in its own process
# group with its output in <log>, showing the summary lines as they come.
run_go_test() {
	local log=$1 rc=0
	shift
	LOGS+=("$log")
	: >"$log"
	setsid "${RESET_SIGNALS[@]}" "$@" >"$log" 2>&1 </dev/null &
	CHILD=$!
	tail -n +1 -s 0.2 -f --pid="$CHILD" "$log" 2>/dev/null | grep --line-buffered -E "$SUMMARY_RE" &
	FILTER=$!
	wait "$CHILD" || rc=$?
	wait "$FILTER" || true
	FILTER=""
	stop_child # anything the tests left behind
	return "$rc"
}

# check_go_test <name> <log> <rc>: reports a failed run and, in CI, skipped tests.
check_go_test() {
	local name=$1 log=$2 rc=$3
	if [[ $rc -ne 0 ]]; then
		printf '\n--- last 200 lines of %s ---\n' "$name"
		tail -n 200 "$log"
		FAILED_STEPS+=("$name")
	fi
	if is_ci && grep -qE '^\s*--- SKIP' "$log"; then
		printf '\nSkipped tests are failures in CI:\n'
		grep -E '^\s*--- SKIP' "$log"
		FAILED_STEPS+=("$name (skipped tests)")
	fi
}

step "PostgreSQL"
if [[ -n ${CADDYMCP_TEST_DATABASE_URL:-} ]]; then
	echo "using the server given in CADDYMCP_TEST_DATABASE_URL"
else
	t0=$(now)
	if pg_start_throwaway; then
		echo "throwaway server on 127.0.0.1:$CADDYMCP_TEST_PG_PORT, started in $(elapsed "$t0")"
	elif is_ci; then
		die "no PostgreSQL server could be found or started; CI requires one"
	else
		cat >&2 <<-'WARN'

			!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
			!! WARNING: no PostgreSQL server could be found or started.
			!! Tests that need PostgreSQL will be skipped (with CI=true they fail).
			!! Install PostgreSQL or set CADDYMCP_TEST_DATABASE_URL.
			!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

		WARN
	fi
fi

step "gofmt"
GOFILES=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r -d '' f; do
		[[ $f == .cache/* || ! -f $f ]] || GOFILES+=("$f")
	done < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
else
	while IFS= read -r -d '' f; do
		GOFILES+=("${f#./}")
	done < <(find . -path ./.cache -prune -o -name '*.go' -type f -print0)
fi
if [[ ${#GOFILES[@]} -eq 0 ]]; then
	echo "no Go files"
elif unformatted=$(gofmt -l "${GOFILES[@]}") && [[ -z $unformatted ]]; then
	echo "${#GOFILES[@]} files formatted"
else
	echo "not gofmt-formatted (run gofmt -w):"
	echo "$unformatted"
	FAILED_STEPS+=("gofmt")
fi

step "go vet"
if go vet ./...; then
	echo "ok"
else
	FAILED_STEPS+=("go vet")
fi

# The end-to-end tests are behind the e2e build tag, which a plain vet does
# not see. Vet them even when CADDYMCP_SKIP_E2E=1 skips running them, so
# that they keep compiling and stay clean.
step "go vet -tags e2e"
if go vet -tags e2e ./...; then
	echo "ok"
else
	FAILED_STEPS+=("go vet -tags e2e")
fi

step "go test"
rc=0
run_go_test "$WORK/go-test.log" go test -race -count=1 -v ./... "${EXTRA_FLAGS[@]}" || rc=$?
check_go_test "go test" "$WORK/go-test.log" "$rc"

step "end-to-end tests"
if [[ ${CADDYMCP_SKIP_E2E:-} == 1 ]]; then
	echo "skipped (CADDYMCP_SKIP_E2E=1)"
elif [[ ! -d caddymcp/e2e ]]; then
	echo "no end-to-end tests yet (caddymcp/e2e does not exist)"
else
	# Real third-party clients (caddymcp/e2e/clients_test.go): Chromium and
	# the npm packages. Without CI a missing tool skips those tests.
	t0=$(now)
	if clients_prepare "$WORK/clients-setup.log"; then
		echo "real-client tools ready in $(elapsed "$t0")"
	elif is_ci; then
		[[ -f $WORK/clients-setup.log ]] && tail -n 50 "$WORK/clients-setup.log"
		FAILED_STEPS+=("real-client tools (Chromium, npm ci)")
	else
		cat >&2 <<-'WARN'

			!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
			!! WARNING: Chromium or the npm packages of caddymcp/e2e/clients are
			!! missing (see above). The real-client tests will be skipped (with
			!! CI=true they fail). Install Node.js 20+ and npm, and Debian's chromium.
			!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

		WARN
	fi
	E2E_BIN=$ROOT/.cache/caddy-e2e
	t0=$(now)
	if scripts/build.sh "$E2E_BIN" >"$WORK/build-e2e.log" 2>&1; then
		echo "caddy for end-to-end tests ready in $(elapsed "$t0"): $("$E2E_BIN" version)"
		rc=0
		export CADDYMCP_CADDY_BIN=$E2E_BIN
		run_go_test "$WORK/e2e-test.log" \
			go test -tags e2e -count=1 -v -timeout 10m ./caddymcp/e2e/... "${EXTRA_FLAGS[@]}" || rc=$?
		check_go_test "end-to-end tests" "$WORK/e2e-test.log" "$rc"
	else
		printf '\n--- scripts/build.sh failed; last 100 lines ---\n'
		tail -n 100 "$WORK/build-e2e.log"
		FAILED_STEPS+=("end-to-end build")
	fi
fi

step "teardown"
stop_postgres

# Count top-level tests and subtests across both runs.
passed=$(cat "${LOGS[@]}" | grep -cE '^\s*--- PASS' || true)
failed=$(cat "${LOGS[@]}" | grep -cE '^\s*--- FAIL' || true)
echo
if [[ ${#FAILED_STEPS[@]} -gt 0 ]]; then
	printf 'FAILED: %s\n' "${FAILED_STEPS[@]}"
fi
echo "$passed passed, $failed failed"
if [[ ${#FAILED_STEPS[@]} -gt 0 ]]; then
	exit 1
fi
