#!/usr/bin/env bash
# Installs what media/node's interop tests (run with HEARTH_INTEROP=1) need:
# Node.js and npm, Debian's headless-capable Chromium, and the npm packages
# pinned in js/package-lock.json (kurento-client 7.3.0 with reconnect-ws from
# the registry, playwright-core). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "${need[@]}"
fi
cd js
# No install scripts: nothing here needs a native build or a browser download
# (playwright-core drives the system Chromium).
npm ci --ignore-scripts --no-audit --no-fund
