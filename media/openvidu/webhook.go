package openvidu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// WebhookConfig is where and what to post (video.md §4.1: OPENVIDU_WEBHOOK_ENDPOINT,
// _EVENTS, _HEADERS). It is read for every event, so property changes apply at once.
type WebhookConfig struct {
	URL string
	// Events limits the events sent; empty means all.
	Events []string
	// Headers are extra request headers, each "Name: value".
	Headers []string
}

// Event is one webhook event: its name and OpenVidu's fields (common ones included).
type Event map[string]any

// Name is the event's name (sessionCreated, participantLeft, ...).
func (e Event) Name() string { s, _ := e["event"].(string); return s }

// webhook posts events in order from one goroutine, as OpenVidu's single-threaded
// sender does, and retries a failed post with backoff before moving on. Emitting
// never blocks the caller (media and signalling paths): the queue is bounded and
// drops its oldest event, with a log line, when an endpoint stays down.
type webhook struct {
	cfg     func() WebhookConfig
	log     *slog.Logger
	client  *http.Client
	retries []time.Duration
	max     int
	observe func(Event)

	mu      sync.Mutex
	queue   []queuedEvent
	wake    chan struct{}
	stopped bool
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
}

type queuedEvent struct {
	cfg  WebhookConfig
	body []byte
	name string
}

func newWebhook(cfg func() WebhookConfig, log *slog.Logger, retries []time.Duration, observe func(Event)) *webhook {
	w := &webhook{
		cfg: cfg, log: log, retries: retries, max: 10000, observe: observe,
		// OpenVidu uses 10 s connect and socket timeouts (HttpWebhookSender).
		client: &http.Client{Timeout: 10 * time.Second},
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

// emit queues ev if a URL is configured and the filter lets it through.
func (w *webhook) emit(ev Event) {
	if w.observe != nil {
		w.observe(ev)
	}
	if w.cfg == nil {
		return
	}
	c := w.cfg()
	if c.URL == "" || (len(c.Events) > 0 && !slices.Contains(c.Events, ev.Name())) {
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		w.log.Error("openvidu: webhook: encode", "event", ev.Name(), "err", err)
		return
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	if len(w.queue) >= w.max {
		w.log.Warn("openvidu: webhook queue full, dropping oldest event", "event", w.queue[0].name)
		w.queue = slices.Delete(w.queue, 0, 1)
	}
	w.queue = append(w.queue, queuedEvent{cfg: c, body: body, name: ev.Name()})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *webhook) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			stopped := w.stopped
			w.mu.Unlock()
			if stopped {
				return
			}
			<-w.wake
			continue
		}
		q := w.queue[0]
		w.queue = slices.Delete(w.queue, 0, 1)
		w.mu.Unlock()
		w.deliver(q)
	}
}

// deliver posts one event, retrying on failure; only HTTP 200 counts as delivered
// (HttpWebhookSender).
func (w *webhook) deliver(q queuedEvent) {
	for attempt := 0; ; attempt++ {
		err := w.post(q)
		if err == nil {
			return
		}
		if attempt >= len(w.retries) {
			w.log.Error("openvidu: webhook not delivered", "event", q.name, "url", q.cfg.URL, "attempts", attempt+1, "err", err)
			return
		}
		w.log.Warn("openvidu: webhook failed, retrying", "event", q.name, "url", q.cfg.URL, "err", err)
		t := time.NewTimer(w.retries[attempt])
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (w *webhook) post(q queuedEvent) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, q.cfg.URL, bytes.NewReader(q.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range q.cfg.Headers {
		name, value, ok := strings.Cut(h, ":")
		if ok && strings.TrimSpace(name) != "" {
			req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

// close delivers what is queued within the deadline of ctx, then stops.
func (w *webhook) close(ctx context.Context) {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
}
