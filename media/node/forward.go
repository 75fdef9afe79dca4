package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// sourceTrack is a track our peer sends us.
type sourceTrack struct {
	ep     *endpoint
	kind   mediaKind
	track  *webrtc.TrackRemote
	codecs []webrtc.RTPCodecParameters // negotiated, to map any payload type it uses
}

func (s *sourceTrack) codec(pt uint8) (webrtc.RTPCodecParameters, bool) {
	for _, c := range s.codecs {
		if uint8(c.PayloadType) == pt {
			return c, true
		}
	}
	if c := s.track.Codec(); uint8(c.PayloadType) == pt {
		return c, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// keyframeInterval bounds how often sinks can make a publisher send a key
// frame: every PLI costs the publisher a large frame, and N subscribers
// joining at once need only one.
const keyframeInterval = 200 * time.Millisecond

// receiveMTU is the largest packet read from a peer; pion's default.
const receiveMTU = 1460

func (e *endpoint) onTrack(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	k := kindOf(track.Kind())
	if k < 0 {
		return
	}
	src := &sourceTrack{ep: e, kind: k, track: track, codecs: receiver.GetParameters().Codecs}
	e.in[k].Store(src)
	e.n.log.Debug("endpoint receives track", "endpoint", e.id, "kind", k.String(), "codec", track.Codec().MimeType, "ssrc", uint32(track.SSRC()))
	go e.readReceiverRTCP(receiver)
	if k == kindVideo {
		// Subscribers may already be waiting for this publisher.
		if len(*e.targets[k].Load()) > 0 {
			e.requestKeyframe()
		}
	}
	e.forward(src)
}

// forward reads our peer's RTP and hands each packet to every sink. The
// payload is copied once into a buffer of its own size and shared by all
// sinks (the NACK responder keeps references, so it is never reused); only
// the 12-byte header is rewritten per sink.
func (e *endpoint) forward(src *sourceTrack) {
	buf := make([]byte, receiveMTU)
	k := src.kind
	for {
		n, _, err := src.track.Read(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		e.bytesIn.Add(uint64(n))
		e.lastIn[k].Store(time.Now().UnixNano())
		if !e.flowIn[k].Load() {
			e.setFlow(k, true, true)
		}
		if len(pkt.Payload) == 0 {
			continue // padding-only probe: nothing a sink can use
		}
		targets := *e.targets[k].Load()
		if len(targets) == 0 {
			continue
		}
		payload := make([]byte, len(pkt.Payload))
		copy(payload, pkt.Payload)
		for _, t := range targets {
			if st := t.out[k].Load(); st != nil {
				st.write(src, &pkt.Header, payload)
			}
		}
	}
}

// readReceiverRTCP drains RTCP for our peer's tracks: the interceptors (the
// receiver reports' round-trip data) need it read.
func (e *endpoint) readReceiverRTCP(r *webrtc.RTPReceiver) {
	buf := make([]byte, receiveMTU)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// readSenderRTCP reads our peer's feedback on a track we send: PLI and FIR
// go to the publisher upstream, REMB is kept for the publisher's estimate.
// NACKs are answered by the NACK responder inside this read.
func (e *endpoint) readSenderRTCP(s *webrtc.RTPSender, k mediaKind) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				// FIR is answered with PLI: every browser honours PLI, and
				// FIR would need per-sender sequence numbers (RFC 5104 §4.3.1).
				if k == kindVideo {
					if up := e.upstream[kindVideo].Load(); up != nil {
						up.requestKeyframe()
					}
				}
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				e.rembBps.Store(uint64(p.Bitrate))
				e.rembAt.Store(time.Now().UnixNano())
			}
		}
	}
}

// requestKeyframe sends a PLI to our peer for its video track.
func (e *endpoint) requestKeyframe() {
	src := e.in[kindVideo].Load()
	pc := e.pcRef.Load()
	if src == nil || pc == nil {
		return
	}
	now := time.Now().UnixNano()
	last := e.lastPLI.Load()
	if wait := int64(keyframeInterval) - (now - last); wait > 0 {
		// Too soon after the previous request: coalesce every request of
		// this interval into one sent when it ends, so none is lost.
		if e.pliPending.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				e.pliPending.Store(false)
				e.requestKeyframe()
			})
		}
		return
	}
	if !e.lastPLI.CompareAndSwap(last, now) {
		return
	}
	if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(src.track.SSRC())}}); err != nil {
		e.n.log.Debug("send PLI", "endpoint", e.id, "err", err)
	}
}

// rembMaxAge: a sink's estimate older than this no longer counts.
const rembMaxAge = 5 * time.Second

// sendREMB tells our peer how much video it may send: the lowest estimate
// among the sinks that receive it, within the endpoint's
// min/maxVideoRecvBandwidth (KMS semantics; 0 = no limit).
func (e *endpoint) sendREMB(now time.Time) {
	src := e.in[kindVideo].Load()
	pc := e.pcRef.Load()
	if src == nil || pc == nil {
		return
	}
	var est uint64
	for _, t := range *e.targets[kindVideo].Load() {
		if now.UnixNano()-t.rembAt.Load() > int64(rembMaxAge) {
			continue
		}
		if b := t.rembBps.Load(); b > 0 && (est == 0 || b < est) {
			est = b
		}
	}
	e.mu.Lock()
	maxKbps, minKbps := e.bandwidth["maxVideoRecvBandwidth"], e.bandwidth["minVideoRecvBandwidth"]
	e.mu.Unlock()
	if maxKbps > 0 && (est == 0 || est > uint64(maxKbps)*1000) {
		est = uint64(maxKbps) * 1000
	}
	if minKbps > 0 && est > 0 && est < uint64(minKbps)*1000 {
		est = uint64(minKbps) * 1000
	}
	if est == 0 {
		return
	}
	_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(est), SSRCs: []uint32{uint32(src.track.SSRC())}}})
}

// sinkTrack is one outgoing track of an endpoint, a pion TrackLocal of our
// own: unlike TrackLocalStaticRTP it maps each source's payload type to the
// sink's negotiated one and keeps sequence numbers and timestamps continuous
// when the source changes (a new connect), so the receiver's jitter buffer
// sees one stream.
type sinkTrack struct {
	ep       *endpoint
	kind     mediaKind
	id       string
	streamID string

	mu       sync.Mutex
	writer   webrtc.TrackLocalWriter // nil while unbound
	ssrc     uint32
	codecs   []webrtc.RTPCodecParameters
	src      *sourceTrack // the source of the last packet written
	ptIn     int          // last source payload type mapped (-1: none)
	ptOut    int          // its mapping (-1: no common codec)
	clock    uint32
	seqOff   uint16
	tsOff    uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   time.Time
	sent     bool
	warnedPT int
}

func newSinkTrack(e *endpoint, k mediaKind) *sinkTrack {
	kind := "audio"
	if k == kindVideo {
		kind = "video"
	}
	return &sinkTrack{ep: e, kind: k, id: kind + "-" + newUUID()[:8], streamID: "hearth-" + newUUID()[:8], ptIn: -1, warnedPT: -1}
}

// Bind is called by pion when negotiation completes.
func (s *sinkTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := ctx.CodecParameters()
	if len(codecs) == 0 {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writer = ctx.WriteStream()
	s.ssrc = uint32(ctx.SSRC())
	s.codecs = codecs
	s.ptIn = -1
	return codecs[0], nil
}

func (s *sinkTrack) Unbind(webrtc.TrackLocalContext) error {
	s.mu.Lock()
	s.writer = nil
	s.mu.Unlock()
	return nil
}

func (s *sinkTrack) ID() string       { return s.id }
func (s *sinkTrack) RID() string      { return "" }
func (s *sinkTrack) StreamID() string { return s.streamID }
func (s *sinkTrack) Kind() webrtc.RTPCodecType {
	if s.kind == kindVideo {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}

// mapPTLocked finds the sink's payload type for a source payload type.
func (s *sinkTrack) mapPTLocked(src *sourceTrack, pt uint8) int {
	if s.ptIn == int(pt) {
		return s.ptOut
	}
	s.ptIn, s.ptOut = int(pt), -1
	c, ok := src.codec(pt)
	if !ok {
		return -1
	}
	// Prefer the identical format line, then any compatible one.
	for pass := 0; pass < 2 && s.ptOut < 0; pass++ {
		for _, sc := range s.codecs {
			if codecMatch(c.RTPCodecCapability, sc.RTPCodecCapability) && (pass == 1 || c.SDPFmtpLine == sc.SDPFmtpLine) {
				s.ptOut, s.clock = int(sc.PayloadType), sc.ClockRate
				break
			}
		}
	}
	if s.ptOut < 0 && s.warnedPT != int(pt) {
		s.warnedPT = int(pt)
		s.ep.n.log.Warn("sink has no codec in common with its source, not forwarding (no transcoding)",
			"sink", s.ep.id, "source", src.ep.id, "codec", c.MimeType, "fmtp", c.SDPFmtpLine)
		mime := c.MimeType
		// Tell the application (outside our lock): KMS would transcode here.
		go s.ep.n.emit(s.ep.id, "Error", map[string]any{
			"description": fmt.Sprintf("no codec in common with source %s (%s): this media node does not transcode", src.ep.id, mime),
			"errorCode":   codeUnsupportedMediaType,
			"type":        "UNSUPPORTED_MEDIA_TYPE",
		})
	}
	return s.ptOut
}

func (s *sinkTrack) write(src *sourceTrack, in *rtp.Header, payload []byte) {
	if s.ep.upstream[s.kind].Load() != src.ep {
		return // a packet from a source this sink was just switched away from
	}
	now := time.Now()
	s.mu.Lock()
	w := s.writer
	if w == nil {
		s.mu.Unlock()
		return
	}
	pt := s.mapPTLocked(src, in.PayloadType)
	if pt < 0 {
		s.mu.Unlock()
		return
	}
	if src != s.src {
		// A new source continues the numbering where the old one stopped,
		// with the timestamp advanced by the wall-clock gap.
		if s.sent {
			s.seqOff = s.lastSeq + 1 - in.SequenceNumber
			gap := uint32(now.Sub(s.lastAt).Seconds()*float64(s.clock)) + 1
			s.tsOff = s.lastTS + gap - in.Timestamp
		}
		s.src = src
	}
	h := &rtp.Header{
		Version:        2,
		Marker:         in.Marker,
		PayloadType:    uint8(pt),
		SequenceNumber: in.SequenceNumber + s.seqOff,
		Timestamp:      in.Timestamp + s.tsOff,
		SSRC:           s.ssrc,
		CSRC:           in.CSRC,
	}
	if !s.sent || int16(h.SequenceNumber-s.lastSeq) > 0 {
		s.lastSeq, s.lastTS, s.lastAt = h.SequenceNumber, h.Timestamp, now
	}
	s.sent = true
	s.mu.Unlock()
	// Header extensions are dropped: their ids are the publisher's
	// negotiation, not this sink's.
	n, err := w.WriteRTP(h, payload)
	if err != nil {
		return
	}
	e := s.ep
	e.bytesOut.Add(uint64(n))
	e.lastOut[s.kind].Store(now.UnixNano())
	if !e.flowOut[s.kind].Load() {
		e.setFlow(s.kind, false, true)
	}
}
