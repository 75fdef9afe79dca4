package node

import (
	"encoding/json"
	"runtime"
	"sort"
	"syscall"
	"time"
)

// kurentoVersion is what getInfo reports; kurento-client 7.x only checks the
// module names, OpenVidu logs the version.
const kurentoVersion = "7.3.0"

func (n *Node) invoke(p *params) (any, *rpcError) {
	if p.Object == "" || p.Operation == "" {
		return nil, errorf(codeInvalidParams, "Invalid params: 'object' and 'operation' are required")
	}
	op, args := p.Operation, p.OperationParams
	if p.Object == serverManagerID {
		return n.invokeServerManager(op, args)
	}
	n.mu.Lock()
	o, err := n.lookup(p.Object)
	if err != nil {
		n.mu.Unlock()
		return nil, err
	}
	if v, err, ok := n.invokeObjectLocked(o, op, args); ok {
		n.mu.Unlock()
		return v, err
	}
	n.mu.Unlock()

	if eo, ok := o.(elementObject); ok {
		if v, err, ok := n.invokeElement(eo.elem(), op, args); ok {
			return v, err
		}
	}
	if ep, ok := o.(*endpoint); ok {
		if v, err, ok := ep.invoke(op, args); ok {
			return v, err
		}
	}
	return nil, errorf(codeMethodNotFoundKurento, "Method '%s' not found on %s", op, o.base().typ)
}

// invokeObjectLocked handles MediaObject and MediaPipeline operations.
// Callers hold n.mu.
func (n *Node) invokeObjectLocked(o object, op string, args map[string]json.RawMessage) (any, *rpcError, bool) {
	b := o.base()
	switch op {
	case "getName":
		if b.name == "" {
			return b.id, nil, true
		}
		return b.name, nil, true
	case "setName":
		var name string
		if err := paramString(args, "name", &name, true); err != nil {
			return nil, err, true
		}
		b.name = name
		return nil, nil, true
	case "getSendTagsInEvents":
		return b.sendTags, nil, true
	case "setSendTagsInEvents":
		var v bool
		if err := paramBool(args, "sendTagsInEvents", &v); err != nil {
			return nil, err, true
		}
		b.sendTags = v
		return nil, nil, true
	case "addTag":
		var k, v string
		if err := paramString(args, "key", &k, true); err != nil {
			return nil, err, true
		}
		if err := paramString(args, "value", &v, true); err != nil {
			return nil, err, true
		}
		if b.tags == nil {
			b.tags = map[string]string{}
		}
		b.tags[k] = v
		return nil, nil, true
	case "removeTag":
		var k string
		if err := paramString(args, "key", &k, true); err != nil {
			return nil, err, true
		}
		delete(b.tags, k)
		return nil, nil, true
	case "getTag":
		var k string
		if err := paramString(args, "key", &k, true); err != nil {
			return nil, err, true
		}
		v, ok := b.tags[k]
		if !ok {
			return nil, errorf(codeIllegalParam, "Tag '%s' not found", k), true
		}
		return v, nil, true
	case "getTags":
		return b.tagList(), nil, true
	case "getCreationTime":
		return b.created.Unix(), nil, true
	case "getMediaPipeline":
		if b.pipe == nil {
			return b.id, nil, true
		}
		return b.pipe.id, nil, true
	case "getParent":
		if b.pipe == nil {
			return serverManagerID, nil, true
		}
		return b.pipe.id, nil, true
	case "getChildren", "getChilds":
		ids := []string{}
		if p, ok := o.(*pipeline); ok {
			for id := range p.children {
				ids = append(ids, id)
			}
			sort.Strings(ids)
		}
		return ids, nil, true
	case "getLatencyStats":
		return false, nil, true
	case "setLatencyStats":
		return nil, nil, true
	case "getGstreamerDot":
		return "", nil, true
	}
	return nil, nil, false
}

func (n *Node) invokeServerManager(op string, args map[string]json.RawMessage) (any, *rpcError) {
	switch op {
	case "getInfo":
		module := func(name string, factories ...string) map[string]any {
			if factories == nil {
				factories = []string{}
			}
			return map[string]any{
				"__module__": "kurento", "__type__": "ModuleInfo",
				"version": kurentoVersion, "name": name, "generationTime": "hearth", "factories": factories,
			}
		}
		return map[string]any{
			"__module__": "kurento", "__type__": "ServerInfo",
			"version": kurentoVersion,
			"modules": []any{
				module("core", "MediaPipeline"),
				module("elements", "PassThrough", "WebRtcEndpoint"),
				module("filters"),
			},
			"type":         "KMS",
			"capabilities": []string{"transactions"},
		}, nil
	case "getPipelines":
		n.mu.Lock()
		ids := []string{}
		for id, o := range n.objects {
			if _, ok := o.(*pipeline); ok {
				ids = append(ids, id)
			}
		}
		n.mu.Unlock()
		sort.Strings(ids)
		return ids, nil
	case "getSessions":
		n.mu.Lock()
		ids := []string{}
		for id := range n.sessions {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		sort.Strings(ids)
		return ids, nil
	case "getMetadata":
		return "", nil
	case "getName":
		return serverManagerID, nil
	case "getCpuCount":
		return runtime.NumCPU(), nil
	case "getUsedMemory":
		// KMS reports KiB of resident memory; the Go runtime's view of the
		// memory it obtained from the OS is the closest portable figure.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.Sys / 1024, nil
	case "getUsedCpu":
		interval := 1000
		if err := paramInt(args, "interval", &interval, false); err != nil {
			return nil, err
		}
		if interval <= 0 || interval > 10000 {
			return nil, errorf(codeIllegalParam, "interval must be between 1 and 10000 ms")
		}
		return usedCPU(time.Duration(interval) * time.Millisecond), nil
	case "getKmd":
		return nil, errorf(codeKmdNotFound, "Kmd not available")
	case "getLoad":
		// hearth's extension: what Load returns, so a remote gateway can
		// pick the least-loaded node over the protocol.
		l := n.Load()
		return map[string]any{"endpoints": l.Endpoints, "pipelines": l.Pipelines, "bitrateIn": l.BitrateIn, "bitrateOut": l.BitrateOut}, nil
	}
	return nil, errorf(codeMethodNotFoundKurento, "Method '%s' not found on ServerManager", op)
}

// usedCPU measures the process's CPU use over the interval, in percent of
// all cores, as KMS's getUsedCpu does.
func usedCPU(d time.Duration) float64 {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, t0 := cpu(), time.Now()
	time.Sleep(d)
	used, wall := cpu()-start, time.Since(t0)
	return 100 * float64(used) / float64(wall) / float64(runtime.NumCPU())
}

// invokeElement handles MediaElement operations: the media graph.
func (n *Node) invokeElement(e *element, op string, args map[string]json.RawMessage) (any, *rpcError, bool) {
	switch op {
	case "connect", "disconnect":
		var sinkID, mt string
		if err := paramString(args, "sink", &sinkID, true); err != nil {
			return nil, err, true
		}
		if err := paramString(args, "mediaType", &mt, false); err != nil {
			return nil, err, true
		}
		kinds, err := kindsOf(mt)
		if err != nil {
			return nil, err, true
		}
		if op == "connect" {
			return nil, n.connect(e, sinkID, kinds), true
		}
		return nil, n.disconnect(e, sinkID, kinds), true
	case "getSourceConnections", "getSinkConnections":
		var mt string
		if err := paramString(args, "mediaType", &mt, false); err != nil {
			return nil, err, true
		}
		kinds, err := kindsOf(mt)
		if err != nil {
			return nil, err, true
		}
		return n.connections(e, op == "getSinkConnections", kinds), nil, true
	case "isMediaFlowingIn", "isMediaFlowingOut":
		var mt string
		if err := paramString(args, "mediaType", &mt, true); err != nil {
			return nil, err, true
		}
		kinds, err := kindsOf(mt)
		if err != nil {
			return nil, err, true
		}
		if e.ep == nil || len(kinds) == 0 {
			return false, nil, true
		}
		return e.ep.flowing(kinds[0], op == "isMediaFlowingIn"), nil, true
	case "isMediaTranscoding":
		return false, nil, true
	case "getStats":
		return map[string]any{}, nil, true
	case "setAudioFormat", "setVideoFormat", "setOutputBitrate":
		return nil, nil, true
	case "getMinOutputBitrate", "getMinEncoderBitrate":
		n.mu.Lock()
		defer n.mu.Unlock()
		return e.minOut, nil, true
	case "getMaxOutputBitrate", "getMaxEncoderBitrate":
		n.mu.Lock()
		defer n.mu.Unlock()
		return e.maxOut, nil, true
	case "setMinOutputBitrate", "setMinEncoderBitrate", "setMaxOutputBitrate", "setMaxEncoderBitrate":
		var v int
		key := map[string]string{
			"setMinOutputBitrate": "minOutputBitrate", "setMinEncoderBitrate": "minEncoderBitrate",
			"setMaxOutputBitrate": "maxOutputBitrate", "setMaxEncoderBitrate": "maxEncoderBitrate",
		}[op]
		if err := paramInt(args, key, &v, true); err != nil {
			return nil, err, true
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if op == "setMinOutputBitrate" || op == "setMinEncoderBitrate" {
			e.minOut = v
		} else {
			e.maxOut = v
		}
		return nil, nil, true
	}
	return nil, nil, false
}

// kindsOf maps Kurento's MediaType ("" = all) to the kinds the node forwards;
// DATA is valid and forwards nothing.
func kindsOf(mt string) ([]mediaKind, *rpcError) {
	switch mt {
	case "":
		return []mediaKind{kindAudio, kindVideo}, nil
	case "AUDIO":
		return []mediaKind{kindAudio}, nil
	case "VIDEO":
		return []mediaKind{kindVideo}, nil
	case "DATA":
		return nil, nil
	}
	return nil, errorf(codeIllegalParam, "mediaType '%s' is not AUDIO, VIDEO or DATA", mt)
}
