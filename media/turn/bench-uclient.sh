#!/usr/bin/env bash
# Load comparison of hearth's TURN server and coturn's turnserver with coturn's own load
# generator, turnutils_uclient, on loopback. Both servers run as separate processes with the
# same realm and secret; for each run the script prints uclient's summary, the server's CPU
# time (user+system, /proc/PID/stat) and the kernel's UDP receive-buffer drops.
#
#   bash media/turn/bench-uclient.sh [runs] [clients] [messages] [bytes] [interval-ms]
#
# Needs coturn (media/turn/testdeps.sh). Run from the repository root.
set -euo pipefail
runs=${1:-2} clients=${2:-20} messages=${3:-2000} bytes=${4:-1000} interval=${5:-1}
secret=north-wind realm=hearth.test hearth_port=34790 coturn_port=34780
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go test -c -o "$work/turn.test" ./media/turn
# The test binary serves as a plain hearth TURN server while its stdin stays open (TestMain).
mkfifo "$work/stdin"
HEARTH_TURN_BENCH_SERVER=127.0.0.1:$hearth_port "$work/turn.test" <"$work/stdin" >"$work/hearth.out" 2>&1 &
hearth=$!
pids+=("$hearth")
exec 9>"$work/stdin"
turnserver -n --listening-ip=127.0.0.1 --listening-port=$coturn_port --relay-ip=127.0.0.1 \
	--use-auth-secret --static-auth-secret=$secret --realm=$realm --allow-loopback-peers \
	--no-cli --no-tls --no-dtls --log-file=/dev/null --no-stdout-log >/dev/null 2>&1 &
coturn=$!
pids+=("$coturn")
sleep 1

user="$(($(date +%s) + 3600)):load"
pass=$(printf '%s' "$user" | openssl dgst -sha1 -hmac "$secret" -binary | base64)
rcvbuf_errors() { awk '/^Udp:/ { v = $6 } END { print v }' /proc/net/snmp; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

for run in $(seq "$runs"); do
	for name in hearth coturn; do
		if [ $name = hearth ]; then pid=$hearth port=$hearth_port; else pid=$coturn port=$coturn_port; fi
		e0=$(rcvbuf_errors) c0=$(cpu_ticks "$pid")
		out=$(turnutils_uclient -y -m "$clients" -n "$messages" -l "$bytes" -z "$interval" \
			-u "$user" -w "$pass" -p $port 127.0.0.1 2>&1 | tail -4)
		c1=$(cpu_ticks "$pid") e1=$(rcvbuf_errors)
		echo "== run $run $name: server CPU $(((c1 - c0) * 10)) ms, UDP RcvbufErrors $((e1 - e0))"
		echo "$out"
	done
done
