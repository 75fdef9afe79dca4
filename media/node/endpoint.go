package node

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// endpoint is a WebRtcEndpoint: one pion PeerConnection, created lazily when
// the endpoint first negotiates, so that STUN/TURN settings made after create
// (as OpenVidu does) are in force.
type endpoint struct {
	element
	n                  *Node
	recvonly, sendonly bool

	// Forwarding state, read lock-free on the packet path.
	pcRef    atomic.Pointer[webrtc.PeerConnection]
	targets  [numKinds]atomic.Pointer[[]*endpoint] // endpoints our peer's media goes to
	upstream [numKinds]atomic.Pointer[endpoint]    // endpoint whose media our outgoing tracks carry
	out      [numKinds]atomic.Pointer[sinkTrack]   // our outgoing tracks
	in       [numKinds]atomic.Pointer[sourceTrack] // our peer's tracks

	bytesIn, bytesOut    atomic.Uint64
	lastIn, lastOut      [numKinds]atomic.Int64 // unix nanos of the last packet
	flowIn, flowOut      [numKinds]atomic.Bool
	rembBps              atomic.Uint64 // our peer's latest REMB, as a sink
	rembAt               atomic.Int64
	lastPLI              atomic.Int64
	pliPending           atomic.Bool // a coalesced PLI is scheduled
	tickIn, tickOut      uint64      // counters at the previous tick (tick goroutine only)
	connected            atomic.Bool
	eventMu              sync.Mutex // keeps this endpoint's ICE events in order
	mu                   sync.Mutex // guards the fields below
	pc                   *webrtc.PeerConnection
	closed               bool
	negotiated           bool
	stunAddr             string
	stunPort             int
	turnURL              string
	extIPv4, extIPv6     string
	networkInterfaces    string
	iceTCP               bool
	gatherCalled         bool
	gatherDone, doneSent bool
	pendingLocal         []webrtc.ICECandidateInit
	pendingRemote        []webrtc.ICECandidateInit
	bandwidth            map[string]int // set{Min,Max}{Video,Audio}{Recv,Send}Bandwidth, kbps
}

func newEndpoint(n *Node, base objectBase, recvonly, sendonly bool) *endpoint {
	e := &endpoint{n: n, recvonly: recvonly, sendonly: sendonly, bandwidth: map[string]int{}}
	e.element = element{objectBase: base}
	e.element.ep = e
	for k := range numKinds {
		e.targets[k].Store(&[]*endpoint{})
	}
	return e
}

// bandwidthDefaults are KMS's defaults for the BaseRtpEndpoint bandwidth
// properties, in kbps (0 = unlimited).
var bandwidthDefaults = map[string]int{
	"minVideoRecvBandwidth": 0, "maxVideoRecvBandwidth": 0, "minVideoSendBandwidth": 100, "maxVideoSendBandwidth": 500,
	"maxAudioRecvBandwidth": 0, "minAudioRecvBandwidth": 0,
}

func (e *endpoint) invoke(op string, args map[string]json.RawMessage) (any, *rpcError, bool) {
	switch op {
	case "processOffer":
		var offer string
		if err := paramString(args, "offer", &offer, true); err != nil {
			return nil, err, true
		}
		v, err := e.processOffer(offer)
		return v, err, true
	case "generateOffer":
		audio, video := true, true
		if raw, ok := args["options"]; ok && string(raw) != "null" {
			var o struct {
				Audio *bool `json:"offerToReceiveAudio"`
				Video *bool `json:"offerToReceiveVideo"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, errorf(codeInvalidParams, "Invalid params: 'options': %v", err), true
			}
			if o.Audio != nil {
				audio = *o.Audio
			}
			if o.Video != nil {
				video = *o.Video
			}
		}
		v, err := e.generateOffer(audio, video)
		return v, err, true
	case "processAnswer":
		var answer string
		if err := paramString(args, "answer", &answer, true); err != nil {
			return nil, err, true
		}
		v, err := e.processAnswer(answer)
		return v, err, true
	case "gatherCandidates":
		return nil, e.gatherCandidates(), true
	case "addIceCandidate":
		raw, ok := args["candidate"]
		if !ok {
			return nil, errorf(codeInvalidParams, "Invalid params: 'candidate' is required"), true
		}
		var c struct {
			Candidate     *string `json:"candidate"`
			SDPMid        *string `json:"sdpMid"`
			SDPMLineIndex *uint16 `json:"sdpMLineIndex"`
		}
		if err := json.Unmarshal(raw, &c); err != nil || c.Candidate == nil {
			return nil, errorf(codeInvalidParams, "Invalid params: 'candidate' must be an IceCandidate"), true
		}
		return nil, e.addIceCandidate(webrtc.ICECandidateInit{Candidate: *c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}), true
	case "getLocalSessionDescriptor", "getRemoteSessionDescriptor":
		pc := e.pcRef.Load()
		var d *webrtc.SessionDescription
		if pc != nil {
			if op == "getLocalSessionDescriptor" {
				d = pc.LocalDescription()
			} else {
				d = pc.RemoteDescription()
			}
		}
		if d == nil {
			return nil, errorf(codeIllegalParam, "No %s session descriptor yet", strings.TrimSuffix(strings.TrimPrefix(op, "get"), "SessionDescriptor")), true
		}
		return d.SDP, nil, true
	case "getConnectionState", "getMediaState":
		if e.connected.Load() {
			return "CONNECTED", nil, true
		}
		return "DISCONNECTED", nil, true
	case "getICECandidatePairs", "getIceConnectionState":
		return []any{}, nil, true
	case "createDataChannel", "closeDataChannel":
		return nil, errorf(codeNotImplemented, "data channels are not supported by this media node"), true
	case "getRembParams":
		return map[string]any{"__module__": "kurento", "__type__": "RembParams"}, nil, true
	case "setRembParams", "setMtu", "setQosDscp":
		return nil, nil, true
	}
	return e.invokeProperty(op, args)
}

var turnURLRe = regexp.MustCompile(`^(.+):(.+)@([0-9.]+):([0-9]+)(\?transport=(udp|tcp|tls))?$`)

// invokeProperty handles the endpoint's getX/setX properties.
func (e *endpoint) invokeProperty(op string, args map[string]json.RawMessage) (any, *rpcError, bool) {
	name, isSet := strings.CutPrefix(op, "set")
	if !isSet {
		name, _ = strings.CutPrefix(op, "get")
	}
	if name == op || name == "" {
		return nil, nil, false
	}
	key := strings.ToLower(name[:1]) + name[1:]
	e.mu.Lock()
	defer e.mu.Unlock()
	switch key {
	case "stunServerAddress":
		if !isSet {
			return e.stunAddr, nil, true
		}
		var v string
		if err := paramString(args, key, &v, true); err != nil {
			return nil, err, true
		}
		if v != "" && net.ParseIP(v) == nil {
			return nil, errorf(codeIllegalParam, "stunServerAddress must be an IP address, not %q", v), true
		}
		e.stunAddr = v
		return nil, nil, true
	case "stunServerPort":
		if !isSet {
			if e.stunPort == 0 {
				return 3478, nil, true
			}
			return e.stunPort, nil, true
		}
		var v int
		if err := paramInt(args, key, &v, true); err != nil {
			return nil, err, true
		}
		if v <= 0 || v > 65535 {
			return nil, errorf(codeIllegalParam, "stunServerPort %d out of range", v), true
		}
		e.stunPort = v
		return nil, nil, true
	case "turnUrl":
		if !isSet {
			return e.turnURL, nil, true
		}
		var v string
		if err := paramString(args, key, &v, true); err != nil {
			return nil, err, true
		}
		if v != "" && !turnURLRe.MatchString(v) {
			return nil, errorf(codeIllegalParam, "turnUrl must be user:password@ipv4:port[?transport=udp|tcp|tls]"), true
		}
		e.turnURL = v
		return nil, nil, true
	case "externalIPv4", "externalIPv6", "externalAddress", "networkInterfaces":
		ptr := map[string]*string{"externalIPv4": &e.extIPv4, "externalIPv6": &e.extIPv6, "externalAddress": &e.extIPv4, "networkInterfaces": &e.networkInterfaces}[key]
		if !isSet {
			return *ptr, nil, true
		}
		if err := paramString(args, key, ptr, true); err != nil {
			return nil, err, true
		}
		return nil, nil, true
	case "iceTcp":
		if !isSet {
			return e.iceTCP, nil, true
		}
		if err := paramBool(args, key, &e.iceTCP); err != nil {
			return nil, err, true
		}
		return nil, nil, true
	}
	if _, ok := bandwidthDefaults[key]; ok {
		if !isSet {
			if v, ok := e.bandwidth[key]; ok {
				return v, nil, true
			}
			return bandwidthDefaults[key], nil, true
		}
		var v int
		if err := paramInt(args, key, &v, true); err != nil {
			return nil, err, true
		}
		if v < 0 {
			return nil, errorf(codeIllegalParam, "%s must not be negative", key), true
		}
		e.bandwidth[key] = v
		return nil, nil, true
	}
	return nil, nil, false
}

// iceServersLocked merges the node's default ICE servers with the endpoint's
// own STUN and TURN settings; an explicit setting replaces the defaults of its
// kind, as KMS's per-endpoint properties override its configuration file.
func (e *endpoint) iceServersLocked() []webrtc.ICEServer {
	var defaults []webrtc.ICEServer
	if e.n.cfg.ICEServers != nil {
		defaults = e.n.cfg.ICEServers()
	}
	var out []webrtc.ICEServer
	for _, s := range defaults {
		var keep []string
		for _, u := range s.URLs {
			isStun := strings.HasPrefix(u, "stun:") || strings.HasPrefix(u, "stuns:")
			if (isStun && e.stunAddr == "") || (!isStun && e.turnURL == "") {
				keep = append(keep, u)
			}
		}
		if len(keep) > 0 {
			s.URLs = keep
			out = append(out, s)
		}
	}
	if e.stunAddr != "" {
		port := e.stunPort
		if port == 0 {
			port = 3478
		}
		out = append(out, webrtc.ICEServer{URLs: []string{"stun:" + net.JoinHostPort(e.stunAddr, strconv.Itoa(port))}})
	}
	if m := turnURLRe.FindStringSubmatch(e.turnURL); m != nil {
		scheme, query := "turn:", ""
		switch m[6] {
		case "tls":
			scheme, query = "turns:", "?transport=tcp"
		case "udp", "tcp":
			query = "?transport=" + m[6]
		}
		out = append(out, webrtc.ICEServer{
			URLs:     []string{scheme + net.JoinHostPort(m[3], m[4]) + query},
			Username: m[1], Credential: m[2],
		})
	}
	return out
}

// ensurePCLocked creates the PeerConnection. Callers hold e.mu.
func (e *endpoint) ensurePCLocked() (*webrtc.PeerConnection, *rpcError) {
	if e.closed {
		return nil, errorf(codeObjectNotFound, "Object '%s' not found", e.id)
	}
	if e.pc != nil {
		return e.pc, nil
	}
	pc, err := e.n.api.NewPeerConnection(webrtc.Configuration{
		ICEServers:   e.iceServersLocked(),
		BundlePolicy: webrtc.BundlePolicyMaxBundle,
	})
	if err != nil {
		return nil, errorf(codeUnexpected, "cannot create peer connection: %v", err)
	}
	pc.OnICECandidate(e.onCandidate)
	pc.OnICEConnectionStateChange(e.onICEState)
	pc.OnConnectionStateChange(e.onConnState)
	pc.OnTrack(e.onTrack)
	if t := pc.SCTP().Transport().ICETransport(); t != nil {
		t.OnSelectedCandidatePairChange(e.onPair)
	}
	e.pc = pc
	e.pcRef.Store(pc)
	return pc, nil
}

// directions maps each m-line's mid to the remote's direction.
func directions(d *sdp.SessionDescription) map[string]string {
	out := map[string]string{}
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		dir := "sendrecv"
		for _, a := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
			if _, ok := m.Attribute(a); ok {
				dir = a
			}
		}
		out[mid] = dir
	}
	return out
}

func (e *endpoint) processOffer(offer string) (any, *rpcError) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return nil, errorf(codeSDPParse, "Error parsing SDP offer: %v", err)
	}
	if len(parsed.MediaDescriptions) == 0 {
		return nil, errorf(codeSDPParse, "Error parsing SDP offer: no media sections")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.negotiated {
		return nil, errorf(codeSDPAlreadyNegotiated, "Endpoint already negotiated")
	}
	pc, rerr := e.ensurePCLocked()
	if rerr != nil {
		return nil, rerr
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, errorf(codeSDPProcessOffer, "Cannot process offer: %v", err)
	}
	if !e.recvonly {
		dirs := directions(&parsed)
		var used [numKinds]bool
		for _, tr := range pc.GetTransceivers() {
			k := kindOf(tr.Kind())
			if k < 0 || used[k] {
				continue
			}
			if d := dirs[tr.Mid()]; d != "sendrecv" && d != "recvonly" {
				continue
			}
			used[k] = true
			st := newSinkTrack(e, k)
			if _, err := pc.AddTrack(st); err != nil {
				return nil, errorf(codeSDPProcessOffer, "Cannot add %s track: %v", k, err)
			}
			e.out[k].Store(st)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, errorf(codeSDPCreate, "Cannot create answer: %v", err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, errorf(codeSDPProcessOffer, "Cannot set answer: %v", err)
	}
	e.negotiated = true
	e.afterRemoteLocked(pc)
	return pc.LocalDescription().SDP, nil
}

func (e *endpoint) generateOffer(audio, video bool) (any, *rpcError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.negotiated {
		return nil, errorf(codeSDPAlreadyNegotiated, "Endpoint already negotiated")
	}
	pc, rerr := e.ensurePCLocked()
	if rerr != nil {
		return nil, rerr
	}
	for k, want := range []bool{audio, video} {
		kind := mediaKind(k)
		if !want {
			continue
		}
		typ := webrtc.RTPCodecTypeAudio
		if kind == kindVideo {
			typ = webrtc.RTPCodecTypeVideo
		}
		if e.recvonly {
			if _, err := pc.AddTransceiverFromKind(typ, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return nil, errorf(codeSDPCreate, "Cannot add %s transceiver: %v", kind, err)
			}
			continue
		}
		dir := webrtc.RTPTransceiverDirectionSendrecv
		if e.sendonly {
			dir = webrtc.RTPTransceiverDirectionSendonly
		}
		st := newSinkTrack(e, kind)
		if _, err := pc.AddTransceiverFromTrack(st, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			return nil, errorf(codeSDPCreate, "Cannot add %s transceiver: %v", kind, err)
		}
		e.out[kind].Store(st)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, errorf(codeSDPCreate, "Cannot create offer: %v", err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, errorf(codeSDPCreate, "Cannot set offer: %v", err)
	}
	return pc.LocalDescription().SDP, nil
}

func (e *endpoint) processAnswer(answer string) (any, *rpcError) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(answer); err != nil {
		return nil, errorf(codeSDPParse, "Error parsing SDP answer: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errorf(codeObjectNotFound, "Object '%s' not found", e.id)
	}
	if e.negotiated {
		return nil, errorf(codeSDPAlreadyNegotiated, "Endpoint already negotiated")
	}
	if e.pc == nil || e.pc.LocalDescription() == nil {
		return nil, errorf(codeSDPProcessAnswer, "processAnswer without generateOffer")
	}
	if err := e.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, errorf(codeSDPProcessAnswer, "Cannot process answer: %v", err)
	}
	e.negotiated = true
	e.afterRemoteLocked(e.pc)
	return e.pc.LocalDescription().SDP, nil
}

// afterRemoteLocked runs once the remote description is set: queued remote
// candidates are applied and every outgoing track gets an RTCP reader (PLI,
// FIR and REMB from our peer; reading also drives the NACK responder).
func (e *endpoint) afterRemoteLocked(pc *webrtc.PeerConnection) {
	for _, c := range e.pendingRemote {
		if err := pc.AddICECandidate(c); err != nil {
			e.n.log.Debug("queued remote candidate rejected", "endpoint", e.id, "candidate", c.Candidate, "err", err)
		}
	}
	e.pendingRemote = nil
	for _, tr := range pc.GetTransceivers() {
		s := tr.Sender()
		if s == nil {
			continue
		}
		st, ok := s.Track().(*sinkTrack)
		if !ok {
			continue
		}
		go e.readSenderRTCP(s, st.kind)
	}
}

func (e *endpoint) gatherCandidates() *rpcError {
	e.eventMu.Lock()
	defer e.eventMu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errorf(codeObjectNotFound, "Object '%s' not found", e.id)
	}
	if e.gatherCalled {
		e.mu.Unlock()
		return nil
	}
	e.gatherCalled = true
	pending := e.pendingLocal
	e.pendingLocal = nil
	done := e.gatherDone && !e.doneSent
	if done {
		e.doneSent = true
	}
	e.mu.Unlock()
	for _, c := range pending {
		e.emitCandidate(c)
	}
	if done {
		e.n.emit(e.id, "IceGatheringDone", nil)
	}
	return nil
}

func (e *endpoint) addIceCandidate(c webrtc.ICECandidateInit) *rpcError {
	s := strings.TrimSpace(strings.TrimPrefix(c.Candidate, "candidate:"))
	if s == "" {
		return nil // end-of-candidates (RFC 8838 §4.4): nothing to do
	}
	cand, err := ice.UnmarshalCandidate(s)
	if err != nil {
		return errorf(codeICEAddCandidate, "Cannot parse candidate %q: %v", c.Candidate, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errorf(codeObjectNotFound, "Object '%s' not found", e.id)
	}
	if e.pc == nil || e.pc.RemoteDescription() == nil {
		// OpenVidu adds candidates that arrived before the offer (video.md §5.6).
		e.pendingRemote = append(e.pendingRemote, c)
		return nil
	}
	if err := e.pc.AddICECandidate(c); err != nil {
		if strings.HasSuffix(cand.Address(), ".local") {
			// mDNS names are not resolved; the peer's checks reach us anyway
			// and become peer-reflexive candidates.
			return nil
		}
		return errorf(codeICEAddCandidate, "Cannot add candidate: %v", err)
	}
	return nil
}

func (e *endpoint) onCandidate(c *webrtc.ICECandidate) {
	e.eventMu.Lock()
	defer e.eventMu.Unlock()
	e.mu.Lock()
	if c == nil {
		e.gatherDone = true
		send := e.gatherCalled && !e.doneSent
		if send {
			e.doneSent = true
		}
		e.mu.Unlock()
		if send {
			e.n.emit(e.id, "IceGatheringDone", nil)
		}
		return
	}
	init := c.ToJSON()
	if !e.gatherCalled {
		e.pendingLocal = append(e.pendingLocal, init)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.emitCandidate(init)
}

func (e *endpoint) emitCandidate(c webrtc.ICECandidateInit) {
	mid, idx := "0", uint16(0)
	if c.SDPMid != nil && *c.SDPMid != "" {
		mid = *c.SDPMid
	}
	if c.SDPMLineIndex != nil {
		idx = *c.SDPMLineIndex
	}
	e.n.emit(e.id, "IceCandidateFound", map[string]any{"candidate": map[string]any{
		"__module__": "kurento", "__type__": "IceCandidate",
		"candidate": c.Candidate, "sdpMid": mid, "sdpMLineIndex": idx,
	}})
}

func (e *endpoint) onICEState(s webrtc.ICEConnectionState) {
	state := map[webrtc.ICEConnectionState]string{
		webrtc.ICEConnectionStateChecking:     "CONNECTING",
		webrtc.ICEConnectionStateConnected:    "CONNECTED",
		webrtc.ICEConnectionStateCompleted:    "READY",
		webrtc.ICEConnectionStateFailed:       "FAILED",
		webrtc.ICEConnectionStateDisconnected: "DISCONNECTED",
	}[s]
	if state == "" {
		return
	}
	e.n.emit(e.id, "IceComponentStateChanged", map[string]any{"streamId": 0, "componentId": 1, "state": state})
}

func (e *endpoint) onConnState(s webrtc.PeerConnectionState) {
	var now bool
	switch s {
	case webrtc.PeerConnectionStateConnected:
		now = true
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		now = false
	default:
		return
	}
	if e.connected.Swap(now) == now {
		return
	}
	oldS, newS := "DISCONNECTED", "CONNECTED"
	if !now {
		oldS, newS = newS, oldS
	}
	ch := map[string]any{"oldState": oldS, "newState": newS}
	e.n.emit(e.id, "ConnectionStateChanged", ch)
	e.n.emit(e.id, "MediaStateChanged", ch)
	if now {
		// A subscriber connected before its transport was up missed the key
		// frame its connect asked for; ask again now that packets get through.
		if up := e.upstream[kindVideo].Load(); up != nil {
			up.requestKeyframe()
		}
		e.n.emit(e.id, "MediaSessionStarted", nil)
	} else {
		e.n.emit(e.id, "MediaSessionTerminated", nil)
	}
	e.n.log.Debug("endpoint connection state", "endpoint", e.id, "state", s.String())
}

func (e *endpoint) onPair(p *webrtc.ICECandidatePair) {
	if p == nil || p.Local == nil || p.Remote == nil {
		return
	}
	e.n.emit(e.id, "NewCandidatePairSelected", map[string]any{"candidatePair": map[string]any{
		"__module__": "kurento", "__type__": "IceCandidatePair",
		"streamID": "0", "componentID": 1,
		"localCandidate": p.Local.ToJSON().Candidate, "remoteCandidate": p.Remote.ToJSON().Candidate,
	}})
}

func (e *endpoint) flowing(k mediaKind, in bool) bool {
	if in {
		return e.flowIn[k].Load()
	}
	return e.flowOut[k].Load()
}

// flowTimeout is how long without packets before a flow counts as stopped.
const flowTimeout = 2 * time.Second

func (e *endpoint) setFlow(k mediaKind, in, on bool) {
	flags, typ := &e.flowOut, "MediaFlowOutStateChanged"
	if in {
		flags, typ = &e.flowIn, "MediaFlowInStateChanged"
	}
	if flags[k].Swap(on) == on {
		return
	}
	state := "NOT_FLOWING"
	if on {
		state = "FLOWING"
	}
	e.n.emit(e.id, typ, map[string]any{"state": state, "padName": "default", "mediaType": k.String()})
}

// tick is the endpoint's share of the node's housekeeping: byte counts since
// the last tick, flow timeouts and the REMB to our peer.
func (e *endpoint) tick(now time.Time) (in, out uint64) {
	bi, bo := e.bytesIn.Load(), e.bytesOut.Load()
	in, out = bi-e.tickIn, bo-e.tickOut
	e.tickIn, e.tickOut = bi, bo
	for k := range numKinds {
		if e.flowIn[k].Load() && now.UnixNano()-e.lastIn[k].Load() > int64(flowTimeout) {
			e.setFlow(k, true, false)
		}
		if e.flowOut[k].Load() && now.UnixNano()-e.lastOut[k].Load() > int64(flowTimeout) {
			e.setFlow(k, false, false)
		}
	}
	e.sendREMB(now)
	return in, out
}

func (e *endpoint) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	pc := e.pc
	e.mu.Unlock()
	for k := range numKinds {
		e.out[k].Store(nil)
		e.in[k].Store(nil)
		e.targets[k].Store(&[]*endpoint{})
		e.upstream[k].Store(nil)
	}
	if pc != nil {
		if err := pc.Close(); err != nil {
			e.n.log.Debug("close peer connection", "endpoint", e.id, "err", err)
		}
	}
}

func kindOf(t webrtc.RTPCodecType) mediaKind {
	switch t {
	case webrtc.RTPCodecTypeAudio:
		return kindAudio
	case webrtc.RTPCodecTypeVideo:
		return kindVideo
	}
	return -1
}

func (e *endpoint) String() string { return fmt.Sprintf("WebRtcEndpoint(%s)", e.id) }
