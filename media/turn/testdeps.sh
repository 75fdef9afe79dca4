#!/usr/bin/env bash
# Installs what media/turn's interop tests and TURN benchmark need: coturn's turnutils_uclient
# (a TURN client) and turnserver (the server hearth is compared with). Idempotent.
set -euo pipefail
if command -v turnutils_uclient >/dev/null 2>&1 && command -v turnserver >/dev/null 2>&1; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Other test dependency scripts may run apt at the same time: wait for the dpkg lock.
apt-get -o DPkg::Lock::Timeout=600 update
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends coturn
