#!/usr/bin/env bash
# npm packages of cmd/hearth's interop tests: @xmpp/client for XMPP over WebSocket.
set -euo pipefail
cd "$(dirname "$0")/testdata/interop/ws"
npm ci --no-audit --no-fund --loglevel=error
