package node

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestCodecMatch(t *testing.T) {
	h264 := func(fmtp string) webrtc.RTPCodecCapability {
		return webrtc.RTPCodecCapability{MimeType: "video/H264", ClockRate: 90000, SDPFmtpLine: fmtp}
	}
	cases := []struct {
		name      string
		src, sink webrtc.RTPCodecCapability
		want      bool
	}{
		{"vp8 case-insensitive", webrtc.RTPCodecCapability{MimeType: "video/VP8", ClockRate: 90000}, webrtc.RTPCodecCapability{MimeType: "video/vp8", ClockRate: 90000}, true},
		{"vp8 vs h264", webrtc.RTPCodecCapability{MimeType: "video/VP8", ClockRate: 90000}, h264(""), false},
		{"h264 constrained baseline vs baseline", h264("packetization-mode=1;profile-level-id=42e01f"), h264("packetization-mode=1;profile-level-id=42001f"), true},
		{"h264 level differs", h264("packetization-mode=1;profile-level-id=42e01f"), h264("packetization-mode=1;profile-level-id=42e034"), true},
		{"h264 packetization differs", h264("packetization-mode=1;profile-level-id=42e01f"), h264("packetization-mode=0;profile-level-id=42e01f"), false},
		{"h264 high vs baseline", h264("packetization-mode=1;profile-level-id=640032"), h264("packetization-mode=1;profile-level-id=42e01f"), false},
		{"vp9 profiles", webrtc.RTPCodecCapability{MimeType: "video/VP9", ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, webrtc.RTPCodecCapability{MimeType: "video/VP9", ClockRate: 90000, SDPFmtpLine: "profile-id=2"}, false},
		{"opus", webrtc.RTPCodecCapability{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}, webrtc.RTPCodecCapability{MimeType: "audio/OPUS", ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10"}, true},
		{"clock rate", webrtc.RTPCodecCapability{MimeType: "audio/PCMU", ClockRate: 8000}, webrtc.RTPCodecCapability{MimeType: "audio/PCMU", ClockRate: 16000}, false},
	}
	for _, c := range cases {
		if got := codecMatch(c.src, c.sink); got != c.want {
			t.Errorf("%s: codecMatch = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestICEServers: KMS's setTurnUrl format, with a REST username containing
// ':', and per-endpoint settings replacing the node's defaults of their kind.
func TestICEServers(t *testing.T) {
	n := &Node{cfg: Config{ICEServers: func() []webrtc.ICEServer {
		return []webrtc.ICEServer{
			{URLs: []string{"stun:127.0.0.1:3478"}},
			{URLs: []string{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}, Username: "d", Credential: "p"},
		}
	}}}
	e := newEndpoint(n, objectBase{id: "x"}, false, false)
	if got := e.iceServersLocked(); len(got) != 2 {
		t.Fatalf("defaults: %+v", got)
	}
	e.turnURL = "1700086400:kms:c2VjcmV0PQ==@127.0.0.2:3479?transport=tcp"
	got := e.iceServersLocked()
	if len(got) != 2 || got[0].URLs[0] != "stun:127.0.0.1:3478" {
		t.Fatalf("turn override: %+v", got)
	}
	turn := got[1]
	if turn.URLs[0] != "turn:127.0.0.2:3479?transport=tcp" || turn.Username != "1700086400:kms" || turn.Credential != "c2VjcmV0PQ==" {
		t.Errorf("turnUrl parsed as %+v", turn)
	}
	e.stunAddr, e.stunPort = "127.0.0.3", 0
	got = e.iceServersLocked()
	if len(got) != 2 || got[0].URLs[0] != "stun:127.0.0.3:3478" {
		t.Errorf("stun override: %+v", got)
	}
	e.turnURL = "u:p@127.0.0.4:5349?transport=tls"
	if got := e.iceServersLocked(); got[len(got)-1].URLs[0] != "turns:127.0.0.4:5349?transport=tcp" {
		t.Errorf("tls: %+v", got)
	}
}

// TestLimitsAndCodecMismatch: MaxEndpoints answers NOT_ENOUGH_RESOURCES, and
// a sink that cannot take its source's codec gets an Error event.
func TestLimitsAndCodecMismatch(t *testing.T) {
	_, url := startNode(t, func(c *Config) { c.MaxEndpoints = 2 })
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	pubEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	subEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	if _, err := c.call("create", map[string]any{"type": "WebRtcEndpoint", "constructorParams": map[string]any{"mediaPipeline": pipe}}); err == nil || err.Code != 40009 {
		t.Errorf("third endpoint: %v", err)
	}
	c.subscribe(subEP, "Error")
	pub := newPublisher(t, "h264only", h264At(102))
	negotiate(t, c, pubEP, pub.pc)
	sub := newSubscriber(t, vp8At(96))
	negotiate(t, c, subEP, sub.pc)
	c.invoke(pubEP, "connect", map[string]any{"sink": subEP})
	e := c.waitEvent(isEvent(subEP, "Error", "type", "UNSUPPORTED_MEDIA_TYPE"))
	if e.Data["errorCode"] != float64(40005) {
		t.Errorf("Error event %v", e.Data)
	}
	if n := sub.videoWith("h264only-frame-"); n != 0 {
		t.Errorf("VP8-only subscriber got %d H.264 packets", n)
	}
}

type discardWriter struct{ n int }

func (w *discardWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.n++
	return h.MarshalSize() + len(p), nil
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkSinkWrite is the node's own per-sink cost of forwarding one
// packet (payload type mapping, header rewrite, continuity bookkeeping),
// without pion's SRTP and socket write. One allocation: the header the
// no-copy NACK responder keeps.
func BenchmarkSinkWrite(b *testing.B) {
	n := &Node{}
	src := newEndpoint(n, objectBase{id: "src"}, false, false)
	dst := newEndpoint(n, objectBase{id: "dst"}, false, false)
	dst.upstream[kindVideo].Store(src)
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	st := newSinkTrack(dst, kindVideo)
	st.writer, st.ssrc, st.codecs = &discardWriter{}, 1234, []webrtc.RTPCodecParameters{{RTPCodecCapability: vp8.RTPCodecCapability, PayloadType: 120}}
	dst.flowOut[kindVideo].Store(true)
	s := &sourceTrack{ep: src, kind: kindVideo, codecs: []webrtc.RTPCodecParameters{vp8}}
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 42}
	payload := make([]byte, 1100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.SequenceNumber = uint16(i)
		h.Timestamp = uint32(i / 4 * 3000)
		st.write(s, &h, payload)
	}
}
