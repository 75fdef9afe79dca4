#!/usr/bin/env bash
# Installs what hearth's tests need on a fresh Debian machine (run as root, as
# CI does): the interop clients (slixmpp, go-sendxmpp), coturn's tools, Chromium,
# and whatever each package's own testdeps.sh adds (npm packages and the like).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
need=()
for pkg in python3-slixmpp go-sendxmpp coturn chromium openssl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Every package's own extra dependencies.
while IFS= read -r f; do
  echo "testdeps: $f"
  bash "$f"
done < <(find . -name testdeps.sh -not -path './scripts/*' -not -path '*/node_modules/*' | sort)
