#!/usr/bin/env bash
# Compare hearth with Prosody and ejabberd on this machine, over loopback only.
#
# Installs the peers (bench/testdeps.sh), generates one self-signed certificate for all
# three, builds hearth and hearth-bench, creates the same accounts on each server, then
# runs every scenario (login, idle, chat, fanout, muc) against every server, round after
# round, with the servers' order rotated each round and only the measured server running.
# The medians and ratios go into docs/performance.md between the compare markers.
#
# Sizes and settings come from the environment (defaults finish in about 10-15 minutes
# on 2 cores):
#   BENCH_ROUNDS=3  BENCH_PEERS="hearth prosody ejabberd"  BENCH_SCENARIOS=login,idle,chat,fanout,muc
#   BENCH_LOGIN_N=500 BENCH_LOGIN_RATE=200  BENCH_IDLE_N=2000 BENCH_IDLE_HOLD=5s
#   BENCH_CHAT_PAIRS=50 BENCH_CHAT_DURATION=10s BENCH_CHAT_WINDOW=4
#   BENCH_FANOUT_K=200 BENCH_FANOUT_CHANGES=5
#   BENCH_MUC_R=50 BENCH_MUC_DURATION=10s BENCH_MUC_WINDOW=4
#   BENCH_PORT_BASE=27222 (hearth +0, prosody +10, ejabberd +20; keep them below the
#     ephemeral range, or a client socket's local port can block a server's bind)
#   BENCH_PARALLEL=64 (logins in flight)  BENCH_EXTRA="..." (more hearth-bench flags)
#   BENCH_DOC=docs/performance.md (set to "" to leave the document alone)
#   BENCH_WORK=DIR (keep state there; default a temporary directory, removed at the end)
#   BENCH_RESULTS=FILE (where the raw JSON lines are kept; default /tmp/hearth-compare-results.jsonl)
#   HEARTH_ADMIN=ADDR BENCH_HEARTH_STATS_URL=URL (hearth's own runtime figures, when it has them)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
peer=$repo/bench/peers/peer.sh

rounds=${BENCH_ROUNDS:-3}
peers=${BENCH_PEERS:-hearth prosody ejabberd}
scenarios=${BENCH_SCENARIOS:-login,idle,chat,fanout,muc}
port_base=${BENCH_PORT_BASE:-27222}
domain=localhost
doc=${BENCH_DOC-docs/performance.md}
results=${BENCH_RESULTS:-/tmp/hearth-compare-results.jsonl}
sizes=(
	--login-n "${BENCH_LOGIN_N:-500}" --login-rate "${BENCH_LOGIN_RATE:-200}"
	--idle-n "${BENCH_IDLE_N:-2000}" --idle-hold "${BENCH_IDLE_HOLD:-5s}"
	--chat-pairs "${BENCH_CHAT_PAIRS:-50}" --chat-duration "${BENCH_CHAT_DURATION:-10s}" --chat-window "${BENCH_CHAT_WINDOW:-4}"
	--fanout-k "${BENCH_FANOUT_K:-200}" --fanout-changes "${BENCH_FANOUT_CHANGES:-5}"
	--muc-r "${BENCH_MUC_R:-50}" --muc-duration "${BENCH_MUC_DURATION:-10s}" --muc-window "${BENCH_MUC_WINDOW:-4}"
	--parallel "${BENCH_PARALLEL:-64}"
)
# shellcheck disable=SC2206
extra=(${BENCH_EXTRA:-})

log() { printf '%s compare: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -n ${BENCH_WORK:-} ]]; then
	work=$BENCH_WORK
	mkdir -p "$work"
else
	work=$(mktemp -d /tmp/hearth-compare.XXXXXX)
fi
work=$(cd "$work" && pwd)
chmod 755 "$work"
running=()
cleanup() {
	for k in "${running[@]}"; do "$peer" stop "$k" "$work/$k" || true; done
	if [[ -z ${BENCH_WORK:-} && -z ${BENCH_KEEP:-} ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "installing peers"
bash "$repo/bench/testdeps.sh" >/dev/null

log "building hearth-bench"
mkdir -p "$work/bin"
go build -o "$work/bin/hearth-bench" ./cmd/hearth-bench
bench=$work/bin/hearth-bench

has_hearth=
if [[ " $peers " == *" hearth "* ]]; then
	if [[ -d cmd/hearth ]] && go build -o "$work/bin/hearth" ./cmd/hearth 2>"$work/hearth-build.log"; then
		has_hearth=1
		export HEARTH_BIN=$work/bin/hearth
	else
		log "hearth does not build yet (see $work/hearth-build.log): comparing the peers only"
		peers=${peers//hearth/}
	fi
fi

"$peer" cert "$work" "$domain"
export CERT=$work/cert.pem KEY=$work/key.pem

port_of() {
	case $1 in hearth) echo $((port_base)) ;; prosody) echo $((port_base + 10)) ;; ejabberd) echo $((port_base + 20)) ;; esac
}

start_peer() { # KIND; sets pid (not in a subshell: running must persist for cleanup)
	local k=$1 port
	port=$(port_of "$k")
	if [[ $k == hearth && ! -e $work/hearth/data ]]; then
		mkdir -p "$work/hearth/data"
		# Accounts are created by in-band registration, like on the peers.
		"$HEARTH_BIN" prop set register.open true --data "$work/hearth/data" >/dev/null 2>&1 ||
			log "hearth: could not open registration (accounts will use 'hearth user add')"
	fi
	running+=("$k")
	pid=$("$peer" start "$k" "$work/$k" "$port" "$domain") || return 1
}

stop_peer() {
	local k=$1
	"$peer" stop "$k" "$work/$k"
	local keep=()
	for x in "${running[@]}"; do [[ $x == "$k" ]] || keep+=("$x"); done
	running=("${keep[@]+"${keep[@]}"}")
}

common() { # KIND
	local k=$1
	local args=(--addr "127.0.0.1:$(port_of "$k")" --domain "$domain" --label "$k"
		--scram-cache "$work/$k.keys" "${sizes[@]}" "${extra[@]+"${extra[@]}"}")
	if [[ $k == hearth && -n ${BENCH_HEARTH_STATS_URL:-} ]]; then args+=(--stats-url "$BENCH_HEARTH_STATS_URL"); fi
	printf '%s\n' "${args[@]}"
}

: >"$work/results.jsonl"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Accounts (once per server; the data directories live through all rounds).
for k in $peers; do
	log "$k: starting and creating accounts"
	start_peer "$k" || { log "$k did not start: no accounts"; continue; }
	mapfile -t args < <(common "$k")
	"$bench" accounts "${args[@]}" --create auto \
		--create-hook "$peer adduser $k $work/$k {user} {password} $domain" >>"$work/accounts.jsonl" ||
		log "$k: account creation reported an error (see $work/accounts.jsonl)"
	tail -n 1 "$work/accounts.jsonl" | cut -c1-400 >&2
	stop_peer "$k"
done

read -r -a order <<<"$peers"
for ((r = 1; r <= rounds; r++)); do
	n=${#order[@]}
	for ((j = 0; j < n; j++)); do
		k=${order[$(((j + r - 1) % n))]}
		log "round $r/$rounds: $k"
		if ! start_peer "$k"; then
			log "$k did not start in round $r"
			printf '{"scenario":"start","server":"%s","round":%d,"ok":false,"error":"server did not start","metrics":{}}\n' "$k" "$r" >>"$work/results.jsonl"
			stop_peer "$k" || true
			continue
		fi
		mapfile -t args < <(common "$k")
		"$bench" run "${args[@]}" --pid "$pid" --round "$r" --scenarios "$scenarios" >>"$work/results.jsonl" ||
			log "$k: hearth-bench exited with an error"
		stop_peer "$k"
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$work/results.jsonl" "$results"
log "raw results: $results"

# Metadata for the report.
ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "not installed"; }
hearth_ver="not built"
if [[ -n $has_hearth ]]; then
	hearth_ver="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || hearth_ver+=" (with uncommitted changes)"
fi
settings=$(printf '%s\n' "${sizes[@]}" | paste -sd' ')
cat >"$work/meta.json" <<EOF
{
  "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
  "command": "bench/compare.sh (BENCH_ROUNDS=$rounds)",
  "machine": {
    "nproc": $(nproc),
    "memory": "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)",
    "kernel": "$(uname -r)",
    "cpu": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
    "load average before/after": "$load_before / $load_after"
  },
  "versions": {
    "hearth": "$hearth_ver",
    "prosody": "$(ver prosody)",
    "ejabberd": "$(ver ejabberd)",
    "go": "$(go env GOVERSION)"
  },
  "settings": {"hearth-bench": "$settings"},
  "caveats": [
    "Client and server share the same $(nproc) cores over loopback; each result line records both CPU times (client_cpu_*, server_cpu_*). Server CPU per operation is the fairest column; throughput also depends on how much CPU the client leaves.",
    "Only the measured server runs; it is restarted before each round, so the idle figure is taken on a fresh process after a warm-up of 100 logins.",
    "Prosody is single-threaded (one core at most); ejabberd and hearth can use every core.",
    "Same certificate (ECDSA P-256), TLS key exchange X25519 (the client does not offer post-quantum hybrids, which only the Go server would pick), SCRAM-SHA-256 with stored keys on all three; the client caches salted passwords as real clients do, so logins measure the server, not PBKDF2.",
    "Peer settings (bench/peers/): no rate limits or shapers, no message archiving, no s2s, no HTTP, warnings-only logging; registration open for account setup. hearth runs with its defaults apart from disabled listeners that the bench does not use.",
    "Server CPU comes from /proc/PID/stat in 10 ms ticks: per-operation CPU of short phases (fanout, join storm) is coarse.",
    "VmRSS of garbage-collected runtimes (Go, Erlang, Lua) moves with their collectors: memory per session is only meaningful for thousands of sessions.",
    "The machine may be shared with other work: the load average before and after is recorded above."
  ]
}
EOF
cp "$work/meta.json" "${results%.jsonl}.meta.json"
if [[ -n $doc ]]; then
	"$bench" report --results "$work/results.jsonl" --meta "$work/meta.json" --doc "$doc"
	log "updated $doc"
else
	"$bench" report --results "$work/results.jsonl" --meta "$work/meta.json"
fi
