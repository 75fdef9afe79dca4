package openvidu

import (
	"net"
	"strconv"
	"time"
)

// event starts a webhook event with the common fields (CDREvent.toJson, video.md
// §4.1): uniqueSessionId tells apart sessions that reuse a custom id.
func (ss *session) event(name string, at time.Time) Event {
	return Event{
		"event":           name,
		"timestamp":       at.UnixMilli(),
		"sessionId":       ss.id,
		"uniqueSessionId": ss.id + "_" + strconv.FormatInt(ss.createdAt.UnixMilli(), 10),
	}
}

// participantEvent is participantJoined/participantLeft (video.md §4.2).
func (ss *session) participantEvent(name string, p *participant) Event {
	ev := ss.event(name, time.Now())
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ev["participantId"] = p.id
	ev["connectionId"] = p.id
	ev["location"] = p.location
	ev["ip"] = p.ip
	ev["platform"] = p.platform
	ev["clientData"] = p.clientData
	ev["serverData"] = p.props.Data
	return ev
}

// webrtcEvent is webrtcConnectionCreated/Destroyed for a publication (OUTBOUND) or a
// subscription (INBOUND, receivingFrom the publisher).
func (ss *session) webrtcEvent(name string, p *participant, streamID, dir, from string, o MediaOptions) Event {
	ev := ss.event(name, time.Now())
	ev["streamId"] = streamID
	ev["participantId"] = p.id
	ev["connectionId"] = p.id
	ev["connection"] = dir
	if dir == "INBOUND" {
		ev["receivingFrom"] = from
	}
	ev["audioEnabled"] = o.HasAudio
	ev["videoEnabled"] = o.HasVideo
	if o.HasVideo {
		ev["videoSource"] = o.TypeOfVideo
		ev["videoFramerate"] = o.FrameRate
		ev["videoDimensions"] = o.VideoDimensions
	}
	return ev
}

// endFields adds what events that close something carry (CDREventEnd.toJson):
// startTime, duration in whole seconds, reason.
func endFields(ev Event, start time.Time, reason EndReason) {
	ev["startTime"] = start.UnixMilli()
	ev["duration"] = int64(time.Since(start) / time.Second)
	ev["reason"] = string(reason)
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
