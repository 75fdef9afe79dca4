#!/usr/bin/env bash
# Start, stop and administer one benchmark peer (hearth, Prosody or ejabberd) on loopback,
# with its configuration rendered from this folder into its own directory.
#
#   peer.sh cert DIR DOMAIN                 self-signed ECDSA P-256 cert for DOMAIN and
#                                           conference.DOMAIN -> DIR/cert.pem, DIR/key.pem
#   peer.sh start KIND DIR PORT [DOMAIN]    start in the background, wait for the c2s port,
#                                           print the server process id
#   peer.sh stop KIND DIR                   stop it and wait until it is gone
#   peer.sh adduser KIND DIR USER PASS [DOMAIN]   create an account with the peer's own tool
#
# KIND is hearth, prosody or ejabberd. CERT and KEY (environment) select a certificate;
# by default DIR/cert.pem and DIR/key.pem are generated. hearth needs HEARTH_BIN (a built
# binary); HEARTH_ADMIN sets its admin listener (default off). PEER_TLS=optional lets
# Prosody accept clients without TLS, PLAIN included (to test hearth-bench --no-tls).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "peer.sh: $*" >&2; exit 1; }

wait_port() { # PORT SECONDS PIDTOCHECK(optional)
	local port=$1 secs=$2 pid=${3:-}
	for ((i = 0; i < secs * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
		sleep 0.1
	done
	return 1
}

listener_pid() { # PORT
	ss -Htlnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

render() { # TEMPLATE OUT DIR PORT DOMAIN CERT KEY
	local require=true clear=false
	if [[ ${PEER_TLS:-required} == optional ]]; then require=false clear=true; fi
	sed -e "s|@DIR@|$3|g" -e "s|@PORT@|$4|g" -e "s|@DOMAIN@|$5|g" \
		-e "s|@CERT@|$6|g" -e "s|@KEY@|$7|g" \
		-e "s|@REQUIRE_TLS@|$require|g" -e "s|@PLAIN_IN_CLEAR@|$clear|g" "$1" >"$2"
}

ejabberdctl_for() { # DIR
	local dir=$1
	echo "$dir/ejabberdctl" --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" \
		--logs "$dir/logs" --spool "$dir/spool" --node "$(cat "$dir/node")"
}

cmd=${1:-}
case $cmd in
cert)
	dir=$2 domain=$3
	mkdir -p "$dir"
	if [[ ! -s $dir/cert.pem || ! -s $dir/key.pem ]]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
			-subj "/CN=$domain" -addext "subjectAltName=DNS:$domain,DNS:conference.$domain" \
			-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	fi
	;;
start)
	kind=$2 dir=$3 port=$4 domain=${5:-localhost}
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "port $port is already in use (by: $(ss -Htlnp "sport = :$port" | sed -n 's/.*users:((\(.*\)))/\1/p'))"
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	cert=${CERT:-} key=${KEY:-}
	if [[ -z $cert ]]; then
		"$0" cert "$dir" "$domain"
		cert=$dir/cert.pem key=$dir/key.pem
	fi
	# Every peer gets the same, large descriptor limit.
	ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	case $kind in
	prosody)
		command -v prosody >/dev/null || die "prosody is not installed (bench/testdeps.sh)"
		mkdir -p "$dir/data" "$dir/certs"
		render "$here/prosody.cfg.lua" "$dir/prosody.cfg.lua" "$dir" "$port" "$domain" "$cert" "$key"
		prosody --config "$dir/prosody.cfg.lua" -F >"$dir/stdout.log" 2>&1 </dev/null &
		pid=$!
		;;
	ejabberd)
		command -v ejabberdctl >/dev/null || die "ejabberd is not installed (bench/testdeps.sh)"
		mkdir -p "$dir/spool" "$dir/logs" "$dir/modules.d"
		# ejabberd wants the certificate and its key in one file.
		cat "$cert" "$key" >"$dir/cert.pem.tmp" && mv "$dir/cert.pem.tmp" "$dir/cert.pem"
		render "$here/ejabberd.yml" "$dir/ejabberd.yml" "$dir" "$port" "$domain" "$cert" "$key"
		render "$here/ejabberdctl.cfg" "$dir/ejabberdctl.cfg" "$dir" "$port" "$domain" "$cert" "$key"
		echo "bench$port@localhost" >"$dir/node"
		# Debian's ejabberdctl switches to the ejabberd user through su, whose PAM limits
		# put the node back at 1,024 descriptors (about 990 sessions). A copy that runs the
		# node as the current user keeps the limit raised above.
		sed 's/^INSTALLUSER=ejabberd$/INSTALLUSER=/' "$(command -v ejabberdctl)" >"$dir/ejabberdctl"
		chmod +x "$dir/ejabberdctl"
		$(ejabberdctl_for "$dir") start >"$dir/stdout.log" 2>&1 </dev/null
		pid=
		;;
	hearth)
		[[ -x ${HEARTH_BIN:-} ]] || die "HEARTH_BIN must point to a built hearth binary"
		mkdir -p "$dir/data"
		"$HEARTH_BIN" --data "$dir/data" --domain "$domain" --c2s "127.0.0.1:$port" \
			--c2s-tls off --http off --admin "${HEARTH_ADMIN:-off}" --turn off --media off \
			--cert "$cert" --key "$key" >"$dir/hearth.log" 2>&1 </dev/null &
		pid=$!
		echo "$pid" >"$dir/hearth.pid"
		;;
	*) die "unknown peer kind $kind" ;;
	esac
	if ! wait_port "$port" 90 "$pid"; then
		echo "peer.sh: $kind did not start listening on $port; its logs:" >&2
		tail -n 30 "$dir"/*.log "$dir"/logs/*.log 2>/dev/null >&2 || true
		exit 1
	fi
	lp=$(listener_pid "$port")
	# The process that really serves (beam.smp behind ejabberdctl), for stop.
	echo "${lp:-$pid}" >"$dir/server.pid"
	echo "${lp:-$pid}"
	;;
stop)
	kind=$2 dir=$3
	case $kind in
	prosody | hearth | ejabberd) ;;
	*) die "unknown peer kind $kind" ;;
	esac
	[[ -s $dir/server.pid ]] || exit 0
	pid=$(cat "$dir/server.pid")
	if [[ $kind == ejabberd ]]; then
		$(ejabberdctl_for "$dir") stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	else
		kill "$pid" 2>/dev/null || true
	fi
	# Wait for the process itself, not for its wrapper: the next server may need the port
	# (ejabberd can take a while to flush a large Mnesia database).
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then rm -f "$dir/server.pid"; exit 0; fi
		sleep 0.1
	done
	echo "peer.sh: $kind (pid $pid) still running after 60 s: killing it" >&2
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/server.pid"
	;;
adduser)
	kind=$2 dir=$3 user=$4 pass=$5 domain=${6:-localhost}
	case $kind in
	prosody) prosodyctl --config "$dir/prosody.cfg.lua" register "$user" "$domain" "$pass" ;;
	ejabberd) $(ejabberdctl_for "$dir") register "$user" "$domain" "$pass" ;;
	hearth) "$HEARTH_BIN" user add "$user" "$pass" --data "$dir/data" ;;
	*) die "unknown peer kind $kind" ;;
	esac
	;;
*)
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
