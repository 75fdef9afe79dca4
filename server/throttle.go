package server

import (
	"net"
	"sync"
	"time"
)

// throttle counts failed logins per client address (per /64 for IPv6) in a
// fixed one-minute window; past the limit, further attempts are refused until
// the window ends. It slows password guessing without locking accounts.
type throttle struct {
	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

func newThrottle() *throttle { return &throttle{m: map[string]*failures{}} }

func throttleKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if v4 := ta.IP.To4(); v4 != nil {
		return v4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String()
}

func (t *throttle) blocked(a net.Addr, limit int, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[throttleKey(a)]
	return f != nil && now.Sub(f.start) < time.Minute && f.n >= limit
}

func (t *throttle) fail(a net.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := throttleKey(a)
	f := t.m[k]
	if f == nil || now.Sub(f.start) >= time.Minute {
		if len(t.m) > 100000 {
			for k, f := range t.m {
				if now.Sub(f.start) >= time.Minute {
					delete(t.m, k)
				}
			}
		}
		f = &failures{start: now}
		t.m[k] = f
	}
	f.n++
}
