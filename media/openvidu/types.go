package openvidu

import "encoding/json"

// Role is an OpenVidu connection role (video.md §1.7).
type Role string

// The roles, from least to most capable.
const (
	RoleSubscriber Role = "SUBSCRIBER" // receives only
	RolePublisher  Role = "PUBLISHER"  // receives and publishes
	RoleModerator  Role = "MODERATOR"  // publishes, and may force others out or unpublish them
)

func (r Role) valid() bool { return r == RoleSubscriber || r == RolePublisher || r == RoleModerator }

// CanPublish reports whether the role may publish a stream.
func (r Role) CanPublish() bool { return r == RolePublisher || r == RoleModerator }

// EndReason says why a participant, a stream or a session ended (OpenVidu's
// EndReason, video.md §4.3). The values travel in notifications and webhooks.
type EndReason string

// The end reasons hearth emits.
const (
	ReasonUnsubscribe             EndReason = "unsubscribe"
	ReasonUnpublish               EndReason = "unpublish"
	ReasonDisconnect              EndReason = "disconnect"
	ReasonForceUnpublishByUser    EndReason = "forceUnpublishByUser"
	ReasonForceUnpublishByServer  EndReason = "forceUnpublishByServer"
	ReasonForceDisconnectByUser   EndReason = "forceDisconnectByUser"
	ReasonForceDisconnectByServer EndReason = "forceDisconnectByServer"
	ReasonLastParticipantLeft     EndReason = "lastParticipantLeft"
	ReasonSessionClosedByServer   EndReason = "sessionClosedByServer"
	ReasonNetworkDisconnect       EndReason = "networkDisconnect"
	ReasonMediaServerDisconnect   EndReason = "mediaServerDisconnect"
	ReasonMediaServerReconnect    EndReason = "mediaServerReconnect"
	ReasonNodeCrashed             EndReason = "nodeCrashed"
	ReasonOpenviduServerStopped   EndReason = "openviduServerStopped"
)

// sessionEndReason maps a participant's end reason to the reason of the session it
// emptied (RecordingManager.finalReason, video.md §4.2): the four ordinary ways out
// become lastParticipantLeft, the rest pass through.
func sessionEndReason(r EndReason) EndReason {
	switch r {
	case ReasonDisconnect, ReasonForceDisconnectByUser, ReasonForceDisconnectByServer, ReasonNetworkDisconnect:
		return ReasonLastParticipantLeft
	}
	return r
}

// KurentoOptions are a connection's media limits (video.md §1.7). Zero bandwidths
// are left at the media node's defaults.
type KurentoOptions struct {
	VideoMaxRecvBandwidth int      `json:"videoMaxRecvBandwidth,omitempty"`
	VideoMinRecvBandwidth int      `json:"videoMinRecvBandwidth,omitempty"`
	VideoMaxSendBandwidth int      `json:"videoMaxSendBandwidth,omitempty"`
	VideoMinSendBandwidth int      `json:"videoMinSendBandwidth,omitempty"`
	AllowedFilters        []string `json:"allowedFilters,omitempty"`
}

// IceServer is one entry of a connection's customIceServers: OpenVidu's shape, with
// the singular url that openvidu-browser reads (video.md §3.4).
type IceServer struct {
	URL        string `json:"url"`
	Username   string `json:"username,omitempty"`
	Credential string `json:"credential,omitempty"`
}

// ConnectionProperties are what a connection is created with (REST POST
// .../connection, POST /tokens, or the MUC token IQ).
type ConnectionProperties struct {
	Role           Role
	Data           string // serverData
	Record         bool
	KurentoOptions *KurentoOptions
	// CustomIceServers replace the generated TURN entry when set.
	CustomIceServers []IceServer
	// TURNUser names the TURN credentials' user part (coturn REST: expiry:user);
	// default the connection id.
	TURNUser string
}

// RecordingProperties are a session's defaultRecordingProperties. hearth does not
// record, but keeps and returns them as OpenVidu does (video.md §1.3, §1.4).
type RecordingProperties struct {
	Name                string
	HasAudio, HasVideo  bool
	OutputMode          string
	RecordingLayout     string
	Resolution          string
	FrameRate           int
	ShmSize             int64
	CustomLayout        string
	IgnoreFailedStreams bool
	MediaNode           string
}

func defaultRecordingProperties() RecordingProperties {
	return RecordingProperties{HasAudio: true, HasVideo: true, OutputMode: "COMPOSED",
		RecordingLayout: "BEST_FIT", Resolution: "1280x720", FrameRate: 25, ShmSize: 536870912}
}

// MarshalJSON follows RecordingProperties.toJson: the layout keys only for a
// composed recording with video, customLayout only for CUSTOM, ignoreFailedStreams
// only for INDIVIDUAL.
func (p RecordingProperties) MarshalJSON() ([]byte, error) {
	m := map[string]any{"name": p.Name, "hasAudio": p.HasAudio, "hasVideo": p.HasVideo, "outputMode": p.OutputMode}
	if (p.OutputMode == "COMPOSED" || p.OutputMode == "COMPOSED_QUICK_START") && p.HasVideo {
		m["recordingLayout"] = p.RecordingLayout
		m["resolution"] = p.Resolution
		m["frameRate"] = p.FrameRate
		m["shmSize"] = p.ShmSize
		if p.RecordingLayout == "CUSTOM" {
			m["customLayout"] = p.CustomLayout
		}
	}
	if p.OutputMode == "INDIVIDUAL" {
		m["ignoreFailedStreams"] = p.IgnoreFailedStreams
	}
	if p.MediaNode != "" {
		m["mediaNode"] = map[string]string{"id": p.MediaNode}
	}
	return json.Marshal(m)
}

// SessionProperties are what a session is created with (REST POST /sessions).
type SessionProperties struct {
	CustomSessionID            string
	MediaMode                  string // ROUTED (RELAYED is accepted and treated as ROUTED, as OpenVidu does)
	RecordingMode              string // MANUAL or ALWAYS
	ForcedVideoCodec           string // MEDIA_SERVER_PREFERRED, NONE, VP8, VP9, H264
	AllowTranscoding           bool
	DefaultRecordingProperties RecordingProperties
	MediaNode                  string
}

// DefaultSessionProperties are the properties of a session created without a body
// (and of the implicit session of a MUC room).
func DefaultSessionProperties() SessionProperties {
	return SessionProperties{MediaMode: "ROUTED", RecordingMode: "MANUAL", ForcedVideoCodec: "MEDIA_SERVER_PREFERRED",
		DefaultRecordingProperties: defaultRecordingProperties()}
}

// videoCodec is the codec publisher and subscriber offers are restricted to, or ""
// for no restriction. MEDIA_SERVER_PREFERRED is VP8 on Kurento (video.md §1.3), and
// one codec for everyone is what lets a forwarding node serve every subscriber.
func (p SessionProperties) videoCodec() string {
	switch p.ForcedVideoCodec {
	case "NONE":
		return ""
	case "VP9", "H264", "VP8":
		return p.ForcedVideoCodec
	}
	return "VP8"
}

// MediaOptions describe a published stream (publishVideo parameters, MediaOptions.toJson).
type MediaOptions struct {
	HasAudio, HasVideo       bool
	AudioActive, VideoActive bool
	TypeOfVideo              string
	FrameRate                float64
	VideoDimensions          string // a JSON string, as the browser sends it
	Filter                   json.RawMessage
}

// json renders the options the way OpenVidu does: audioActive only with audio, the
// four video keys only with video.
func (m MediaOptions) json() map[string]any {
	out := map[string]any{"hasAudio": m.HasAudio, "hasVideo": m.HasVideo, "filter": m.filter()}
	if m.HasAudio {
		out["audioActive"] = m.AudioActive
	}
	if m.HasVideo {
		out["videoActive"] = m.VideoActive
		out["typeOfVideo"] = m.TypeOfVideo
		out["frameRate"] = m.FrameRate
		out["videoDimensions"] = m.VideoDimensions
	}
	return out
}

func (m MediaOptions) filter() json.RawMessage {
	if len(m.Filter) == 0 || string(m.Filter) == "null" {
		return json.RawMessage("{}")
	}
	return m.Filter
}
