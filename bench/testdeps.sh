#!/usr/bin/env bash
# Installs what bench/'s interop test and bench/compare.sh run against: Prosody and
# ejabberd from Debian, ss (iproute2) and openssl. Idempotent. The packages' own
# services are not used (bench/peers/peer.sh starts private instances on loopback).
set -euo pipefail
need=()
command -v prosody >/dev/null || need+=(prosody)
command -v ejabberdctl >/dev/null || need+=(ejabberd)
command -v openssl >/dev/null || need+=(openssl)
command -v ss >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Debian starts the packaged services where it can; they would take the standard ports
# and CPU from the benchmark.
for s in prosody ejabberd; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null; then
		systemctl stop "$s" || true
	fi
done
