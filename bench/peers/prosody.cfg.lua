-- Prosody configuration for hearth's comparison benchmark (bench/compare.sh).
-- bench/peers/peer.sh fills in the @PLACEHOLDERS@. The aim is a server doing the same
-- work as hearth for the bench's scenarios: c2s with STARTTLS and SCRAM, roster and
-- presence, MUC, in-band registration for account setup; no rate limits, no archiving,
-- no s2s, no HTTP.

run_as_root = true -- the benchmark runs as root in a throw-away directory
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
certificates = "@DIR@/certs" -- empty: the certificate is named below
plugin_paths = {}
admins = {}

modules_enabled = {
	"roster";
	"saslauth";
	"tls";
	"disco";
	"ping";
	"register";
	"posix";
}
-- Prosody loads presence, message, iq, offline, c2s and s2s by itself; no s2s here.
modules_disabled = { "s2s"; "s2s_auth_certs" }

c2s_ports = { @PORT@ }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = {}
s2s_ports = {}
http_ports = {}
https_ports = {}

-- Same listen backlog as the other peers (the kernel caps it at net.core.somaxconn):
-- a login storm must not be decided by SYN drops.
network_settings = {
	tcp_backlog = 4096;
}

-- Both true/false by default; PEER_TLS=optional (peer.sh) makes them false/true so that
-- hearth-bench --no-tls can be tested, PLAIN included.
c2s_require_encryption = @REQUIRE_TLS@
allow_unencrypted_plain_auth = @PLAIN_IN_CLEAR@
authentication = "internal_hashed"
-- Offer SCRAM-SHA-256 like hearth and ejabberd, so every peer runs the same mechanism.
password_hash = "SHA-256"

allow_registration = true
registration_allowlist = { "127.0.0.0/8" }
-- No registration throttle (mod_register_limits has none unless configured).

-- Warnings only: logging every connection at info level would measure the disk.
log = { warn = "@DIR@/prosody.log" }

ssl = {
	certificate = "@CERT@";
	key = "@KEY@";
}

VirtualHost "@DOMAIN@"
	ssl = {
		certificate = "@CERT@";
		key = "@KEY@";
	}

Component "conference.@DOMAIN@" "muc"
	ssl = {
		certificate = "@CERT@";
		key = "@KEY@";
	}
	-- Rooms are created through the instant-room flow (XEP-0045 §10.1.2), as with the
	-- other peers; history is not requested by the bench's joins.
	muc_room_locking = true
	restrict_room_creation = false
	muc_max_occupants = 1000000
