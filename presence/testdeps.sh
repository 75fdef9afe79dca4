#!/usr/bin/env bash
# Test dependencies of presence/'s interop test (TestInteropSlixmppPresence, run with
# HEARTH_INTEROP=1): Debian's slixmpp, used through /usr/bin/python3.
set -euo pipefail
if ! /usr/bin/python3 -c 'import slixmpp' 2>/dev/null; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y python3-slixmpp
fi
