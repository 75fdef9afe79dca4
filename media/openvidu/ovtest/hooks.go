package ovtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// HookReceiver is a webhook endpoint recording events in arrival order.
type HookReceiver struct {
	t    testing.TB
	URL  string
	mu   sync.Mutex
	got  []map[string]any
	fail int
	wake chan struct{}
}

// Fail makes the receiver answer the next n posts with HTTP 500.
func (h *HookReceiver) Fail(n int) {
	h.mu.Lock()
	h.fail = n
	h.mu.Unlock()
}

// NewHookReceiver starts a receiver on loopback; URL is where to post.
func NewHookReceiver(t testing.TB) *HookReceiver {
	h := &HookReceiver{t: t, wake: make(chan struct{}, 1)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook content type %q", r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		h.mu.Lock()
		if h.fail > 0 {
			h.fail--
			h.mu.Unlock()
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.got = append(h.got, ev)
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(hs.Close)
	h.URL = hs.URL + "/hook"
	return h
}

// Take waits for n more events and returns them, removing them from the log.
func (h *HookReceiver) Take(n int) []map[string]any {
	h.t.Helper()
	return h.wait(fmt.Sprintf("%d events", n), func(got []map[string]any) int {
		if len(got) >= n {
			return n
		}
		return -1
	})
}

// TakeUntil returns the events up to and including the first one named last.
func (h *HookReceiver) TakeUntil(last string) []map[string]any {
	h.t.Helper()
	return h.wait(last, func(got []map[string]any) int {
		return slices.IndexFunc(got, func(ev map[string]any) bool { return ev["event"] == last }) + 1
	})
}

func (h *HookReceiver) wait(what string, upTo func([]map[string]any) int) []map[string]any {
	h.t.Helper()
	deadline := time.After(Timeout)
	for {
		h.mu.Lock()
		if n := upTo(h.got); n > 0 {
			out := h.got[:n:n]
			h.got = h.got[n:]
			h.mu.Unlock()
			return out
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-deadline:
			h.mu.Lock()
			defer h.mu.Unlock()
			h.t.Fatalf("webhook: waited for %s; have %s", what, Describe(h.got))
			return nil
		}
	}
}

// Reset drops what was received so far.
func (h *HookReceiver) Reset() {
	h.mu.Lock()
	h.got = nil
	h.mu.Unlock()
}

// Describe renders events compactly.
func Describe(evs []map[string]any) string {
	parts := make([]string, 0, len(evs))
	for _, ev := range evs {
		parts = append(parts, Summary(ev))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Summary renders an event as name(connectionId,connection,receivingFrom,reason),
// leaving out absent fields.
func Summary(ev map[string]any) string {
	var f []string
	for _, k := range []string{"connectionId", "connection", "receivingFrom", "reason"} {
		if v, ok := ev[k]; ok && v != nil {
			f = append(f, fmt.Sprint(v))
		}
	}
	s := fmt.Sprint(ev["event"])
	if len(f) > 0 {
		s += "(" + strings.Join(f, ",") + ")"
	}
	return s
}

// CheckSeq asserts the events' summaries, and the fields every event and every
// end event carries (video.md §4.1).
func CheckSeq(t testing.TB, got []map[string]any, want []string) {
	t.Helper()
	have := make([]string, 0, len(got))
	for _, ev := range got {
		have = append(have, Summary(ev))
	}
	if !slices.Equal(have, want) {
		t.Fatalf("webhook events:\n got %v\nwant %v", have, want)
	}
	for _, ev := range got {
		for _, k := range []string{"timestamp", "sessionId", "uniqueSessionId"} {
			if ev[k] == nil {
				t.Errorf("%s lacks %s", ev["event"], k)
			}
		}
		if r, ok := ev["reason"]; ok && (r == "" || ev["startTime"] == nil || ev["duration"] == nil) {
			t.Errorf("%s: end fields %v", ev["event"], ev)
		}
	}
}
