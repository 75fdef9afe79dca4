package kurento

// Feature tests against a real server: hearth's embedded media node (media/node) over
// a real loopback WebSocket, with pion/webrtc peers for the media path.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-im/hearth/media/node"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// testNode is a media node served on a loopback port.
type testNode struct {
	n    *node.Node
	srv  *http.Server
	addr string
	done chan struct{}
}

// startNode serves a new media node at addr ("127.0.0.1:0" for any port).
func startNode(t *testing.T, addr string) *testNode {
	t.Helper()
	n, err := node.New(node.Config{Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		n.Close()
		t.Fatalf("listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", n.Handler())
	tn := &testNode{n: n, srv: &http.Server{Handler: mux}, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(tn.done)
		_ = tn.srv.Serve(ln)
	}()
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) url() string { return "ws://" + tn.addr + "/kurento" }

// stop takes the node down: listener, sockets and media objects.
func (tn *testNode) stop() {
	_ = tn.srv.Close()
	<-tn.done
	_ = tn.n.Close()
}

func dialNode(t *testing.T, url string, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestNodeObjects drives create/invoke/describe/release/ping and the error codes.
func TestNodeObjects(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	c := dialNode(t, tn.url(), Options{})
	ctx := testCtx(t)
	if c.SessionID() != "" {
		t.Fatalf("session %q before any request", c.SessionID())
	}
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(pipe.ID, "_kurento.MediaPipeline") {
		t.Errorf("pipeline id %q lacks the KMS shape", pipe.ID)
	}
	sid := c.SessionID()
	if sid == "" {
		t.Fatal("no session id after create")
	}
	ep, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ep.ID, pipe.ID+"/") || !strings.HasSuffix(ep.ID, "_kurento.WebRtcEndpoint") {
		t.Errorf("endpoint id %q not under pipeline %q", ep.ID, pipe.ID)
	}
	d, err := c.Describe(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != "WebRtcEndpoint" || d.QualifiedType != "kurento.WebRtcEndpoint" || len(d.Hierarchy) == 0 {
		t.Errorf("describe = %+v", d)
	}
	if err := ep.SetStunServerAddress(ctx, "127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := ep.SetStunServerPort(ctx, 3478); err != nil {
		t.Error(err)
	}
	if err := ep.SetTurnURL(ctx, "1700086400:kms:c2VjcmV0=@127.0.0.1:3478?transport=udp"); err != nil {
		t.Error(err)
	}
	var port int
	if err := c.Invoke(ctx, ep.ID, "getStunServerPort", nil, &port); err != nil || port != 3478 {
		t.Errorf("getStunServerPort = %d, %v", port, err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Error(err)
	}
	err = c.Invoke(ctx, ep.ID, "noSuchOperation", nil, nil)
	if !HasCode(err, CodeMediaObjectMethodNotFound) {
		t.Errorf("unknown operation: %v, want 40105", err)
	}
	if _, err := c.Create(ctx, "NoSuchType", nil); !HasCode(err, CodeMediaObjectTypeNotFound) {
		t.Errorf("unknown type: %v, want 40100", err)
	}
	if _, err := c.Subscribe(ctx, ep.ID, "NoSuchEvent", func(Event) {}); !HasCode(err, CodeMediaObjectEventNotSupported) {
		t.Errorf("unknown event: %v, want 40106", err)
	}
	if err := ep.Release(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Describe(ctx, ep.ID)
	var ke *Error
	if !errors.As(err, &ke) || ke.Code != CodeMediaObjectNotFound || ke.Type != "MEDIA_OBJECT_NOT_FOUND" {
		t.Errorf("describe after release: %v, want 40101 MEDIA_OBJECT_NOT_FOUND", err)
	}
	ep2, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipe.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Describe(ctx, ep2.ID); !HasCode(err, CodeMediaObjectNotFound) {
		t.Errorf("element outlived its pipeline: %v", err)
	}
	if err := ep2.Release(ctx); !HasCode(err, CodeMediaObjectNotFound) {
		t.Errorf("release of a released element: %v", err)
	}
	if c.SessionID() != sid {
		t.Errorf("session changed from %q to %q", sid, c.SessionID())
	}
}

// TestNodeConcurrent: many goroutines share one client and one session.
func TestNodeConcurrent(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	c := dialNode(t, tn.url(), Options{})
	ctx := testCtx(t)
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make(chan string, 16)
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			ep, err := pipe.NewWebRtcEndpoint(ctx)
			if err != nil {
				errs <- err
				return
			}
			sub, err := ep.OnIceCandidateFound(ctx, func(IceCandidateFound) {})
			if err == nil {
				_, err = c.Describe(ctx, ep.ID)
			}
			if err == nil {
				err = c.Unsubscribe(ctx, sub)
			}
			if err == nil {
				err = ep.Release(ctx)
			}
			if err != nil {
				errs <- err
			}
			ids <- ep.ID
		})
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] || !strings.HasPrefix(id, pipe.ID+"/") {
			t.Errorf("bad or duplicate id %q", id)
		}
		seen[id] = true
	}
}

// pionPeer is a browser stand-in: a pion PeerConnection on loopback.
func pionPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// negotiate runs the gateway's sequence for one endpoint (video.md §5.6): subscribe to
// candidates, processOffer with the peer's offer, gatherCandidates, trickle both ways.
// It returns when the endpoint reported IceGatheringDone and the peer's candidates
// were all added.
func negotiate(t *testing.T, ctx context.Context, pc *webrtc.PeerConnection, ep *WebRtcEndpoint) {
	t.Helper()
	// One channel for both event types keeps the order in which they were dispatched.
	events := make(chan any, 64)
	if _, err := ep.OnIceCandidateFound(ctx, func(ev IceCandidateFound) { events <- ev }); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.OnIceGatheringDone(ctx, func(ev IceGatheringDone) { events <- ev }); err != nil {
		t.Fatal(err)
	}
	local := make(chan *webrtc.ICECandidate, 64)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { local <- c })

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, err := ep.ProcessOffer(ctx, offer.SDP)
	if err != nil {
		t.Fatalf("ProcessOffer: %v", err)
	}
	if !strings.HasPrefix(answer, "v=0") {
		t.Fatalf("answer is not SDP: %q", answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("SetRemoteDescription(answer): %v", err)
	}
	if err := ep.GatherCandidates(ctx); err != nil {
		t.Fatalf("GatherCandidates: %v", err)
	}
	sentLocal, gotDone := false, false
	nRemote := 0
	for !sentLocal || !gotDone {
		select {
		case c := <-local:
			if c == nil {
				sentLocal = true
				continue
			}
			init := c.ToJSON()
			ic := IceCandidate{Candidate: init.Candidate}
			if init.SDPMid != nil {
				ic.SdpMid = *init.SDPMid
			}
			if init.SDPMLineIndex != nil {
				ic.SdpMLineIndex = int(*init.SDPMLineIndex)
			}
			if err := ep.AddIceCandidate(ctx, ic); err != nil {
				t.Fatalf("AddIceCandidate(%+v): %v", ic, err)
			}
		case e := <-events:
			switch ev := e.(type) {
			case IceCandidateFound:
				if gotDone {
					t.Error("IceCandidateFound after IceGatheringDone")
				}
				if ev.Source != ep.ID || !strings.HasPrefix(ev.Candidate.Candidate, "candidate:") {
					t.Errorf("bad IceCandidateFound %+v", ev)
				}
				mid, idx := ev.Candidate.SdpMid, uint16(ev.Candidate.SdpMLineIndex)
				if err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: ev.Candidate.Candidate, SDPMid: &mid, SDPMLineIndex: &idx}); err != nil {
					t.Fatalf("pion AddICECandidate(%+v): %v", ev.Candidate, err)
				}
				nRemote++
			case IceGatheringDone:
				if ev.Source != ep.ID {
					t.Errorf("IceGatheringDone from %q", ev.Source)
				}
				gotDone = true
			}
		case <-ctx.Done():
			t.Fatalf("negotiation of %s: sentLocal=%v gatheringDone=%v", ep.ID, sentLocal, gotDone)
		}
	}
	if len(events) > 0 {
		t.Errorf("event after IceGatheringDone: %+v", <-events)
	}
	if nRemote == 0 && !strings.Contains(answer, "a=candidate:") {
		t.Fatal("endpoint offered no candidate, neither trickled nor in the answer")
	}
}

// TestNodeMedia: a publisher peer's RTP reaches a subscriber peer through two
// WebRtcEndpoints connected on the node, negotiated entirely through this client.
func TestNodeMedia(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	c := dialNode(t, tn.url(), Options{})
	ctx := testCtx(t)
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	pubEP, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subEP, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	iceStates := make(chan IceComponentStateChanged, 64)
	if _, err := pubEP.OnIceComponentStateChanged(ctx, func(ev IceComponentStateChanged) { iceStates <- ev }); err != nil {
		t.Fatal(err)
	}
	flowIn := make(chan MediaFlowStateChanged, 16)
	if _, err := pubEP.OnMediaFlowInStateChanged(ctx, func(ev MediaFlowStateChanged) { flowIn <- ev }); err != nil {
		t.Fatal(err)
	}
	flowOut := make(chan MediaFlowStateChanged, 16)
	if _, err := subEP.OnMediaFlowOutStateChanged(ctx, func(ev MediaFlowStateChanged) { flowOut <- ev }); err != nil {
		t.Fatal(err)
	}
	epErrors := make(chan ErrorEvent, 4)
	for _, ep := range []*WebRtcEndpoint{pubEP, subEP} {
		if _, err := ep.OnError(ctx, func(ev ErrorEvent) { epErrors <- ev }); err != nil {
			t.Fatal(err)
		}
	}

	pub := pionPeer(t)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "hearth")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	negotiate(t, ctx, pub, pubEP)

	sub := pionPeer(t)
	if _, err := sub.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	payloads := make(chan []byte, 256)
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case payloads <- bytes.Clone(p.Payload):
			default:
			}
		}
	})
	negotiate(t, ctx, sub, subEP)
	if err := pubEP.Connect(ctx, subEP); err != nil {
		t.Fatalf("Connect: %v", err)
	}

	// Send until the subscriber has seen media. Each payload is a VP8 payload
	// descriptor (S bit) and a key-frame header, then a marker the test can recognise.
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			payload := append([]byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a}, fmt.Sprintf("hearth-%d", i)...)
			_ = track.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000)},
				Payload: payload,
			})
		}
	}()
	defer func() { close(stop); <-sent }()

	got := recv(t, payloads, "RTP at the subscriber")
	if !bytes.HasPrefix(got, []byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 'h', 'e', 'a', 'r', 't', 'h', '-'}) {
		t.Fatalf("subscriber got payload %q, not one the publisher sent", got)
	}

	for ev := recv(t, flowIn, "MediaFlowInStateChanged"); ev.State != "FLOWING"; ev = recv(t, flowIn, "FLOWING in") {
	}
	ev := recv(t, flowOut, "MediaFlowOutStateChanged")
	for ev.State != "FLOWING" {
		ev = recv(t, flowOut, "FLOWING out")
	}
	if ev.MediaType != "VIDEO" || ev.Source != subEP.ID {
		t.Errorf("MediaFlowOutStateChanged = %+v", ev)
	}
	sawConnected := false
	for len(iceStates) > 0 && !sawConnected {
		s := <-iceStates
		sawConnected = s.State == "CONNECTED" || s.State == "READY"
	}
	if !sawConnected {
		t.Errorf("no IceComponentStateChanged CONNECTED/READY on the publisher endpoint before media flowed")
	}

	if err := pubEP.Disconnect(ctx, subEP); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if len(epErrors) > 0 {
		t.Errorf("endpoint error: %+v", <-epErrors)
	}
	if err := pipe.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// cutProxy is a TCP relay between the client and the node that can cut every
// connection, like a network failure; the server behind it stays up.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Go(func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, a, b)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(a, b); a.Close() })
			p.wg.Go(func() { io.Copy(b, a); b.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *cutProxy) url() string { return "ws://" + p.ln.Addr().String() + "/kurento" }

func (p *cutProxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// TestNodeResume: after the network drops the socket, the client reconnects, the
// node re-attaches the session, objects survive and subscriptions keep delivering.
func TestNodeResume(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	px := newCutProxy(t, tn.addr)
	reconnected := make(chan struct{}, 4)
	lost := make(chan error, 1)
	c := dialNode(t, px.url(), Options{Reconnect: true,
		OnReconnect:  func() { reconnected <- struct{}{} },
		OnDisconnect: func(err error) { lost <- err }})
	ctx := testCtx(t)
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sid := c.SessionID()
	gathered := make(chan IceGatheringDone, 1)
	if _, err := ep.OnIceGatheringDone(ctx, func(ev IceGatheringDone) { gathered <- ev }); err != nil {
		t.Fatal(err)
	}

	px.cut()
	recv(t, reconnected, "OnReconnect")
	if c.SessionID() != sid {
		t.Fatalf("session changed across resume: %q -> %q", sid, c.SessionID())
	}
	if d, err := c.Describe(ctx, ep.ID); err != nil || d.Type != "WebRtcEndpoint" {
		t.Fatalf("endpoint after resume: %+v, %v", d, err)
	}

	// The subscription made before the drop still delivers on the new socket.
	pc := pionPeer(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.ProcessOffer(ctx, offer.SDP); err != nil {
		t.Fatal(err)
	}
	if err := ep.GatherCandidates(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, gathered, "IceGatheringDone after resume"); ev.Source != ep.ID {
		t.Fatalf("IceGatheringDone from %q", ev.Source)
	}
	if len(lost) > 0 {
		t.Fatalf("OnDisconnect after a resumable drop: %v", <-lost)
	}
}

// TestNodeRestart: a node that restarted on the same address has lost our session
// (40007): the client reports the server lost instead of pretending to resume.
func TestNodeRestart(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	lost := make(chan error, 1)
	c := dialNode(t, tn.url(), Options{Reconnect: true, OnDisconnect: func(err error) { lost <- err }})
	ctx := testCtx(t)
	if _, err := NewMediaPipeline(ctx, c); err != nil {
		t.Fatal(err)
	}
	tn.stop()
	startNode(t, tn.addr)
	err := recv(t, lost, "OnDisconnect")
	if !errors.Is(err, ErrServerLost) || !HasCode(err, CodeInvalidSession) {
		t.Fatalf("OnDisconnect(%v), want ErrServerLost with 40007", err)
	}
	waitClosed(t, c.Done(), "Done")
	if _, err := NewMediaPipeline(ctx, c); !errors.Is(err, ErrServerLost) {
		t.Fatalf("request after loss: %v", err)
	}
	c.Close()
	assertNoLeak(t)
}

// TestNodeGone: a node that stays away past ReconnectTimeout ends the client.
func TestNodeGone(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	lost := make(chan error, 1)
	c := dialNode(t, tn.url(), Options{Reconnect: true, ReconnectTimeout: 300 * time.Millisecond,
		OnDisconnect: func(err error) { lost <- err }})
	if _, err := NewMediaPipeline(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	tn.stop()
	if err := recv(t, lost, "OnDisconnect"); !errors.Is(err, ErrServerLost) {
		t.Fatalf("OnDisconnect(%v)", err)
	}
	waitClosed(t, c.Done(), "Done")
	c.Close()
	assertNoLeak(t)
}

// TestNodeCloseNoLeak: after Close nothing of the client keeps running, even with
// keepalive, subscriptions and requests in flight.
func TestNodeCloseNoLeak(t *testing.T) {
	tn := startNode(t, "127.0.0.1:0")
	c := dialNode(t, tn.url(), Options{Reconnect: true, PingInterval: 10 * time.Millisecond})
	ctx := testCtx(t)
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipe.OnError(ctx, func(ErrorEvent) {}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				if _, err := pipe.NewWebRtcEndpoint(ctx); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("after Close: %v, want ErrClosed", err)
					}
					return
				}
			}
		})
	}
	c.Close()
	wg.Wait()
	assertNoLeak(t)
}

// BenchmarkNodeInvoke measures one request/response round trip (an invoke of a
// property getter) to the embedded node over loopback, sequentially and from parallel
// goroutines sharing one client.
func BenchmarkNodeInvoke(b *testing.B) {
	n, err := node.New(node.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/kurento", n.Handler())
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	ctx := context.Background()
	c, err := Dial(ctx, "ws://"+ln.Addr().String()+"/kurento", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pipe, err := NewMediaPipeline(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	ep, err := pipe.NewWebRtcEndpoint(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var port int
			if err := c.Invoke(ctx, ep.ID, "getStunServerPort", nil, &port); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var port int
				if err := c.Invoke(ctx, ep.ID, "getStunServerPort", nil, &port); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
