package node

// The media graph. Edges change rarely (connect, disconnect, release), packets
// flow constantly; so every change recomputes, for each WebRtcEndpoint of the
// pipeline, the flat list of endpoints its media reaches (through any chain of
// PassThroughs) and the endpoint that feeds each of its outgoing tracks. The
// forwarding goroutines read those through atomic pointers without locks.

func (n *Node) connect(src *element, sinkID string, kinds []mediaKind) *rpcError {
	n.mu.Lock()
	sink, err := n.peerElementLocked(src, sinkID)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	for _, k := range kinds {
		old := sink.sources[k]
		if old == src {
			continue
		}
		if old != nil {
			old.sinks[k] = remove(old.sinks[k], sink)
		}
		sink.sources[k] = src
		src.sinks[k] = append(src.sinks[k], sink)
	}
	fresh := n.recomputeLocked(src.pipe)
	n.mu.Unlock()
	for _, k := range kinds {
		n.emit(src.id, "ElementConnected", map[string]any{"sink": sinkID, "mediaType": k.String(), "sourceMediaDescription": "default", "sinkMediaDescription": "default"})
	}
	// A new subscriber needs a key frame to start decoding: ask at once.
	for _, ep := range fresh {
		ep.requestKeyframe()
	}
	return nil
}

func (n *Node) disconnect(src *element, sinkID string, kinds []mediaKind) *rpcError {
	n.mu.Lock()
	sink, err := n.peerElementLocked(src, sinkID)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	var done []mediaKind
	for _, k := range kinds {
		if sink.sources[k] != src {
			continue
		}
		sink.sources[k] = nil
		src.sinks[k] = remove(src.sinks[k], sink)
		done = append(done, k)
	}
	n.recomputeLocked(src.pipe)
	n.mu.Unlock()
	for _, k := range done {
		n.emit(src.id, "ElementDisconnected", map[string]any{"sink": sinkID, "mediaType": k.String(), "sourceMediaDescription": "default", "sinkMediaDescription": "default"})
	}
	return nil
}

func (n *Node) peerElementLocked(src *element, sinkID string) (*element, *rpcError) {
	if n.objects[src.id] == nil {
		return nil, errorf(codeObjectNotFound, "Object '%s' not found", src.id)
	}
	o, err := n.lookup(sinkID)
	if err != nil {
		return nil, err
	}
	eo, ok := o.(elementObject)
	if !ok {
		return nil, errorf(codeIllegalParam, "'%s' is not a MediaElement", sinkID)
	}
	sink := eo.elem()
	if sink.pipe != src.pipe {
		return nil, errorf(codeIllegalParam, "'%s' and '%s' are in different pipelines", src.id, sinkID)
	}
	return sink, nil
}

// connections lists ElementConnectionData for getSourceConnections /
// getSinkConnections.
func (n *Node) connections(e *element, sinks bool, kinds []mediaKind) []map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []map[string]any{}
	add := func(src, sink *element, k mediaKind) {
		out = append(out, map[string]any{
			"__module__": "kurento", "__type__": "ElementConnectionData",
			"source": src.id, "sink": sink.id, "type": k.String(), "mediaType": k.String(),
			"sourceDescription": "default", "sinkDescription": "default",
		})
	}
	for _, k := range kinds {
		if sinks {
			for _, s := range e.sinks[k] {
				add(e, s, k)
			}
		} else if s := e.sources[k]; s != nil {
			add(s, e, k)
		}
	}
	return out
}

// unlinkLocked removes every edge of e. Callers hold n.mu.
func (n *Node) unlinkLocked(e *element) {
	for k := range numKinds {
		if s := e.sources[k]; s != nil {
			s.sinks[k] = remove(s.sinks[k], e)
			e.sources[k] = nil
		}
		for _, s := range e.sinks[k] {
			s.sources[k] = nil
		}
		e.sinks[k] = nil
	}
}

// recomputeLocked refreshes the forwarding tables of the pipeline's
// endpoints and returns the video sources that gained a sink (they owe that
// sink a key frame). Callers hold n.mu.
func (n *Node) recomputeLocked(p *pipeline) []*endpoint {
	var fresh []*endpoint
	for _, o := range p.children {
		ep, ok := o.(*endpoint)
		if !ok {
			continue
		}
		for k := range numKinds {
			targets := reach(&ep.element, k)
			ep.targets[k].Store(&targets)
			up := upstream(&ep.element, k)
			if old := ep.upstream[k].Swap(up); old != up && up != nil && k == kindVideo && !contains(fresh, up) {
				fresh = append(fresh, up)
			}
		}
	}
	return fresh
}

// reach lists the endpoints that receive e's media of kind k: its direct
// sinks and, through PassThroughs, theirs. An endpoint does not pass on what
// it receives (its output is its peer's media), so the walk stops there.
func reach(e *element, k mediaKind) []*endpoint {
	var out []*endpoint
	seen := map[*element]bool{}
	var walk func(*element)
	walk = func(x *element) {
		for _, s := range x.sinks[k] {
			if seen[s] {
				continue
			}
			seen[s] = true
			if s.ep != nil {
				out = append(out, s.ep)
			} else {
				walk(s)
			}
		}
	}
	walk(e)
	return out
}

// upstream is the endpoint whose media e's outgoing track of kind k carries.
func upstream(e *element, k mediaKind) *endpoint {
	seen := map[*element]bool{}
	for s := e.sources[k]; s != nil && !seen[s]; s = s.sources[k] {
		seen[s] = true
		if s.ep != nil {
			return s.ep
		}
	}
	return nil
}

func remove(list []*element, e *element) []*element {
	for i, x := range list {
		if x == e {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

func contains(list []*endpoint, e *endpoint) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}
