#!/usr/bin/env bash
# The interop test (cmd/hearth/interop_muc_test.go) drives this plugin with
# slixmpp's XEP-0045 plugin under Debian's /usr/bin/python3.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' python3-slixmpp 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-slixmpp >/dev/null
fi
