package node

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// params is the union of the Kurento methods' params (video.md §5.2).
type params struct {
	SessionID         string                     `json:"sessionId"`
	Object            string                     `json:"object"`
	Type              string                     `json:"type"`
	ConstructorParams map[string]json.RawMessage `json:"constructorParams"`
	Properties        map[string]json.RawMessage `json:"properties"`
	Operation         string                     `json:"operation"`
	OperationParams   map[string]json.RawMessage `json:"operationParams"`
	Subscription      string                     `json:"subscription"`
	Operations        []json.RawMessage          `json:"operations"`
}

// call runs one method. txSession is set inside a transaction, whose
// operations share the transaction's session.
func (n *Node) call(c *conn, method string, raw json.RawMessage, txSession *session) (any, *rpcError) {
	var p params
	if len(raw) > 0 && string(raw) != "null" {
		if raw[0] != '{' {
			return nil, errorf(codeInvalidParams, "Invalid params: expected an object")
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, errorf(codeInvalidParams, "Invalid params: %v", err)
		}
	}
	switch method {
	case "ping":
		// The result carries sessionId only if the request had one (§5.1).
		if p.SessionID == "" {
			return map[string]any{"value": "pong"}, nil
		}
		n.mu.Lock()
		s := n.sessionFor(c, p.SessionID)
		n.mu.Unlock()
		return map[string]any{"value": "pong", "sessionId": s.id}, nil
	case "connect":
		n.mu.Lock()
		defer n.mu.Unlock()
		if p.SessionID != "" && n.sessions[p.SessionID] == nil {
			return nil, errorf(codeInvalidSession, "Invalid session")
		}
		s := n.sessionFor(c, p.SessionID)
		return map[string]any{"sessionId": s.id, "serverId": n.serverID}, nil
	case "closeSession", "keepAlive", "ref", "unref":
		// Registered by KMS but unused by the clients in scope; closeSession
		// "does nothing in practice" (video.md §5.2).
		s := n.session(c, p.SessionID, txSession)
		return map[string]any{"sessionId": s.id}, nil
	}

	s := n.session(c, p.SessionID, txSession)
	withSession := func(v any, err *rpcError) (any, *rpcError) {
		if err != nil {
			return nil, err
		}
		m := map[string]any{"sessionId": s.id}
		if v != nil {
			m["value"] = v
		}
		return m, nil
	}
	switch method {
	case "create":
		return withSession(n.create(s, &p))
	case "invoke":
		return withSession(n.invoke(&p))
	case "describe":
		if p.Object == "" {
			return nil, errorf(codeInvalidParams, "Invalid params: 'object' is required")
		}
		return n.describe(s, p.Object)
	case "subscribe":
		return withSession(n.subscribe(s, &p))
	case "unsubscribe":
		// Always succeeds: kurento-client unsubscribes after release (§6.5).
		n.mu.Lock()
		if sub := n.subs[p.Subscription]; sub != nil && (p.Object == "" || sub.object == p.Object) {
			n.removeSub(p.Subscription)
		}
		n.mu.Unlock()
		return withSession(nil, nil)
	case "release":
		if p.Object == "" {
			return nil, errorf(codeInvalidParams, "Invalid params: 'object' is required")
		}
		return withSession(nil, n.release(p.Object))
	case "transaction":
		if txSession != nil {
			return nil, errorf(codeMalformedTransaction, "Nested transactions are not supported")
		}
		return withSession(n.transaction(c, s, p.Operations))
	}
	return nil, &rpcError{Code: codeMethodNotFound, Message: fmt.Sprintf("Method not found: %s", method)}
}

func (n *Node) session(c *conn, sid string, tx *session) *session {
	if tx != nil {
		return tx
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sessionFor(c, sid)
}

func (n *Node) create(s *session, p *params) (any, *rpcError) {
	if p.Type == "" {
		return nil, errorf(codeInvalidParams, "Invalid params: 'type' is required")
	}
	var pipeID string
	switch p.Type {
	case "MediaPipeline":
	case "WebRtcEndpoint", "PassThrough":
		if err := paramString(p.ConstructorParams, "mediaPipeline", &pipeID, true); err != nil {
			return nil, err
		}
	default:
		return nil, errorf(codeTypeNotFound, "Type '%s' not found", p.Type)
	}
	var recvonly, sendonly bool
	if p.Type == "WebRtcEndpoint" {
		if err := paramBool(p.ConstructorParams, "recvonly", &recvonly); err != nil {
			return nil, err
		}
		if err := paramBool(p.ConstructorParams, "sendonly", &sendonly); err != nil {
			return nil, err
		}
		if recvonly && sendonly {
			return nil, errorf(codeIllegalParam, "recvonly and sendonly are mutually exclusive")
		}
	}
	var name string
	if err := paramString(p.Properties, "name", &name, false); err != nil {
		return nil, err
	}

	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errorf(codeUnexpected, "media node is shutting down")
	}
	now := time.Now()
	var id string
	switch p.Type {
	case "MediaPipeline":
		id = newUUID() + "_kurento.MediaPipeline"
		n.objects[id] = &pipeline{objectBase: objectBase{id: id, typ: p.Type, owner: s.id, name: name, created: now}, children: map[string]object{}}
	default:
		o, rerr := n.lookup(pipeID)
		if rerr != nil {
			n.mu.Unlock()
			return nil, rerr
		}
		pipe, ok := o.(*pipeline)
		if !ok {
			n.mu.Unlock()
			return nil, errorf(codeIllegalParam, "'%s' is not a MediaPipeline", pipeID)
		}
		if p.Type == "WebRtcEndpoint" && n.cfg.MaxEndpoints > 0 && n.countEndpointsLocked() >= n.cfg.MaxEndpoints {
			n.mu.Unlock()
			return nil, errorf(codeNotEnoughResources, "Too many endpoints on this media node (%d)", n.cfg.MaxEndpoints)
		}
		id = childID(pipeID, p.Type)
		base := objectBase{id: id, typ: p.Type, owner: s.id, pipe: pipe, name: name, created: now}
		var obj object
		if p.Type == "PassThrough" {
			obj = &passThrough{element: element{objectBase: base}}
		} else {
			obj = newEndpoint(n, base, recvonly, sendonly)
		}
		pipe.children[id] = obj
		n.objects[id] = obj
	}
	n.mu.Unlock()
	n.log.Debug("object created", "id", id, "session", s.id)
	n.emit(serverManagerID, "ObjectCreated", map[string]any{"object": id})
	return id, nil
}

func (n *Node) describe(s *session, id string) (any, *rpcError) {
	typ := typeOf(id)
	if id != serverManagerID {
		n.mu.Lock()
		o, err := n.lookup(id)
		n.mu.Unlock()
		if err != nil {
			return nil, err
		}
		typ = o.base().typ
	}
	return map[string]any{
		"type":          typ,
		"qualifiedType": "kurento." + typ,
		"hierarchy":     hierarchies[typ],
		"sessionId":     s.id,
	}, nil
}

func (n *Node) subscribe(s *session, p *params) (any, *rpcError) {
	if p.Object == "" || p.Type == "" {
		return nil, errorf(codeInvalidParams, "Invalid params: 'object' and 'type' are required")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	typ := "ServerManager"
	if p.Object != serverManagerID {
		o, err := n.lookup(p.Object)
		if err != nil {
			return nil, err
		}
		typ = o.base().typ
	}
	if !supportsEvent(typ, p.Type) {
		return nil, errorf(codeEventNotSupported, "%s has no event '%s'", typ, p.Type)
	}
	sub := &subscription{id: newUUID(), object: p.Object, typ: p.Type, session: s.id}
	n.subs[sub.id] = sub
	k := eventKey{p.Object, p.Type}
	n.byEvent[k] = append(n.byEvent[k], sub)
	return sub.id, nil
}

// release frees an object; a pipeline takes all its elements with it.
// Media resources are closed outside the node lock: pion's Close waits for
// goroutines that may be inside our callbacks.
func (n *Node) release(id string) *rpcError {
	n.mu.Lock()
	o, err := n.lookup(id)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	var gone []object
	switch o := o.(type) {
	case *pipeline:
		for _, child := range o.children {
			n.unlinkLocked(child.(elementObject).elem())
			gone = append(gone, child)
		}
		o.children = map[string]object{}
		gone = append(gone, o)
	case elementObject:
		e := o.elem()
		n.unlinkLocked(e)
		delete(e.pipe.children, id)
		gone = append(gone, o)
		n.recomputeLocked(e.pipe)
	}
	for _, g := range gone {
		delete(n.objects, g.base().id)
		for sid, sub := range n.subs {
			if sub.object == g.base().id {
				n.removeSub(sid)
			}
		}
	}
	n.mu.Unlock()
	for _, g := range gone {
		if ep, ok := g.(*endpoint); ok {
			ep.close()
		}
		n.emit(serverManagerID, "ObjectDestroyed", map[string]any{"objectId": g.base().id})
	}
	n.log.Debug("object released", "id", id, "objects", len(gone))
	return nil
}

// transaction runs operations in order, replacing "newref:<i>" strings with
// the value returned by operation i, and stops at the first failure
// (KMS ServerMethods::transaction, video.md §5.2).
func (n *Node) transaction(c *conn, s *session, ops []json.RawMessage) (any, *rpcError) {
	results := make([]any, 0, len(ops))
	values := make([]any, 0, len(ops))
	for i, raw := range ops {
		var op struct {
			ID     *int            `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(raw, &op); err != nil || op.Method == "" || op.ID == nil || *op.ID != i {
			return nil, errorf(codeMalformedTransaction, "Malformed transaction: operation %d", i)
		}
		var generic any
		if len(op.Params) > 0 {
			if err := json.Unmarshal(op.Params, &generic); err != nil {
				return nil, errorf(codeMalformedTransaction, "Malformed transaction: operation %d params", i)
			}
		}
		resolved, rerr := injectRefs(generic, values)
		if rerr != nil {
			return nil, rerr
		}
		res, callErr := n.call(c, op.Method, mustJSON(resolved), s)
		if callErr != nil {
			results = append(results, map[string]any{"jsonrpc": "2.0", "id": i, "error": callErr})
			break
		}
		results = append(results, map[string]any{"jsonrpc": "2.0", "id": i, "result": res})
		var v any
		if m, ok := res.(map[string]any); ok {
			v = m["value"]
		}
		values = append(values, v)
	}
	return results, nil
}

func injectRefs(v any, values []any) (any, *rpcError) {
	switch t := v.(type) {
	case string:
		if rest, ok := strings.CutPrefix(t, "newref:"); ok {
			i, err := strconv.Atoi(rest)
			if err != nil || i < 0 || i >= len(values) {
				return nil, errorf(codeMalformedTransaction, "Malformed transaction: bad reference %q", t)
			}
			return values[i], nil
		}
		return t, nil
	case map[string]any:
		for k, x := range t {
			r, err := injectRefs(x, values)
			if err != nil {
				return nil, err
			}
			t[k] = r
		}
		return t, nil
	case []any:
		for i, x := range t {
			r, err := injectRefs(x, values)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
		return t, nil
	}
	return v, nil
}

// Parameter helpers: a missing required parameter or a parameter of the
// wrong JSON type is a JSON-RPC invalid-params error.

func paramString(m map[string]json.RawMessage, key string, dst *string, required bool) *rpcError {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		if required {
			return errorf(codeInvalidParams, "Invalid params: '%s' is required", key)
		}
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errorf(codeInvalidParams, "Invalid params: '%s' must be a string", key)
	}
	return nil
}

func paramBool(m map[string]json.RawMessage, key string, dst *bool) *rpcError {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errorf(codeInvalidParams, "Invalid params: '%s' must be a boolean", key)
	}
	return nil
}

func paramInt(m map[string]json.RawMessage, key string, dst *int, required bool) *rpcError {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		if required {
			return errorf(codeInvalidParams, "Invalid params: '%s' is required", key)
		}
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != float64(int(f)) {
		return errorf(codeInvalidParams, "Invalid params: '%s' must be an integer", key)
	}
	*dst = int(f)
	return nil
}

func (n *Node) countEndpointsLocked() int {
	c := 0
	for _, o := range n.objects {
		if _, ok := o.(*endpoint); ok {
			c++
		}
	}
	return c
}
