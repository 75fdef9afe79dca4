package node

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// A pion PeerConnection stands in for a browser: loopback-only ICE, no
// interceptors (the test reads RTCP itself), the codecs and payload types
// the test chooses.

var (
	opus  = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}
	vp8At = func(pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: pt}
	}
	h264At = func(pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: pt}
	}
)

func newPeer(t testing.TB, video ...webrtc.RTPCodecParameters) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	for _, v := range video {
		if err := me.RegisterCodec(v, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// negotiate runs the browser side of OpenVidu's flow against an endpoint:
// offer -> processOffer -> answer, then trickle ICE both ways.
func negotiate(t testing.TB, c *client, ep string, pc *webrtc.PeerConnection) {
	t.Helper()
	c.subscribe(ep, "IceCandidateFound", "IceGatheringDone")
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		if _, err := c.call("invoke", map[string]any{"object": ep, "operation": "addIceCandidate", "operationParams": map[string]any{"candidate": cand.ToJSON()}}); err != nil {
			t.Errorf("addIceCandidate: %v", err)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer := c.invoke(ep, "processOffer", map[string]any{"offer": offer.SDP}).(string)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("answer from node: %v\n%s", err, answer)
	}
	c.invoke(ep, "gatherCandidates", nil)
	for {
		e := c.waitEvent(func(e event) bool {
			return e.Object == ep && (e.Type == "IceCandidateFound" || e.Type == "IceGatheringDone")
		})
		if e.Type == "IceGatheringDone" {
			return
		}
		cand := e.Data["candidate"].(map[string]any)
		mid := cand["sdpMid"].(string)
		idx := uint16(cand["sdpMLineIndex"].(float64))
		if err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: cand["candidate"].(string), SDPMid: &mid, SDPMLineIndex: &idx}); err != nil {
			t.Fatalf("candidate from node %v: %v", cand, err)
		}
	}
}

// publisher sends VP8 (or H264) frames and Opus packets and counts the
// PLIs it receives.
type publisher struct {
	pc    *webrtc.PeerConnection
	plis  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
	label string
}

func newPublisher(t testing.TB, label string, video webrtc.RTPCodecParameters) *publisher {
	t.Helper()
	p := &publisher{pc: newPeer(t, video), stop: make(chan struct{}), label: label}
	vt, err := webrtc.NewTrackLocalStaticSample(video.RTPCodecCapability, "video", label)
	if err != nil {
		t.Fatal(err)
	}
	at, err := webrtc.NewTrackLocalStaticSample(opus.RTPCodecCapability, "audio", label)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := p.pc.AddTrack(vt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.pc.AddTrack(at); err != nil {
		t.Fatal(err)
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := vs.ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				if _, ok := pk.(*rtcp.PictureLossIndication); ok {
					p.plis.Add(1)
				}
			}
		}
	}()
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			// A small frame: one RTP packet each, its bytes recognisable
			// at the subscriber. H264 frames are one NAL unit (IDR type 5).
			frame := []byte(fmt.Sprintf("\x65%s-frame-%06d-", label, i))
			frame = append(frame, bytes.Repeat([]byte{0xAB}, 300)...)
			if video.MimeType == webrtc.MimeTypeH264 {
				frame = append([]byte{0, 0, 0, 1}, frame...)
			}
			_ = vt.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
			_ = at.WriteSample(media.Sample{Data: []byte{0xF8, 0xFF, 0xFE}, Duration: 20 * time.Millisecond})
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *publisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	_ = p.pc.Close()
	p.wg.Wait()
}

// subscriber records what arrives on its tracks.
type subscriber struct {
	pc    *webrtc.PeerConnection
	mu    sync.Mutex
	video []*rtp.Packet
	audio int
	codec webrtc.RTPCodecParameters
	ssrc  webrtc.SSRC
}

func newSubscriber(t testing.TB, video ...webrtc.RTPCodecParameters) *subscriber {
	t.Helper()
	s := &subscriber{pc: newPeer(t, video...)}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := s.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	s.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			s.mu.Lock()
			s.codec, s.ssrc = tr.Codec(), tr.SSRC()
			s.mu.Unlock()
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			s.mu.Lock()
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				s.video = append(s.video, pkt)
			} else {
				s.audio++
			}
			s.mu.Unlock()
		}
	})
	t.Cleanup(func() { _ = s.pc.Close() })
	return s
}

// videoWith counts the video packets whose payload contains the marker.
func (s *subscriber) videoWith(marker string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.video {
		if bytes.Contains(p.Payload, []byte(marker)) {
			n++
		}
	}
	return n
}

func (s *subscriber) snapshot() []*rtp.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*rtp.Packet(nil), s.video...)
}

// sendPLI asks the node for a key frame on the received video track.
func (s *subscriber) sendPLI() error {
	s.mu.Lock()
	ssrc := s.ssrc
	s.mu.Unlock()
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
}
