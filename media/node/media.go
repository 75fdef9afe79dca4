package node

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// nackHistory is how many packets per outgoing stream the NACK responder can
// resend. 256 video packets are a few seconds at 1 Mbit/s, far more than a
// retransmission is useful for, and the payloads are shared with every other
// sink of the same source (no copies), so the cost is mostly headers.
const nackHistory = 256

// videoFeedback is what every video codec announces: REMB for the publisher's
// bandwidth estimate, FIR/PLI for key frames, NACK for retransmissions.
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
}

// codecs are the codecs the node forwards. No RTX, RED or FEC: retransmissions
// go on the media SSRC, which keeps forwarding a pure header rewrite.
func codecs() (audio, video []webrtc.RTPCodecParameters) {
	audio = []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	}
	v := func(mime, fmtp string, pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: videoFeedback}, PayloadType: pt}
	}
	video = []webrtc.RTPCodecParameters{
		v(webrtc.MimeTypeVP8, "", 96),
		v(webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 102),
		v(webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 104),
		v(webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f", 106),
		v(webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", 108),
		v(webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", 110),
		v(webrtc.MimeTypeVP9, "profile-id=0", 98),
		v(webrtc.MimeTypeAV1, "", 45),
	}
	return audio, video
}

// newAPI builds the one webrtc.API the node's PeerConnections share: our
// codecs, an explicit interceptor registry (NACK generator, NACK responder
// without packet copies, RTCP sender and receiver reports; pion's default
// registry would copy every packet per subscriber, see LIBRARIES.md) and a
// SettingEngine with one UDP mux for all PeerConnections.
func newAPI(c Config, udp net.PacketConn) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	audio, video := codecs()
	for _, a := range audio {
		if err := me.RegisterCodec(a, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("medianode: register %s: %w", a.MimeType, err)
		}
	}
	for _, v := range video {
		if err := me.RegisterCodec(v, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("medianode: register %s: %w", v.MimeType, err)
		}
	}

	lf := &slogLoggerFactory{log: c.Log}
	reg := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("medianode: nack generator: %w", err)
	}
	resp, err := nack.NewResponderInterceptor(nack.DisableCopy(), nack.ResponderSize(nackHistory), nack.WithResponderLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("medianode: nack responder: %w", err)
	}
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("medianode: receiver reports: %w", err)
	}
	sr, err := report.NewSenderInterceptor(report.WithSenderLoggerFactory(lf))
	if err != nil {
		return nil, fmt.Errorf("medianode: sender reports: %w", err)
	}
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	reg.Add(gen)
	reg.Add(resp)
	reg.Add(rr)
	reg.Add(sr)

	se := webrtc.SettingEngine{LoggerFactory: lf}
	// A universal mux also answers STUN server-reflexive discovery through the
	// same socket, so setStunServerAddress works without extra ports.
	mux := ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{Logger: lf.NewLogger("udpmux"), UDPConn: udp})
	se.SetICEUDPMux(mux)
	// Loopback candidates only when the node listens on loopback (a
	// development setup); a public node must not advertise 127.0.0.1.
	if ua, ok := udp.LocalAddr().(*net.UDPAddr); ok && ua.IP.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	nets := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if ua, ok := udp.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() == nil {
		nets = []webrtc.NetworkType{webrtc.NetworkTypeUDP6, webrtc.NetworkTypeUDP4}
	}
	se.SetNetworkTypes(nets)
	if c.RemoteIPFilter != nil {
		se.SetRemoteIPFilter(c.RemoteIPFilter)
	}
	if c.PublicIP != "" {
		if net.ParseIP(c.PublicIP) == nil {
			return nil, fmt.Errorf("medianode: PublicIP %q is not an IP address", c.PublicIP)
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: []string{c.PublicIP}, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("medianode: public ip: %w", err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// slogLoggerFactory routes pion's logs to slog; pion's debug and trace
// chatter is dropped, its warnings and errors kept.
type slogLoggerFactory struct{ log *slog.Logger }

func (f *slogLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return &slogLeveled{log: f.log.With("pion", scope)}
}

type slogLeveled struct{ log *slog.Logger }

func (l *slogLeveled) Trace(string)                   {}
func (l *slogLeveled) Tracef(string, ...any)          {}
func (l *slogLeveled) Debug(string)                   {}
func (l *slogLeveled) Debugf(string, ...any)          {}
func (l *slogLeveled) Info(msg string)                { l.log.Debug(msg) }
func (l *slogLeveled) Infof(format string, a ...any)  { l.log.Debug(fmt.Sprintf(format, a...)) }
func (l *slogLeveled) Warn(msg string)                { l.log.Warn(msg) }
func (l *slogLeveled) Warnf(format string, a ...any)  { l.log.Warn(fmt.Sprintf(format, a...)) }
func (l *slogLeveled) Error(msg string)               { l.log.Error(msg) }
func (l *slogLeveled) Errorf(format string, a ...any) { l.log.Error(fmt.Sprintf(format, a...)) }

// codecMatch tells whether a sink's negotiated codec can carry a source's
// codec unchanged: same MIME type and clock rate, and for codecs whose fmtp
// changes the bitstream, the same profile and packetization.
func codecMatch(src, sink webrtc.RTPCodecCapability) bool {
	if !strings.EqualFold(src.MimeType, sink.MimeType) || src.ClockRate != sink.ClockRate {
		return false
	}
	switch strings.ToLower(src.MimeType) {
	case strings.ToLower(webrtc.MimeTypeH264):
		sp, kp := fmtp(src.SDPFmtpLine), fmtp(sink.SDPFmtpLine)
		if def(sp["packetization-mode"], "0") != def(kp["packetization-mode"], "0") {
			return false
		}
		// profile_idc (the first two hex digits) decides which decoder tools
		// the stream may use; the constraint flags between baseline and
		// constrained baseline make no difference to real encoders, and the
		// level only caps resolution and bitrate (RFC 6184 §8.1).
		a, b := strings.ToLower(def(sp["profile-level-id"], "42001f")), strings.ToLower(def(kp["profile-level-id"], "42001f"))
		if len(a) < 2 || len(b) < 2 {
			return a == b
		}
		return a[:2] == b[:2]
	case strings.ToLower(webrtc.MimeTypeVP9):
		return def(fmtp(src.SDPFmtpLine)["profile-id"], "0") == def(fmtp(sink.SDPFmtpLine)["profile-id"], "0")
	case strings.ToLower(webrtc.MimeTypeAV1):
		return def(fmtp(src.SDPFmtpLine)["profile"], "0") == def(fmtp(sink.SDPFmtpLine)["profile"], "0")
	}
	return true
}

func fmtp(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			m[strings.ToLower(k)] = v
		}
	}
	return m
}

func def(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
