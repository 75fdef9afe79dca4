package server

import (
	"hash/maphash"
	"sync"
)

// Router is the routing table: which sessions are bound to which JIDs. The
// local implementation is a sharded map; a multi-node router (DESIGN.md §7)
// can implement the same interface.
type Router interface {
	// Bind adds s; it returns the session that had the same full JID, which
	// the caller ends with <conflict/>.
	Bind(s *Session) (replaced *Session)
	// Unbind removes s if it is bound; it is idempotent.
	Unbind(s *Session)
	// Session returns the session bound to a full JID, or nil.
	Session(full string) *Session
	// Resources returns the sessions of a bare JID (a snapshot).
	Resources(bare string) []*Session
	// Range calls fn for every session until fn returns false.
	Range(fn func(*Session) bool)
	// Count returns the number of bound sessions.
	Count() int
}

const routerShards = 64

type localRouter struct {
	seed   maphash.Seed
	shards [routerShards]routerShard
}

type routerShard struct {
	mu sync.RWMutex
	m  map[string][]*Session // bare JID -> its sessions
	n  int
}

// NewLocalRouter returns the in-process routing table.
func NewLocalRouter() Router {
	r := &localRouter{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = map[string][]*Session{}
	}
	return r
}

func (r *localRouter) shard(bare string) *routerShard {
	return &r.shards[maphash.String(r.seed, bare)%routerShards]
}

func (r *localRouter) Bind(s *Session) *Session {
	sh := r.shard(s.bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.m[s.bare]
	var old *Session
	nl := make([]*Session, 0, len(list)+1)
	for _, x := range list {
		if x.full == s.full {
			old = x
			continue
		}
		nl = append(nl, x)
	}
	if old == nil {
		sh.n++
	}
	sh.m[s.bare] = append(nl, s)
	return old
}

func (r *localRouter) Unbind(s *Session) {
	sh := r.shard(s.bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.m[s.bare]
	for i, x := range list {
		if x == s {
			if len(list) == 1 {
				delete(sh.m, s.bare)
			} else {
				// Copy on write: Resources hands out snapshots of these slices.
				nl := make([]*Session, 0, len(list)-1)
				nl = append(nl, list[:i]...)
				sh.m[s.bare] = append(nl, list[i+1:]...)
			}
			sh.n--
			return
		}
	}
}

func (r *localRouter) Session(full string) *Session {
	bare := full
	for i := 0; i < len(full); i++ {
		if full[i] == '/' {
			bare = full[:i]
			break
		}
	}
	sh := r.shard(bare)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for _, x := range sh.m[bare] {
		if x.full == full {
			return x
		}
	}
	return nil
}

func (r *localRouter) Resources(bare string) []*Session {
	sh := r.shard(bare)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[bare] // never mutated in place
}

func (r *localRouter) Range(fn func(*Session) bool) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		var all []*Session
		for _, l := range sh.m {
			all = append(all, l...)
		}
		sh.mu.RUnlock()
		for _, s := range all {
			if !fn(s) {
				return
			}
		}
	}
}

func (r *localRouter) Count() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		n += sh.n
		sh.mu.RUnlock()
	}
	return n
}
