package node

import (
	"slices"
	"sort"
	"strings"
	"time"
)

const serverManagerID = "manager_ServerManager"

// Kurento type names, their qualified hierarchy (describe) and the events
// each class adds (video.md §5.3).
var (
	hierarchies = map[string][]string{
		"ServerManager":  {"kurento.MediaObject"},
		"MediaPipeline":  {"kurento.MediaObject"},
		"PassThrough":    {"kurento.MediaElement", "kurento.MediaObject"},
		"WebRtcEndpoint": {"kurento.BaseRtpEndpoint", "kurento.SdpEndpoint", "kurento.SessionEndpoint", "kurento.Endpoint", "kurento.MediaElement", "kurento.MediaObject"},
	}
	classEvents = map[string][]string{
		"kurento.MediaObject":     {"Error"},
		"kurento.ServerManager":   {"ObjectCreated", "ObjectDestroyed"},
		"kurento.MediaElement":    {"ElementConnected", "ElementDisconnected", "MediaFlowInStateChanged", "MediaFlowOutStateChanged", "MediaTranscodingStateChanged"},
		"kurento.SessionEndpoint": {"MediaSessionStarted", "MediaSessionTerminated"},
		"kurento.BaseRtpEndpoint": {"MediaStateChanged", "ConnectionStateChanged"},
		"kurento.WebRtcEndpoint":  {"IceCandidateFound", "IceGatheringDone", "IceComponentStateChanged", "NewCandidatePairSelected", "DtlsConnectionStateChange", "DataChannelOpened", "DataChannelClosed"},
	}
)

func supportsEvent(typ, event string) bool {
	if slices.Contains(classEvents["kurento."+typ], event) {
		return true
	}
	for _, c := range hierarchies[typ] {
		if slices.Contains(classEvents[c], event) {
			return true
		}
	}
	return false
}

// object is anything with a Kurento id.
type object interface {
	base() *objectBase
}

type objectBase struct {
	id       string
	typ      string
	owner    string    // id of the session that created it
	pipe     *pipeline // nil for a pipeline
	name     string
	tags     map[string]string
	sendTags bool
	created  time.Time
}

func (b *objectBase) base() *objectBase { return b }

func (b *objectBase) tagList() []map[string]string {
	keys := make([]string, 0, len(b.tags))
	for k := range b.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]string{"key": k, "value": b.tags[k]})
	}
	return out
}

type pipeline struct {
	objectBase
	children map[string]object
}

// mediaKind indexes per-kind state: Kurento's AUDIO and VIDEO (DATA is
// accepted in connect and ignored: the node has no data channels).
type mediaKind int

const (
	kindAudio mediaKind = iota
	kindVideo
	numKinds
)

func (k mediaKind) String() string {
	if k == kindAudio {
		return "AUDIO"
	}
	return "VIDEO"
}

// element is a MediaElement: a node of the pipeline's media graph. Each
// element has at most one source per kind (connecting another replaces it,
// as in KMS) and any number of sinks.
type element struct {
	objectBase
	sources [numKinds]*element
	sinks   [numKinds][]*element
	ep      *endpoint // nil for a PassThrough
	minOut  int       // setMinOutputBitrate etc. are stored and echoed only
	maxOut  int
}

func (e *element) elem() *element { return e }

type elementObject interface {
	object
	elem() *element
}

type passThrough struct {
	element
}

// childID builds "<pipelineId>/<uuid>_kurento.<Type>": kurento-client drops
// a released pipeline's children from its cache by this prefix.
func childID(pipe, typ string) string {
	return pipe + "/" + newUUID() + "_kurento." + typ
}

// lookup finds a live object. Callers hold n.mu.
func (n *Node) lookup(id string) (object, *rpcError) {
	if o := n.objects[id]; o != nil {
		return o, nil
	}
	return nil, errorf(codeObjectNotFound, "Object '%s' not found", id)
}

func typeOf(id string) string {
	if id == serverManagerID {
		return "ServerManager"
	}
	if i := strings.LastIndex(id, "_kurento."); i >= 0 {
		return id[i+len("_kurento."):]
	}
	return ""
}
