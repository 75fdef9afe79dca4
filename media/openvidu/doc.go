// Package openvidu is hearth's OpenVidu 2.x compatible video gateway: the REST API
// (/openvidu/api) that openvidu-node-client drives, the JSON-RPC signalling WebSocket
// (/openvidu) that openvidu-browser speaks, OpenVidu's webhooks, and the session
// manager behind them, which builds the media graph on Kurento-protocol media nodes
// (hearth's embedded node or external KMS) through media/kurento.
//
// The model is OpenVidu's own: a session is created without media resources (REST
// POST, or implicitly for a MUC room) and becomes active at its first joinRoom, when
// it gets one MediaPipeline on the least-loaded media node; each participant then has
// one publishing WebRtcEndpoint (fanned out through a PassThrough) and one
// subscribing WebRtcEndpoint per remote publisher. Every way a participant or a
// session ends goes through one funnel (endParticipant, closeSession) that releases
// media and emits the same notifications and webhooks, in the order of
// protocols/video.md §4.4 and §7.2.
//
// Wire formats follow hearth's protocols/video.md, which cites OpenVidu v2.32.2:
// §1 REST, §2 tokens, §3 signalling, §4 webhooks and end reasons, §7 lifecycle rules,
// §10 the minimum openvidu-browser needs; Kurento calls follow §5. Tokens also carry
// the participant's coturn-style TURN REST credentials (draft-uberti-behave-turn-rest-00,
// as OpenVidu did up to 2.16), which joinRoom repeats in customIceServers.
package openvidu
