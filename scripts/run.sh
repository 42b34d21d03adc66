#!/usr/bin/env bash
# Build (if needed) and run Caddy with the example configuration.
# Extra arguments are passed to `caddy run`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/build.sh
exec ./caddy run --config Caddyfile.example --adapter caddyfile "$@"
