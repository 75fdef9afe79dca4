#!/usr/bin/env bash
# Test dependencies of server/sasl (used by TestTLS12WithoutEMS when HEARTH_INTEROP=1):
# openssl s_client negotiates TLS 1.2 without the extended master secret, which
# crypto/tls never does. Idempotent.
set -euo pipefail
if ! command -v openssl >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y openssl
fi
