package node

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestForwarding: a publisher's VP8 and Opus reach a subscriber through the
// node, a subscriber's PLI reaches the publisher, the events a gateway
// listens to arrive, and releasing the pipeline frees every goroutine.
func TestForwarding(t *testing.T) {
	n, url := startNode(t, nil)
	c := dial(t, url)
	c.must("ping", nil)
	baseline := runtime.NumGoroutine()

	pipe := c.create("MediaPipeline", nil)
	pubEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	subEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	for _, ep := range []string{pubEP, subEP} {
		c.subscribe(ep, "IceComponentStateChanged", "MediaFlowInStateChanged", "MediaFlowOutStateChanged", "MediaStateChanged", "Error")
	}

	pub := newPublisher(t, "pub", vp8At(96))
	negotiate(t, c, pubEP, pub.pc)
	sub := newSubscriber(t, vp8At(96))
	negotiate(t, c, subEP, sub.pc)
	c.waitEvent(isEvent(pubEP, "MediaFlowInStateChanged", "state", "FLOWING", "mediaType", "VIDEO"))
	c.invoke(pubEP, "connect", map[string]any{"sink": subEP})

	waitFor(t, "forwarded video", func() bool { return sub.videoWith("pub-frame-") >= 10 })
	waitFor(t, "forwarded audio", func() bool { sub.mu.Lock(); defer sub.mu.Unlock(); return sub.audio >= 10 })
	if !strings.EqualFold(sub.codec.MimeType, webrtc.MimeTypeVP8) {
		t.Errorf("subscriber codec %s", sub.codec.MimeType)
	}
	for _, p := range sub.snapshot() {
		if p.PayloadType != uint8(sub.codec.PayloadType) || p.SSRC != uint32(sub.ssrc) {
			t.Fatalf("packet PT %d SSRC %d, negotiated PT %d SSRC %d", p.PayloadType, p.SSRC, sub.codec.PayloadType, sub.ssrc)
		}
	}
	c.waitEvent(isEvent(subEP, "MediaFlowOutStateChanged", "state", "FLOWING", "mediaType", "VIDEO"))
	c.waitEvent(isEvent(subEP, "MediaStateChanged", "newState", "CONNECTED"))
	c.waitEvent(isEvent(pubEP, "IceComponentStateChanged", "state", "CONNECTED"))
	if v := c.invoke(subEP, "isMediaFlowingOut", map[string]any{"mediaType": "VIDEO"}); v != true {
		t.Errorf("isMediaFlowingOut = %v", v)
	}

	// Connecting asked the publisher for a key frame; a PLI from the
	// subscriber asks again (the node lets one through per 200 ms).
	waitFor(t, "PLI on connect", func() bool { return pub.plis.Load() >= 1 })
	before := pub.plis.Load()
	waitFor(t, "subscriber's PLI at the publisher", func() bool {
		if err := sub.sendPLI(); err != nil {
			t.Fatalf("send PLI: %v", err)
		}
		return pub.plis.Load() > before
	})

	waitFor(t, "bitrate figures", func() bool { l := n.Load(); return l.BitrateIn > 0 && l.BitrateOut > 0 })
	if l := n.Load(); l.Endpoints != 2 || l.Pipelines != 1 {
		t.Errorf("Load = %+v", l)
	}
	load := c.invoke("manager_ServerManager", "getLoad", nil).(map[string]any)
	if load["endpoints"] != float64(2) {
		t.Errorf("getLoad = %v", load)
	}
	for _, op := range []string{"getLocalSessionDescriptor", "getRemoteSessionDescriptor"} {
		if sdp := c.invoke(subEP, op, nil).(string); !strings.HasPrefix(sdp, "v=0") {
			t.Errorf("%s = %q", op, sdp)
		}
	}

	// disconnect stops the flow to the subscriber.
	c.invoke(pubEP, "disconnect", map[string]any{"sink": subEP})
	c.waitEvent(isEvent(subEP, "MediaFlowOutStateChanged", "state", "NOT_FLOWING", "mediaType", "VIDEO"))

	c.must("release", map[string]any{"object": pipe})
	if l := n.Load(); l.Endpoints != 0 || l.Pipelines != 0 {
		t.Errorf("Load after release = %+v", l)
	}
	pub.close()
	_ = sub.pc.Close()
	waitGoroutines(t, baseline)
}

// TestFanOutAndSourceSwitch: one publisher reaches two subscribers through a
// PassThrough; then a subscriber is switched to a second publisher whose
// payload type differs, and sees one continuous stream in its own payload type.
func TestFanOutAndSourceSwitch(t *testing.T) {
	_, url := startNode(t, nil)
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	pt := c.create("PassThrough", map[string]any{"mediaPipeline": pipe})
	eps := make([]string, 4)
	for i := range eps {
		eps[i] = c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	}
	pub1 := newPublisher(t, "one", vp8At(96))
	negotiate(t, c, eps[0], pub1.pc)
	pub2 := newPublisher(t, "two", vp8At(100))
	negotiate(t, c, eps[1], pub2.pc)
	subA := newSubscriber(t, vp8At(120))
	negotiate(t, c, eps[2], subA.pc)
	subB := newSubscriber(t, vp8At(96))
	negotiate(t, c, eps[3], subB.pc)

	c.invoke(eps[0], "connect", map[string]any{"sink": pt})
	c.invoke(pt, "connect", map[string]any{"sink": eps[2]})
	c.invoke(pt, "connect", map[string]any{"sink": eps[3]})
	for _, s := range []*subscriber{subA, subB} {
		waitFor(t, "fan-out through the PassThrough", func() bool { return s.videoWith("one-frame-") >= 10 })
	}

	// Switch A to the second publisher: connect replaces A's source.
	c.invoke(eps[1], "connect", map[string]any{"sink": eps[2], "mediaType": "VIDEO"})
	waitFor(t, "second publisher at A", func() bool { return subA.videoWith("two-frame-") >= 10 })
	pkts := subA.snapshot()
	for i, p := range pkts {
		if p.PayloadType != 120 {
			t.Fatalf("packet %d has PT %d, A negotiated 120", i, p.PayloadType)
		}
		if i > 0 {
			if d := p.SequenceNumber - pkts[i-1].SequenceNumber; d == 0 || d > 50 {
				t.Fatalf("sequence jumps from %d to %d at packet %d (source switch must stay continuous)", pkts[i-1].SequenceNumber, p.SequenceNumber, i)
			}
			if p.SSRC != pkts[0].SSRC {
				t.Fatalf("SSRC changed")
			}
		}
	}
	// B still gets the first publisher only.
	before := subB.videoWith("one-frame-")
	waitFor(t, "B keeps its stream", func() bool { return subB.videoWith("one-frame-") > before+5 })
	if n := subB.videoWith("two-frame-"); n != 0 {
		t.Errorf("B got %d packets of the second publisher", n)
	}
}

// TestPayloadTypeRewrite: H.264 published with one payload type arrives
// with the subscriber's.
func TestPayloadTypeRewrite(t *testing.T) {
	_, url := startNode(t, nil)
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	pubEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	subEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	pub := newPublisher(t, "h264", h264At(102))
	negotiate(t, c, pubEP, pub.pc)
	sub := newSubscriber(t, vp8At(96), h264At(125))
	negotiate(t, c, subEP, sub.pc)
	c.invoke(pubEP, "connect", map[string]any{"sink": subEP})
	waitFor(t, "H.264 at the subscriber", func() bool { return sub.videoWith("h264-frame-") >= 5 })
	for _, p := range sub.snapshot() {
		if p.PayloadType != 125 {
			t.Fatalf("PT %d, want 125", p.PayloadType)
		}
	}
}

// TestLoopback: Kurento's hello-world connects an endpoint to itself.
func TestLoopback(t *testing.T) {
	_, url := startNode(t, nil)
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	ep := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	peer := newPublisher(t, "echo", vp8At(96))
	got := make(chan string, 1)
	peer.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if s := string(p.Payload); strings.Contains(s, "echo-frame-") {
				select {
				case got <- fmt.Sprint(tr.Kind()):
				default:
				}
			}
		}
	})
	negotiate(t, c, ep, peer.pc)
	c.invoke(ep, "connect", map[string]any{"sink": ep})
	waitFor(t, "echo", func() bool { return len(got) > 0 })
}

// TestGenerateOffer: the server-offers flow (connect first, generateOffer,
// the browser answers, processAnswer) delivers media as well.
func TestGenerateOffer(t *testing.T) {
	_, url := startNode(t, nil)
	c := dial(t, url)
	pipe := c.create("MediaPipeline", nil)
	pubEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	subEP := c.create("WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	pub := newPublisher(t, "srvoffer", vp8At(96))
	negotiate(t, c, pubEP, pub.pc)
	c.invoke(pubEP, "connect", map[string]any{"sink": subEP})

	sub := newSubscriber(t, vp8At(110))
	// The subscriber answers; its own recvonly transceivers are not needed.
	for _, tr := range sub.pc.GetTransceivers() {
		if err := tr.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	c.subscribe(subEP, "IceCandidateFound", "IceGatheringDone")
	sub.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			if _, err := c.call("invoke", map[string]any{"object": subEP, "operation": "addIceCandidate", "operationParams": map[string]any{"candidate": cand.ToJSON()}}); err != nil {
				t.Errorf("addIceCandidate: %v", err)
			}
		}
	})
	offer := c.invoke(subEP, "generateOffer", map[string]any{"options": map[string]any{"offerToReceiveAudio": true, "offerToReceiveVideo": true}}).(string)
	if err := sub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatalf("offer from node: %v\n%s", err, offer)
	}
	answer, err := sub.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.pc.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	c.invoke(subEP, "processAnswer", map[string]any{"answer": answer.SDP})
	c.invoke(subEP, "gatherCandidates", nil)
	for {
		e := c.waitEvent(func(e event) bool {
			return e.Object == subEP && (e.Type == "IceCandidateFound" || e.Type == "IceGatheringDone")
		})
		if e.Type == "IceGatheringDone" {
			break
		}
		cand := e.Data["candidate"].(map[string]any)
		mid := cand["sdpMid"].(string)
		if err := sub.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: cand["candidate"].(string), SDPMid: &mid}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "media after processAnswer", func() bool { return sub.videoWith("srvoffer-frame-") >= 5 })
	if err := c.invokeErr(subEP, "processOffer", map[string]any{"offer": offer}); err.Code != 40208 {
		t.Errorf("second negotiation: %v", err)
	}
}
