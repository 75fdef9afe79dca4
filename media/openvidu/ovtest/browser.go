// Package ovtest holds test helpers for hearth's OpenVidu-compatible gateway:
// Browser speaks openvidu-browser's side of the signalling protocol
// (protocols/video.md §3, §10.3) with pion PeerConnections for the media, and
// HookReceiver records webhook events (§4). It does not import the gateway, so
// the gateway's own tests can use it.
package ovtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// browser speaks openvidu-browser's side of the signalling protocol (video.md
// §3, §10.3) with pion PeerConnections for the media: it pings, joins with a
// token, publishes a marked VP8 + Opus stream, subscribes with recvonly offers,
// trickles candidates with OpenVidu's endpointName rule and queues the server's
// candidates until the answer is set, as the real library does.
type Browser struct {
	// Kbps, if set before Publish, makes the published stream a camera-like
	// one of that bitrate (see sendAt); the default is 50 small frames/s.
	Kbps int

	t    testing.TB
	name string
	ws   *websocket.Conn
	wmu  sync.Mutex

	mu       sync.Mutex
	nextID   int
	waiting  map[int]chan rpcReply
	notes    []note
	wake     chan struct{}
	closed   chan struct{}
	id       string // connection id after joinRoom
	rpcID    string
	peers    map[string]*Peer // by connection id owning the stream (own id = publisher)
	stopPing chan struct{}
	pingOnce sync.Once
}

type rpcReply struct {
	Result map[string]any `json:"result"`
	Error  *RPCError      `json:"error"`
}

type note struct {
	Method string
	Params map[string]any
}

// Timeout bounds every wait of the helpers.
const Timeout = 20 * time.Second

// RPCError is a JSON-RPC error object.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

// RPCID is the RPC session id the join result carried, which connect resumes.
func (b *Browser) RPCID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rpcID
}

// ID is the browser's connection id (after Join).
func (b *Browser) ID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

// Dial opens the signalling WebSocket of the gateway at baseURL (http://host:port),
// sends the first ping and keeps pinging every 200 ms.
func Dial(t testing.TB, baseURL, name string) *Browser {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(baseURL, "http")+"/openvidu?sessionId=x", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, name: name, ws: ws, waiting: map[int]chan rpcReply{}, wake: make(chan struct{}, 1),
		closed: make(chan struct{}), peers: map[string]*Peer{}, stopPing: make(chan struct{})}
	go b.read()
	t.Cleanup(b.Close)
	if _, err := b.Call("ping", map[string]any{"interval": 200}); err != nil {
		t.Fatalf("first ping: %v", err)
	}
	go b.pinger(200 * time.Millisecond)
	return b
}

func (b *Browser) pinger(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.send("ping", nil, true)
		case <-b.stopPing:
			return
		case <-b.closed:
			return
		}
	}
}

// silence stops the keepalive, as a frozen tab would.
func (b *Browser) Silence() { b.pingOnce.Do(func() { close(b.stopPing) }) }

func (b *Browser) Close() {
	b.Silence()
	b.ws.Close()
	<-b.closed
	b.mu.Lock()
	peers := b.peers
	b.peers = map[string]*Peer{}
	b.mu.Unlock()
	for _, p := range peers {
		p.Close()
	}
}

// drop cuts the TCP connection without a close frame.
func (b *Browser) Drop() {
	b.Silence()
	b.ws.UnderlyingConn().Close()
	<-b.closed
}

func (b *Browser) read() {
	defer close(b.closed)
	for {
		_, data, err := b.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			ID     *int           `json:"id"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
			rpcReply
		}
		if err := json.Unmarshal(data, &m); err != nil {
			b.t.Errorf("%s: bad frame %s", b.name, data)
			continue
		}
		if m.Method != "" {
			if m.Method == "iceCandidate" {
				b.remoteCandidate(m.Params)
				continue
			}
			b.mu.Lock()
			b.notes = append(b.notes, note{m.Method, m.Params})
			b.mu.Unlock()
			select {
			case b.wake <- struct{}{}:
			default:
			}
			continue
		}
		if m.ID == nil {
			b.t.Errorf("%s: response without id: %s", b.name, data)
			continue
		}
		b.mu.Lock()
		ch := b.waiting[*m.ID]
		delete(b.waiting, *m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.rpcReply
		}
	}
}

func (b *Browser) send(method string, params map[string]any, withID bool) (int, chan rpcReply) {
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	var ch chan rpcReply
	if withID {
		ch = make(chan rpcReply, 1)
		b.waiting[id] = ch
	}
	b.mu.Unlock()
	msg := map[string]any{"jsonrpc": "2.0", "method": method, "id": id}
	if params != nil {
		msg["params"] = params
	}
	data, _ := json.Marshal(msg)
	b.wmu.Lock()
	err := b.ws.WriteMessage(websocket.TextMessage, data)
	b.wmu.Unlock()
	if err != nil && ch != nil {
		ch <- rpcReply{Error: &RPCError{Code: -1, Message: err.Error()}}
	}
	return id, ch
}

// call sends a request and waits for its answer.
func (b *Browser) Call(method string, params map[string]any) (map[string]any, *RPCError) {
	b.t.Helper()
	_, ch := b.send(method, params, true)
	select {
	case r := <-ch:
		return r.Result, r.Error
	case <-time.After(Timeout):
		b.t.Fatalf("%s: no answer to %s", b.name, method)
	}
	return nil, nil
}

func (b *Browser) Must(method string, params map[string]any) map[string]any {
	b.t.Helper()
	r, err := b.Call(method, params)
	if err != nil {
		b.t.Fatalf("%s: %s: %d %s", b.name, method, err.Code, err.Message)
	}
	return r
}

// join sends joinRoom with the token, as Session.connect does.
func (b *Browser) Join(token string) map[string]any {
	b.t.Helper()
	r, err := b.TryJoin(token)
	if err != nil {
		b.t.Fatalf("%s: joinRoom: %d %s", b.name, err.Code, err.Message)
	}
	return r
}

func (b *Browser) TryJoin(token string) (map[string]any, *RPCError) {
	session := ""
	if _, q, ok := strings.Cut(token, "?"); ok {
		for _, kv := range strings.Split(q, "&") {
			if v, ok := strings.CutPrefix(kv, "sessionId="); ok {
				session = v
			}
		}
	}
	r, err := b.Call("joinRoom", map[string]any{"token": token, "session": session, "platform": "Go pion " + b.name,
		"sdkVersion": "2.32.2", "metadata": `{"clientData":"` + b.name + `"}`, "secret": "", "recorder": false, "stt": false})
	if err == nil {
		b.mu.Lock()
		b.id, _ = r["id"].(string)
		b.rpcID, _ = r["sessionId"].(string)
		b.mu.Unlock()
	}
	return r, err
}

// waitNote returns the first notification that matches (and removes it).
func (b *Browser) WaitNote(method string, kv ...string) note {
	b.t.Helper()
	deadline := time.After(Timeout)
	for {
		b.mu.Lock()
		for i, n := range b.notes {
			if n.Method == method && matches(n.Params, kv) {
				b.notes = append(b.notes[:i:i], b.notes[i+1:]...)
				b.mu.Unlock()
				return n
			}
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-deadline:
			b.mu.Lock()
			defer b.mu.Unlock()
			b.t.Fatalf("%s: no %s %v; have %v", b.name, method, kv, b.notes)
		}
	}
}

// notesNamed returns the methods of the notifications received so far, except
// the keepalive-unrelated ones named in skip, and clears them.
func (b *Browser) DrainNotes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, n := range b.notes {
		s := n.Method
		if r, ok := n.Params["reason"]; ok {
			s += "(" + fmt.Sprint(n.Params["connectionId"]) + "," + fmt.Sprint(r) + ")"
		} else if id, ok := n.Params["id"]; ok {
			s += "(" + fmt.Sprint(id) + ")"
		}
		out = append(out, s)
	}
	b.notes = nil
	return out
}

func matches(params map[string]any, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if fmt.Sprint(params[kv[i]]) != kv[i+1] {
			return false
		}
	}
	return true
}

// publish publishes a marked VP8 + Opus stream. Its ICE candidates are all sent
// before publishVideo (gathering completes first), so the server must buffer them.
func (b *Browser) Publish() string {
	b.t.Helper()
	id, err := b.TryPublish()
	if err != nil {
		b.t.Fatalf("%s: publishVideo: %d %s", b.name, err.Code, err.Message)
	}
	return id
}

func (b *Browser) TryPublish() (string, *RPCError) {
	b.mu.Lock()
	own := b.id
	b.mu.Unlock()
	p := newPeer(b.t, b, own)
	p.addSender(b.name, b.Kbps)
	offer := p.offer()
	r, err := b.Call("publishVideo", map[string]any{"sdpOffer": offer, "hasAudio": true, "hasVideo": true,
		"doLoopback": false, "audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30,
		"videoDimensions": `{"width":640,"height":480}`})
	if err != nil {
		p.Close()
		return "", err
	}
	b.mu.Lock()
	b.peers[own] = p
	b.mu.Unlock()
	p.answer(r["sdpAnswer"].(string))
	return r["id"].(string), nil
}

// subscribe receives a stream with a recvonly offer (receiveVideoFrom).
func (b *Browser) Subscribe(streamID string) *Peer {
	b.t.Helper()
	pub := streamID[strings.LastIndex(streamID, "con_"):]
	p := newPeer(b.t, b, pub)
	p.addReceivers()
	offer := p.offer()
	b.mu.Lock()
	b.peers[pub] = p
	b.mu.Unlock()
	r := b.Must("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": offer})
	p.answer(r["sdpAnswer"].(string))
	return p
}

func (b *Browser) Peer(owner string) *Peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peers[owner]
}

// remoteCandidate routes a server candidate by senderConnectionId (§3.6).
func (b *Browser) remoteCandidate(params map[string]any) {
	b.mu.Lock()
	p := b.peers[fmt.Sprint(params["senderConnectionId"])]
	b.mu.Unlock()
	if p == nil {
		// The publisher's candidates can precede the publishVideo answer that
		// registers its peer: keep them for it.
		b.mu.Lock()
		b.notes = append(b.notes, note{"iceCandidate", params})
		b.mu.Unlock()
		return
	}
	p.remote(params)
}

// peer is one pion PeerConnection standing in for a browser's.
type Peer struct {
	t      testing.TB
	b      *Browser
	owner  string // connection id owning the stream: the endpointName of our candidates
	pc     *webrtc.PeerConnection
	mu     sync.Mutex
	ready  bool
	queued []webrtc.ICECandidateInit
	stop   chan struct{}
	wg     sync.WaitGroup
	marks  sync.Map // marker -> *atomic.Int64 of video packets seen
	video  atomic.Int64
	audio  atomic.Int64
	closed atomic.Bool
}

func newPeer(t testing.TB, b *Browser, owner string) *Peer {
	me := &webrtc.MediaEngine{}
	must(t, me.RegisterDefaultCodecs())
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Late candidates of a replaced PeerConnection are dropped, as in a browser;
	// pion logs that at ERROR level.
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	p := &Peer{t: t, b: b, owner: owner, pc: pc, stop: make(chan struct{})}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil || p.closed.Load() {
			return
		}
		j := c.ToJSON()
		b.send("onIceCandidate", map[string]any{"endpointName": owner, "candidate": j.Candidate,
			"sdpMid": *j.SDPMid, "sdpMLineIndex": *j.SDPMLineIndex}, true)
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				p.audio.Add(1)
				continue
			}
			p.video.Add(1)
			if i := bytes.Index(pkt.Payload, []byte("mark:")); i >= 0 {
				end := bytes.IndexByte(pkt.Payload[i:], '|')
				if end > 0 {
					v, _ := p.marks.LoadOrStore(string(pkt.Payload[i+5:i+end]), new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				}
			}
		}
	})
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// addSender adds a VP8 video and an Opus audio track sending marked frames.
func (p *Peer) addSender(mark string, kbps int) {
	vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", mark)
	must(p.t, err)
	at, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", mark)
	must(p.t, err)
	for _, tr := range []webrtc.TrackLocal{vt, at} {
		s, err := p.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		must(p.t, err)
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Sender().Read(buf); err != nil {
					return
				}
			}
		}()
	}
	if kbps > 0 {
		p.sendAt(kbps, mark, vt, at)
		return
	}
	p.wg.Add(1)
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
			// A VP8 key frame header byte, then a marker the receiver looks for.
			frame := append([]byte(fmt.Sprintf("\x10mark:%s|%06d", mark, i)), bytes.Repeat([]byte{0xAB}, 200)...)
			_ = vt.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
			_ = at.WriteSample(media.Sample{Data: []byte{0xF8, 0xFF, 0xFE}, Duration: 20 * time.Millisecond})
		}
	}()
}

// sendAt sends kbps kbit/s the way a camera publisher does: Opus at 50 packets/s
// of 80 bytes (32 kbit/s) and VP8 at 30 frames/s carrying the rest, each frame
// cut into packets of at most ~1,200 bytes by pion's packetizer.
func (p *Peer) sendAt(kbps int, mark string, vt, at *webrtc.TrackLocalStaticSample) {
	frameBytes := max(100, (kbps-32)*1000/8/30)
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			head := []byte(fmt.Sprintf("\x10mark:%s|%06d", mark, i))
			frame := append(head, bytes.Repeat([]byte{0xAB}, max(0, frameBytes-len(head)))...)
			_ = vt.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
		}
	}()
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		opus := bytes.Repeat([]byte{0xF8}, 80)
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			_ = at.WriteSample(media.Sample{Data: opus, Duration: 20 * time.Millisecond})
		}
	}()
}

func (p *Peer) addReceivers() {
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		_, err := p.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		must(p.t, err)
	}
}

// offer creates the offer and waits for local gathering, so every local candidate
// has been trickled before the offer is sent.
func (p *Peer) offer() string {
	o, err := p.pc.CreateOffer(nil)
	must(p.t, err)
	done := webrtc.GatheringCompletePromise(p.pc)
	must(p.t, p.pc.SetLocalDescription(o))
	select {
	case <-done:
	case <-time.After(Timeout):
		p.t.Fatal("ICE gathering did not complete")
	}
	return o.SDP
}

func (p *Peer) answer(sdp string) {
	must(p.t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}))
	p.mu.Lock()
	p.ready = true
	q := p.queued
	p.queued = nil
	p.mu.Unlock()
	for _, c := range q {
		_ = p.pc.AddICECandidate(c)
	}
	// Candidates that came before this peer was registered.
	p.b.mu.Lock()
	var mine []note
	rest := p.b.notes[:0:0]
	for _, n := range p.b.notes {
		if n.Method == "iceCandidate" && fmt.Sprint(n.Params["senderConnectionId"]) == p.owner {
			mine = append(mine, n)
		} else {
			rest = append(rest, n)
		}
	}
	p.b.notes = rest
	p.b.mu.Unlock()
	for _, n := range mine {
		p.remote(n.Params)
	}
}

func (p *Peer) remote(params map[string]any) {
	mid := fmt.Sprint(params["sdpMid"])
	idx := uint16(params["sdpMLineIndex"].(float64))
	c := webrtc.ICECandidateInit{Candidate: fmt.Sprint(params["candidate"]), SDPMid: &mid, SDPMLineIndex: &idx}
	p.mu.Lock()
	if !p.ready {
		p.queued = append(p.queued, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = p.pc.AddICECandidate(c)
}

// marked is how many video packets with mark arrived.
func (p *Peer) Marked(mark string) int64 {
	v, ok := p.marks.Load(mark)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (p *Peer) Close() {
	if p.closed.Swap(true) {
		return
	}
	close(p.stop)
	_ = p.pc.Close()
	p.wg.Wait()
}

// Audio is how many audio packets arrived.
func (p *Peer) Audio() int64 { return p.audio.Load() }

// Video is how many video packets arrived.
func (p *Peer) Video() int64 { return p.video.Load() }
