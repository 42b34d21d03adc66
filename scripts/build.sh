#!/usr/bin/env bash
# Build a Caddy binary that includes the caddymcp plugin from this checkout.
#
# Usage: scripts/build.sh [output]      (default output: ./caddy in the repo root)
#
# The build is skipped when the output exists and its stamp matches a hash of
# the inputs (go.mod, go.sum, plugin sources, migrations, Caddy/xcaddy/Go versions).
set -euo pipefail

XCADDY_VERSION=v0.4.5
PLUGIN_MODULE=github.com/caddymcp/caddymcp
PLUGIN_PACKAGE=$PLUGIN_MODULE/caddymcp

# Resolve the output path relative to the caller's directory, then work from the repo root.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ $# -gt 0 && -n $1 ]]; then
	case $1 in
	/*) OUT=$1 ;;
	*) OUT=$PWD/$1 ;;
	esac
else
	OUT=$ROOT/caddy
fi
cd "$ROOT"
mkdir -p .cache/bin "$(dirname "$OUT")"

if [[ $OUT == "$ROOT/caddy" ]]; then
	STAMP=$ROOT/.cache/build.stamp
else
	STAMP=$OUT.stamp
fi

CADDY_VERSION=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)

# Source files that end up in the binary: everything tracked or untracked (not
# ignored) under caddymcp/ and migrations/, minus tests, test data and the
# end-to-end tests with their clients (never part of the binary).
list_inputs() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard -- caddymcp migrations
	else
		find caddymcp migrations -type f 2>/dev/null || true
	fi | grep -Ev '(^|/)\.cache/|_test\.go$|(^|/)testdata/|^caddymcp/e2e/' | LC_ALL=C sort -u
}

compute_hash() {
	{
		echo "caddy $CADDY_VERSION"
		echo "xcaddy $XCADDY_VERSION"
		go version
		echo "cgo 0"
		sha256sum scripts/build.sh go.mod go.sum
		list_inputs | while IFS= read -r f; do
			# Files deleted from the work tree but still in the index are skipped.
			[[ -f $f ]] && sha256sum -- "$f"
		done
	} | sha256sum | cut -d' ' -f1
}

HASH=$(compute_hash)
if [[ -x $OUT && -f $STAMP && $(<"$STAMP") == "$HASH" ]]; then
	echo "caddy is up to date ($OUT)"
	exit 0
fi

# Pinned xcaddy, installed into .cache/bin.
XCADDY=$ROOT/.cache/bin/xcaddy
if [[ ! -x $XCADDY ]] || [[ $("$XCADDY" version 2>/dev/null | cut -d' ' -f1) != "$XCADDY_VERSION" ]]; then
	echo "==> installing xcaddy $XCADDY_VERSION"
	GOBIN=$ROOT/.cache/bin go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
fi

# The plugin module is not published: use only the first proxy and fall
# through ("|") to "off" on any error, so the local replace is used.
PROXY="$(go env GOPROXY | cut -d, -f1)|off"

echo "==> building Caddy $CADDY_VERSION with $PLUGIN_PACKAGE -> $OUT"
TMP_OUT=$OUT.tmp.$$
trap 'rm -f "$TMP_OUT"' EXIT
GOPROXY=$PROXY CGO_ENABLED=0 "$XCADDY" build "$CADDY_VERSION" \
	--output "$TMP_OUT" \
	--with "$PLUGIN_PACKAGE" \
	--replace "$PLUGIN_MODULE=$ROOT"
mv -f "$TMP_OUT" "$OUT"
echo "$HASH" >"$STAMP"

"$OUT" version
# The plugin's modules (may be empty while the plugin is incomplete).
"$OUT" list-modules | grep -E '^(caddymcp|http\.handlers\.mcp_)' || true
