#!/usr/bin/env bash
# Installs what media/openvidu's interop tests (run with HEARTH_INTEROP=1) need:
# Node.js and npm, Debian's Chromium, python3-slixmpp (MUC occupants asking
# for tokens), and the npm packages pinned in js/package-lock.json
# (openvidu-node-client and openvidu-browser 2.32.2, esbuild to bundle the
# browser library into the test page, playwright-core to drive Chromium).
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || need+=(python3-slixmpp)
if [ "${#need[@]}" -gt 0 ]; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "${need[@]}"
fi
cd js
# No install scripts: esbuild's binary comes as an npm optional dependency
# (@esbuild/linux-x64), and playwright-core drives the system Chromium.
npm ci --ignore-scripts --no-audit --no-fund
