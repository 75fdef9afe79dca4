// Package node is hearth's embedded media node: a WebSocket JSON-RPC 2.0 server
// speaking the Kurento Media Server protocol (the subset hearth's video gateway and
// npm kurento-client 7.x use; see shared/protocols/video.md sections 5 and 6) on top
// of pion/webrtc.
//
// Each WebRtcEndpoint is one pion PeerConnection. Media is forwarded, never
// transcoded: an endpoint's received RTP is fanned out to every endpoint connected
// downstream of it (directly or through PassThrough elements), with SSRC, payload
// type, sequence number and timestamp rewritten per sink and the payload shared by
// all sinks. Picture loss indications from sinks travel back to the source.
//
// Protocol references: JSON-RPC 2.0 (error codes -32700, -32600, -32601, -32602),
// Kurento's kurento_protocol.rst and KurentoException.hpp (error codes 40xxx),
// RFC 8829 (JSEP offer/answer), RFC 8838 (trickle ICE), RFC 4585 §6.3.1 (PLI),
// RFC 5104 §4.3.1 (FIR) and draft-alvestrand-rmcat-remb (REMB).
package node
