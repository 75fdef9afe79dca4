package openvidu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hearth-im/hearth/media/turn"
)

// REST API (video.md §1): the subset of OpenVidu 2.32.2 CE's /openvidu/api that
// openvidu-node-client and applications use, with OpenVidu's status codes, its
// JSON error body, and its empty bodies where OpenVidu sends none.

const apiPrefix = "/openvidu/api"

// APIHandler serves the REST API; mount it at /openvidu/api/.
func (s *Server) APIHandler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, fn)
	}
	h("POST "+apiPrefix+"/sessions", s.postSession)
	h("GET "+apiPrefix+"/sessions", s.listSessions)
	h("GET "+apiPrefix+"/sessions/{id}", s.getSession)
	h("DELETE "+apiPrefix+"/sessions/{id}", s.deleteSession)
	h("POST "+apiPrefix+"/sessions/{id}/connection", s.postConnection)
	h("GET "+apiPrefix+"/sessions/{id}/connection", s.listConnections)
	h("GET "+apiPrefix+"/sessions/{id}/connection/{cid}", s.getConnection)
	h("PATCH "+apiPrefix+"/sessions/{id}/connection/{cid}", s.patchConnection)
	h("DELETE "+apiPrefix+"/sessions/{id}/connection/{cid}", s.deleteConnection)
	h("DELETE "+apiPrefix+"/sessions/{id}/stream/{sid}", s.deleteStream)
	h("POST "+apiPrefix+"/tokens", s.postToken)
	h("POST "+apiPrefix+"/signal", s.postSignal)
	h("GET "+apiPrefix+"/config", s.getConfig)
	h("GET "+apiPrefix+"/config/openvidu-version", func(w http.ResponseWriter, _ *http.Request) { text(w, Version) })
	h("GET "+apiPrefix+"/config/openvidu-publicurl", func(w http.ResponseWriter, _ *http.Request) { text(w, s.publicURL()) })
	h("GET "+apiPrefix+"/config/openvidu-recording", func(w http.ResponseWriter, _ *http.Request) { text(w, "false") })
	h("GET "+apiPrefix+"/config/openvidu-recording-path", func(w http.ResponseWriter, _ *http.Request) { text(w, "") })
	h("GET "+apiPrefix+"/config/openvidu-cdr", func(w http.ResponseWriter, _ *http.Request) { text(w, "false") })
	// Recording and broadcasting are disabled: OpenVidu answers 501 then.
	notImpl := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotImplemented) }
	h(apiPrefix+"/recordings", notImpl)
	h(apiPrefix+"/recordings/", notImpl)
	h(apiPrefix+"/broadcast/", notImpl)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// SecurityConfig.corsFilter: any origin, header and method.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS, HEAD")
			w.Header().Set("Access-Control-Allow-Headers", "*")
			w.WriteHeader(http.StatusOK)
			return
		}
		public := r.URL.Path == apiPrefix+"/config/openvidu-publicurl" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
		if !public && !s.checkAuth(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="OpenVidu"`)
			s.apiError(w, r, http.StatusUnauthorized, "Unauthorized")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func text(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, s)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiError writes OpenVidu's JSON error body (SessionRestController.generateErrorResponse).
func (s *Server) apiError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeJSON(w, code, map[string]any{
		"timestamp": time.Now().UnixMilli(), "status": code, "error": http.StatusText(code),
		"message": msg, "path": r.URL.Path,
	})
}

// body reads a JSON object body; an absent body is an empty object. null values
// count as absent, since node-client sends null for every unset field (§1.1).
func readBody(r *http.Request) (args, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return args{}, nil
	}
	var a args
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("the body is not a JSON object: %v", err)
	}
	if a == nil {
		a = args{}
	}
	return a, nil
}

func (s *Server) postSession(w http.ResponseWriter, r *http.Request) {
	a, err := readBody(r)
	if err != nil {
		s.apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p, msg := parseSessionProperties(a)
	if msg != "" {
		s.apiError(w, r, http.StatusBadRequest, msg)
		return
	}
	ss, created, err := s.ensureSession(p, false)
	switch {
	case errors.Is(err, ErrClosed):
		s.apiError(w, r, http.StatusServiceUnavailable, "server shutting down")
		return
	case err != nil:
		s.apiError(w, r, http.StatusBadRequest, err.Error())
		return
	case !created:
		w.WriteHeader(http.StatusConflict)
		return
	}
	writeJSON(w, http.StatusOK, ss.json(false))
}

func parseSessionProperties(a args) (SessionProperties, string) {
	p := DefaultSessionProperties()
	typeErr := func(k string) string { return "Type error in some parameter: '" + k + "'" }
	enum := func(k string, dst *string, allowed ...string) string {
		if !a.present(k) {
			return ""
		}
		v, err := a.str(k, true)
		if err != nil {
			return typeErr(k)
		}
		for _, x := range allowed {
			if v == x {
				*dst = v
				return ""
			}
		}
		return "Some parameter is not valid. Parameter '" + k + "' has an invalid value: " + v
	}
	if m := enum("mediaMode", &p.MediaMode, "ROUTED", "RELAYED"); m != "" {
		return p, m
	}
	if m := enum("recordingMode", &p.RecordingMode, "MANUAL", "ALWAYS"); m != "" {
		return p, m
	}
	if a.present("forcedVideoCodec") {
		if m := enum("forcedVideoCodec", &p.ForcedVideoCodec, "MEDIA_SERVER_PREFERRED", "NONE", "VP8", "VP9", "H264"); m != "" {
			return p, "Invalid value for parameter 'forcedVideoCodec'"
		}
	}
	if a.present("allowTranscoding") {
		b, err := a.boolean("allowTranscoding", true)
		if err != nil {
			return p, typeErr("allowTranscoding")
		}
		p.AllowTranscoding = b
	}
	id, err := a.str("customSessionId", false)
	if err != nil {
		return p, typeErr("customSessionId")
	}
	if id != "" && !ValidSessionID(id) {
		return p, "Some parameter is not valid. Parameter 'customSessionId' is wrong. Must be an alphanumeric string [a-zA-Z0-9_-]"
	}
	p.CustomSessionID = id
	if a.present("defaultRecordingProperties") {
		var rp map[string]json.RawMessage
		if json.Unmarshal(a["defaultRecordingProperties"], &rp) != nil || rp == nil {
			return p, "Type error in some parameter: 'defaultRecordingProperties' must be a JSON object"
		}
		if m := parseRecording(args(rp), &p.DefaultRecordingProperties); m != "" {
			return p, m
		}
	}
	if a.present("mediaNode") {
		var mn struct {
			ID *string `json:"id"`
		}
		if json.Unmarshal(a["mediaNode"], &mn) != nil || mn.ID == nil {
			return p, "Type error in some parameter: 'mediaNode' must be an object with a string 'id'"
		}
		p.MediaNode = *mn.ID
	}
	return p, ""
}

func parseRecording(a args, rp *RecordingProperties) string {
	bad := func(k string) string {
		return "Type error in some parameter of 'defaultRecordingProperties': '" + k + "'"
	}
	strs := map[string]*string{"name": &rp.Name, "outputMode": &rp.OutputMode, "recordingLayout": &rp.RecordingLayout,
		"resolution": &rp.Resolution, "customLayout": &rp.CustomLayout}
	for k, dst := range strs {
		if a.present(k) {
			v, err := a.str(k, true)
			if err != nil {
				return bad(k)
			}
			*dst = v
		}
	}
	bools := map[string]*bool{"hasAudio": &rp.HasAudio, "hasVideo": &rp.HasVideo, "ignoreFailedStreams": &rp.IgnoreFailedStreams}
	for k, dst := range bools {
		if a.present(k) {
			v, err := a.boolean(k, true)
			if err != nil {
				return bad(k)
			}
			*dst = v
		}
	}
	if a.present("frameRate") {
		if json.Unmarshal(a["frameRate"], &rp.FrameRate) != nil {
			return bad("frameRate")
		}
	}
	if a.present("shmSize") {
		if json.Unmarshal(a["shmSize"], &rp.ShmSize) != nil {
			return bad("shmSize")
		}
	}
	switch rp.OutputMode {
	case "COMPOSED", "INDIVIDUAL", "COMPOSED_QUICK_START":
	default:
		return "Some parameter is not valid. Parameter 'outputMode' has an invalid value: " + rp.OutputMode
	}
	return ""
}

func queryBool(r *http.Request, k string, def bool) bool {
	v := r.URL.Query().Get(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def
	}
	return b
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, ss.json(queryBool(r, "pendingConnections", false)))
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	pending := queryBool(r, "pendingConnections", false)
	s.mu.Lock()
	list := s.sessionList()
	s.mu.Unlock()
	content := make([]any, 0, len(list))
	for _, ss := range list {
		content = append(content, ss.json(pending))
	}
	writeJSON(w, http.StatusOK, map[string]any{"numberOfElements": len(content), "content": content})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if err := ss.do(ctx, func() { ss.close(ReasonSessionClosedByServer) }); err != nil {
		s.apiError(w, r, http.StatusBadRequest, "Timeout waiting for Session "+ss.id+" closing lock to be available")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) postConnection(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	a, err := readBody(r)
	if err != nil {
		s.apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	cp, code, msg := s.parseConnectionProperties(a)
	if code != 0 {
		s.apiError(w, r, code, msg)
		return
	}
	p, err := ss.newConnection(cp)
	if err != nil {
		s.apiError(w, r, http.StatusNotFound, "Session "+ss.id+" not found")
		return
	}
	writeJSON(w, http.StatusOK, p.json())
}

// parseConnectionProperties reads ConnectionProperties.fromJson's fields (§1.7).
func (s *Server) parseConnectionProperties(a args) (ConnectionProperties, int, string) {
	cp := ConnectionProperties{Role: RolePublisher, Record: true}
	typeErr := func(k string) (ConnectionProperties, int, string) {
		return cp, http.StatusBadRequest, "Type error in some parameter: '" + k + "'"
	}
	typ, err := a.str("type", false)
	if err != nil {
		return typeErr("type")
	}
	switch typ {
	case "", "WEBRTC":
	case "IPCAM":
		return cp, http.StatusNotImplemented, "IPCAM connections are not supported"
	default:
		return cp, http.StatusBadRequest, "Parameter 'type' " + typ + " is not defined"
	}
	if cp.Data, err = a.str("data", false); err != nil {
		return typeErr("data")
	}
	if a.present("record") {
		if cp.Record, err = a.boolean("record", true); err != nil {
			return typeErr("record")
		}
	}
	if a.present("role") {
		role, err := a.str("role", true)
		if err != nil || !Role(role).valid() {
			return cp, http.StatusBadRequest, "Parameter 'role' " + role + " is not defined"
		}
		cp.Role = Role(role)
	}
	if a.present("kurentoOptions") {
		var k KurentoOptions
		if err := json.Unmarshal(a["kurentoOptions"], &k); err != nil {
			return cp, http.StatusBadRequest, "Type error in some parameter of 'kurentoOptions': " + err.Error()
		}
		cp.KurentoOptions = &k
	}
	if a.present("customIceServers") {
		var list []struct {
			URL              *string `json:"url"`
			Username         string  `json:"username"`
			Credential       string  `json:"credential"`
			StaticAuthSecret string  `json:"staticAuthSecret"`
		}
		if err := json.Unmarshal(a["customIceServers"], &list); err != nil {
			return cp, http.StatusBadRequest, "Type error in some parameter of 'customIceServers': " + err.Error()
		}
		for _, e := range list {
			if e.URL == nil || *e.URL == "" {
				return cp, http.StatusBadRequest, "Type error in some parameter of 'customIceServers': 'url' is mandatory"
			}
			is := IceServer{URL: *e.URL, Username: e.Username, Credential: e.Credential}
			if e.StaticAuthSecret != "" {
				// The server mints REST credentials from the given secret (§1.7, §9).
				c := turn.Mint(e.StaticAuthSecret, randomID("", 7), 24*time.Hour, time.Now())
				is.Username, is.Credential = c.Username, c.Password
			}
			cp.CustomIceServers = append(cp.CustomIceServers, is)
		}
	}
	return cp, 0, ""
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, ss.connectionsJSON(queryBool(r, "pendingConnections", true)))
}

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p := ss.participant(r.PathValue("cid"))
	if p == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p.json())
}

// patchConnection is OpenVidu Pro's connection update (node-client's
// updateConnection): role and record.
func (s *Server) patchConnection(w http.ResponseWriter, r *http.Request) {
	a, err := readBody(r)
	if err != nil {
		s.apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	var role Role
	if a.present("role") {
		v, err := a.str("role", true)
		if err != nil || !Role(v).valid() {
			s.apiError(w, r, http.StatusBadRequest, "Parameter 'role' "+v+" is not defined")
			return
		}
		role = Role(v)
	}
	var record *bool
	if a.present("record") {
		b, err := a.boolean("record", true)
		if err != nil {
			s.apiError(w, r, http.StatusBadRequest, "Type error in some parameter: 'record'")
			return
		}
		record = &b
	}
	var out map[string]any
	err = s.onConnection(r.Context(), r.PathValue("id"), r.PathValue("cid"), func(ss *session, p *participant) {
		if role != "" {
			ss.setRole(p, role, ReasonForceUnpublishByServer)
		}
		if record != nil {
			ss.mu.Lock()
			changed := p.props.Record != *record
			p.props.Record = *record
			active := p.status == statusActive
			ss.mu.Unlock()
			if changed && active {
				p.notify("connectionPropertyChanged", map[string]any{"property": "record", "newValue": strconv.FormatBool(*record)})
			}
		}
		out = p.json()
	})
	if writeConnErr(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) {
	err := s.onConnection(r.Context(), r.PathValue("id"), r.PathValue("cid"), func(ss *session, p *participant) {
		ss.endParticipant(p, ReasonForceDisconnectByServer)
	})
	if writeConnErr(w, err) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeConnErr answers a failed connection lookup as OpenVidu does (§1.8): 400
// for an unknown session, 404 for an unknown connection, both with no body.
func writeConnErr(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrSessionNotFound):
		w.WriteHeader(http.StatusBadRequest)
	case errors.Is(err, ErrConnNotFound):
		w.WriteHeader(http.StatusNotFound)
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	return true
}

func (s *Server) deleteStream(w http.ResponseWriter, r *http.Request) {
	ss := s.session(r.PathValue("id"))
	if ss == nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var found bool
	ss.do(r.Context(), func() {
		if q := ss.owner(r.PathValue("sid")); q != nil {
			found = ss.unpublish(q, ReasonForceUnpublishByServer)
		}
	})
	if !found {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postToken is the deprecated POST /tokens (§1.9).
func (s *Server) postToken(w http.ResponseWriter, r *http.Request) {
	a, err := readBody(r)
	if err != nil {
		s.apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	id, serr := a.str("session", false)
	if serr != nil || id == "" {
		s.apiError(w, r, http.StatusBadRequest, "\"session\" parameter is mandatory")
		return
	}
	delete(a, "record")
	delete(a, "session")
	cp, code, msg := s.parseConnectionProperties(a)
	if code != 0 {
		s.apiError(w, r, code, msg)
		return
	}
	ss := s.session(id)
	var p *participant
	if ss != nil {
		p, err = ss.newConnection(cp)
	}
	if ss == nil || err != nil {
		s.apiError(w, r, http.StatusNotFound, "Session "+id+" not found")
		return
	}
	out := map[string]any{"id": p.token, "object": "token", "token": p.token, "createdAt": p.createdAt.UnixMilli(),
		"connectionId": p.id, "session": ss.id, "data": cp.Data, "role": string(cp.Role)}
	if cp.KurentoOptions != nil {
		out["kurentoOptions"] = cp.KurentoOptions
	}
	writeJSON(w, http.StatusOK, out)
}

// postSignal is POST /signal (§1.10).
func (s *Server) postSignal(w http.ResponseWriter, r *http.Request) {
	a, err := readBody(r)
	if err != nil {
		s.apiError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	id, serr := a.str("session", false)
	if serr != nil || id == "" {
		s.apiError(w, r, http.StatusBadRequest, "\"session\" parameter is mandatory")
		return
	}
	var to []string
	if a.present("to") {
		if json.Unmarshal(a["to"], &to) != nil {
			s.apiError(w, r, http.StatusBadRequest, "\"to\" parameter is not a valid JSON array")
			return
		}
	}
	typ, err1 := a.str("type", false)
	data, err2 := a.str("data", false)
	if err1 != nil || err2 != nil {
		s.apiError(w, r, http.StatusBadRequest, "Type error in some parameter")
		return
	}
	ss := s.session(id)
	if ss == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var rerr *rpcError
	var empty bool
	ss.do(r.Context(), func() {
		if len(ss.active()) == 0 {
			empty = true
			return
		}
		rerr = ss.signal("", to, &typ, &data)
	})
	switch {
	case empty:
		w.WriteHeader(http.StatusNotAcceptable)
	case rerr != nil:
		s.apiError(w, r, http.StatusNotAcceptable, "\"to\" array has no valid connection identifiers")
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) getConfig(w http.ResponseWriter, _ *http.Request) {
	var hook WebhookConfig
	if s.cfg.Webhook != nil {
		hook = s.cfg.Webhook()
	}
	cfg := map[string]any{
		"VERSION": Version, "OPENVIDU_PUBLICURL": s.publicURL(), "OPENVIDU_CDR": false,
		"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH": 1000, "OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH": 300,
		"OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH": 1000, "OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH": 300,
		"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC": "MEDIA_SERVER_PREFERRED", "OPENVIDU_STREAMS_ALLOW_TRANSCODING": false,
		"OPENVIDU_WEBRTC_SIMULCAST":           false,
		"OPENVIDU_SESSIONS_GARBAGE_INTERVAL":  int(s.cfg.Tick / time.Second),
		"OPENVIDU_SESSIONS_GARBAGE_THRESHOLD": int(s.cfg.GarbageThreshold / time.Second),
		"OPENVIDU_RECORDING":                  false, "OPENVIDU_WEBHOOK": hook.URL != "",
	}
	if hook.URL != "" {
		cfg["OPENVIDU_WEBHOOK_ENDPOINT"] = hook.URL
		cfg["OPENVIDU_WEBHOOK_HEADERS"] = nonNil(hook.Headers)
		cfg["OPENVIDU_WEBHOOK_EVENTS"] = nonNil(hook.Events)
	}
	writeJSON(w, http.StatusOK, cfg)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// json renders the Session object (§1.3).
func (ss *session) json(pending bool) map[string]any {
	return map[string]any{
		"id": ss.id, "object": "session", "sessionId": ss.id, "createdAt": ss.createdAt.UnixMilli(),
		"recording": false, "broadcasting": false, "mediaMode": ss.props.MediaMode, "recordingMode": ss.props.RecordingMode,
		"defaultRecordingProperties": ss.props.DefaultRecordingProperties, "customSessionId": ss.props.CustomSessionID,
		"forcedVideoCodec": ss.props.ForcedVideoCodec, "allowTranscoding": ss.props.AllowTranscoding,
		"connections": ss.connectionsJSON(pending),
	}
}

func (ss *session) connectionsJSON(pending bool) map[string]any {
	ss.mu.Lock()
	list := ss.sortedLocked()
	ss.mu.Unlock()
	content := make([]any, 0, len(list))
	for _, p := range list {
		ss.mu.Lock()
		st := p.status
		ss.mu.Unlock()
		if st == statusActive || (pending && st == statusPending) {
			content = append(content, p.json())
		}
	}
	return map[string]any{"numberOfElements": len(content), "content": content}
}

// json renders the Connection object (§1.6): active or pending.
func (p *participant) json() map[string]any {
	ss := p.ss
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var ko any
	if p.props.KurentoOptions != nil {
		ko = p.props.KurentoOptions
	}
	ice := p.props.CustomIceServers
	if ice == nil {
		ice = []IceServer{}
	}
	m := map[string]any{
		"id": p.id, "object": "connection", "status": p.status.String(), "connectionId": p.id, "sessionId": ss.id,
		"createdAt": p.createdAt.UnixMilli(), "token": p.token, "type": "WEBRTC", "record": p.props.Record,
		"role": string(p.props.Role), "kurentoOptions": ko, "customIceServers": ice, "rtspUri": nil,
		"adaptativeBitrate": nil, "onlyPlayWithSubscribers": nil, "networkCache": nil, "serverData": p.props.Data,
		"activeAt": nil, "location": nil, "ip": nil, "platform": nil, "clientData": nil, "publishers": nil, "subscribers": nil,
	}
	if p.status != statusActive {
		return m
	}
	m["activeAt"] = p.activeAt.UnixMilli()
	m["location"], m["ip"], m["platform"], m["clientData"] = p.location, p.ip, p.platform, p.clientData
	pubs := []any{}
	if p.pub != nil {
		pubs = append(pubs, map[string]any{"createdAt": p.pub.createdAt.UnixMilli(), "streamId": p.pub.streamID, "mediaOptions": p.pub.opts.json()})
	}
	list := make([]*subscription, 0, len(p.subs))
	for _, sub := range p.subs {
		list = append(list, sub)
	}
	slices.SortFunc(list, func(a, b *subscription) int { return a.createdAt.Compare(b.createdAt) })
	subs := []any{}
	for _, sub := range list {
		subs = append(subs, map[string]any{"createdAt": sub.createdAt.UnixMilli(), "streamId": sub.streamID})
	}
	m["publishers"], m["subscribers"] = pubs, subs
	return m
}
