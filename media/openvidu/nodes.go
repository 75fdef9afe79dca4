package openvidu

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hearth-im/hearth/media/kurento"
)

// errNoMediaNode is returned when no media node is connected.
var errNoMediaNode = errors.New("openvidu: no media node available")

// mediaNode is one Kurento-protocol media server: the embedded node or a --kms URL.
type mediaNode struct {
	url string

	// guarded by nodePool.mu
	client *kurento.Client // nil while the node is down
	load   int             // pipelines and endpoints this gateway placed on it
}

// NodeStatus describes one media node for the console and tests.
type NodeStatus struct {
	URL  string
	Up   bool
	Load int
}

// nodePool keeps a connection to every media node, redialling the ones that are
// down, and picks the least-loaded node for a new session. The load is counted
// here (pipelines and endpoints this gateway created), which works the same for
// KMS and the embedded node.
type nodePool struct {
	log    *slog.Logger
	opts   kurento.Options
	onLost func(n *mediaNode, err error)

	mu    sync.Mutex
	nodes []*mediaNode

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newNodePool(urls []string, opts kurento.Options, log *slog.Logger, onLost func(*mediaNode, error)) *nodePool {
	p := &nodePool{log: log, opts: opts, onLost: onLost}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, u := range urls {
		n := &mediaNode{url: u}
		p.nodes = append(p.nodes, n)
		p.wg.Add(1)
		go p.maintain(n)
	}
	return p
}

// maintain keeps n connected: dial (with backoff while it fails), serve until the
// client gives up on the server (kurento.Client already reconnects and resumes its
// session across short drops), report the loss, and dial again.
func (p *nodePool) maintain(n *mediaNode) {
	defer p.wg.Done()
	backoff := 200 * time.Millisecond
	for p.ctx.Err() == nil {
		opts := p.opts
		opts.Reconnect = true
		opts.Log = p.log
		c, err := kurento.Dial(p.ctx, n.url, opts)
		if err != nil {
			p.log.Warn("openvidu: media node unreachable", "url", n.url, "err", err)
			wait := backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, 10*time.Second)
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
			}
			continue
		}
		backoff = 200 * time.Millisecond
		p.mu.Lock()
		n.client, n.load = c, 0
		p.mu.Unlock()
		p.log.Info("openvidu: media node connected", "url", n.url)
		select {
		case <-c.Done():
		case <-p.ctx.Done():
		}
		p.mu.Lock()
		n.client = nil
		p.mu.Unlock()
		if p.ctx.Err() != nil {
			c.Close()
			return
		}
		err = c.Err()
		p.log.Error("openvidu: media node lost", "url", n.url, "err", err)
		c.Close()
		if p.onLost != nil {
			p.onLost(n, err)
		}
	}
}

// pick returns the connected node with the least load and its client.
func (p *nodePool) pick() (*mediaNode, *kurento.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *mediaNode
	for _, n := range p.nodes {
		if n.client != nil && (best == nil || n.load < best.load) {
			best = n
		}
	}
	if best == nil {
		return nil, nil, errNoMediaNode
	}
	return best, best.client, nil
}

// add changes the load figure of n.
func (p *nodePool) add(n *mediaNode, d int) {
	p.mu.Lock()
	n.load = max(0, n.load+d)
	p.mu.Unlock()
}

// ready waits until at least one node is connected.
func (p *nodePool) ready(ctx context.Context) error {
	for {
		if _, _, err := p.pick(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *nodePool) status() []NodeStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]NodeStatus, 0, len(p.nodes))
	for _, n := range p.nodes {
		out = append(out, NodeStatus{URL: n.url, Up: n.client != nil, Load: n.load})
	}
	return out
}

func (p *nodePool) close() {
	p.cancel()
	p.wg.Wait()
}
