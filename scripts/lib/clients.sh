# shellcheck shell=bash
# What the real-client end-to-end tests (caddymcp/e2e/clients_test.go) need
# besides the Caddy binary: Debian's Chromium and the npm packages pinned in
# caddymcp/e2e/clients/package-lock.json. Source this file from the repo
# root, then:
#
#   clients_prepare <log>   # installs what is missing and exports
#                           #   CADDYMCP_CLIENTS_DIR  caddymcp/e2e/clients (absolute)
#                           #   CADDYMCP_CHROMIUM     the Chromium executable
#
# CADDYMCP_CHROMIUM, when already set, names the browser to use instead of
# /usr/bin/chromium (nothing is installed then). The npm cache lives in
# .cache/npm. Every function returns non-zero with a message on stderr when
# it cannot do its job, and never exits the calling shell.

# Node.js major version the packages need (playwright-core, oidc-provider).
_CLIENTS_NODE_MAJOR=20

# Runs a command as root: directly when root, else through sudo when it
# needs no password.
_clients_as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		echo "clients: '$*' needs root, and sudo is not available without a password" >&2
		return 1
	fi
}

# clients_ensure_chromium <log>: makes sure the browser exists, installing
# Debian's chromium package with apt-get when it does not. apt's output goes
# to <log>.
clients_ensure_chromium() {
	local log=$1 bin=${CADDYMCP_CHROMIUM:-/usr/bin/chromium}
	if [[ -x $bin ]]; then
		return 0
	fi
	if [[ -n ${CADDYMCP_CHROMIUM:-} ]]; then
		echo "clients: CADDYMCP_CHROMIUM=$bin is not an executable" >&2
		return 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "clients: $bin is missing and there is no apt-get to install chromium" >&2
		return 1
	fi
	echo "clients: $bin is missing; installing Debian's chromium with apt-get" >&2
	local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium)
	# The package lists may be missing or stale on a fresh machine: update
	# them only when the first try fails.
	if ! _clients_as_root "${install[@]}" >>"$log" 2>&1; then
		if ! _clients_as_root apt-get update -q >>"$log" 2>&1 ||
			! _clients_as_root "${install[@]}" >>"$log" 2>&1; then
			echo "clients: apt-get install chromium failed (see $log)" >&2
			return 1
		fi
	fi
	[[ -x $bin ]] || {
		echo "clients: chromium installed, but $bin does not exist" >&2
		return 1
	}
}

# clients_npm_ci <log>: installs the pinned npm packages with npm ci, unless
# node_modules already matches package-lock.json and this Node.js.
clients_npm_ci() {
	local log=$1 dir=$PWD/caddymcp/e2e/clients cache=$PWD/.cache/npm major stamp
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "clients: node and npm are needed (Node.js $_CLIENTS_NODE_MAJOR or newer)" >&2
		return 1
	fi
	major=$(node -p 'process.versions.node.split(".")[0]')
	if [[ $major -lt $_CLIENTS_NODE_MAJOR ]]; then
		echo "clients: Node.js $(node --version) is too old; $_CLIENTS_NODE_MAJOR or newer is needed" >&2
		return 1
	fi
	stamp="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1) node $(node --version)"
	if [[ -f $dir/node_modules/.caddymcp-stamp && $(<"$dir/node_modules/.caddymcp-stamp") == "$stamp" ]]; then
		echo "npm packages up to date"
		return 0
	fi
	mkdir -p "$cache"
	# No package here downloads a browser; the variable makes sure of it.
	if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --cache "$cache" \
		--prefer-offline --no-audit --no-fund --loglevel=warn) >>"$log" 2>&1; then
		echo "clients: npm ci in $dir failed (see $log)" >&2
		return 1
	fi
	echo "$stamp" >"$dir/node_modules/.caddymcp-stamp"
	echo "npm packages installed with npm ci"
}

# clients_prepare <log>: both of the above, then the exports.
clients_prepare() {
	local log=$1
	clients_ensure_chromium "$log" || return 1
	clients_npm_ci "$log" || return 1
	export CADDYMCP_CLIENTS_DIR=$PWD/caddymcp/e2e/clients
	export CADDYMCP_CHROMIUM=${CADDYMCP_CHROMIUM:-/usr/bin/chromium}
	echo "node $(node --version), $("$CADDYMCP_CHROMIUM" --version 2>/dev/null | head -n 1)"
}
