package roster

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// MemStore is a Store in memory, for tests of the packages that use rosters and for
// running without a database. It implements the same versioning as the SQLite store
// (the conformance tests in rostertest run against both).
type MemStore struct {
	maxTombstones int
	now           func() time.Time

	mu     sync.Mutex
	owners map[string]*memRoster
}

type memRoster struct {
	ver, floor uint64
	items      map[string]Item
	tombstones map[string]uint64
	pending    map[string]PendingRequest
}

// NewMemStore returns an empty store keeping at most maxTombstones removed items per
// owner (DefaultMaxTombstones if <= 0).
func NewMemStore(maxTombstones int) *MemStore {
	if maxTombstones <= 0 {
		maxTombstones = DefaultMaxTombstones
	}
	return &MemStore{maxTombstones: maxTombstones, now: time.Now, owners: make(map[string]*memRoster)}
}

// roster returns the owner's roster, creating it if create is set. Its version stays 0
// until the first item is written, as in the SQLite store, where pending requests live
// apart from the version.
func (s *MemStore) roster(owner string, create bool) *memRoster {
	r := s.owners[owner]
	if r == nil && create {
		r = &memRoster{items: map[string]Item{}, tombstones: map[string]uint64{}, pending: map[string]PendingRequest{}}
		s.owners[owner] = r
	}
	return r
}

func (s *MemStore) Get(ctx context.Context, owner string) ([]Item, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil {
		return nil, 0, nil
	}
	items := make([]Item, 0, len(r.items))
	for _, it := range r.items {
		items = append(items, it.Clone())
	}
	slices.SortFunc(items, func(a, b Item) int { return cmp.Compare(a.JID, b.JID) })
	return items, r.ver, nil
}

func (s *MemStore) Item(ctx context.Context, owner, contact string) (Item, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil {
		return Item{}, false, nil
	}
	it, ok := r.items[contact]
	return it.Clone(), ok, nil
}

func (s *MemStore) Put(ctx context.Context, owner string, it Item) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, true)
	if r.ver == 0 {
		r.ver = FirstVersion()
		r.floor = r.ver
	}
	r.ver++
	it = it.Clone()
	it.Ver = r.ver
	r.items[it.JID] = it
	delete(r.tombstones, it.JID)
	return r.ver, nil
}

func (s *MemStore) Remove(ctx context.Context, owner, contact string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil {
		return 0, nil
	}
	if _, ok := r.items[contact]; !ok {
		return r.ver, nil
	}
	r.ver++
	delete(r.items, contact)
	r.tombstones[contact] = r.ver
	if excess := len(r.tombstones) - s.maxTombstones; excess > 0 {
		vers := make([]uint64, 0, len(r.tombstones))
		for _, v := range r.tombstones {
			vers = append(vers, v)
		}
		slices.Sort(vers)
		cut := vers[excess-1]
		for c, v := range r.tombstones {
			if v <= cut {
				delete(r.tombstones, c)
			}
		}
		r.floor = max(r.floor, cut)
	}
	return r.ver, nil
}

func (s *MemStore) Since(ctx context.Context, owner string, ver uint64) ([]Item, uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil || r.ver == 0 {
		return nil, 0, ver == 0, nil
	}
	if ver > r.ver || ver < r.floor {
		return nil, r.ver, false, nil
	}
	var changes []Item
	for _, it := range r.items {
		if it.Ver > ver {
			changes = append(changes, it.Clone())
		}
	}
	for c, v := range r.tombstones {
		if v > ver {
			changes = append(changes, Item{JID: c, Subscription: Remove, Ver: v})
		}
	}
	slices.SortFunc(changes, func(a, b Item) int { return cmp.Compare(a.Ver, b.Ver) })
	return changes, r.ver, true, nil
}

func (s *MemStore) PendingIn(ctx context.Context, owner string) ([]PendingRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil {
		return nil, nil
	}
	var reqs []PendingRequest
	for _, p := range r.pending {
		reqs = append(reqs, p)
	}
	slices.SortFunc(reqs, func(a, b PendingRequest) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.From, b.From))
	})
	return reqs, nil
}

func (s *MemStore) PendingFrom(ctx context.Context, owner, from string) (PendingRequest, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil {
		return PendingRequest{}, false, nil
	}
	p, ok := r.pending[from]
	return p, ok, nil
}

func (s *MemStore) AddPendingIn(ctx context.Context, owner, from, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, true)
	p, ok := r.pending[from]
	if !ok {
		// Millisecond precision, as the SQLite store keeps.
		p = PendingRequest{From: from, At: s.now().Truncate(time.Millisecond)}
	}
	p.Status = status
	r.pending[from] = p
	return nil
}

func (s *MemStore) RemovePendingIn(ctx context.Context, owner, from string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.roster(owner, false); r != nil {
		delete(r.pending, from)
	}
	return nil
}

func (s *MemStore) DeleteUser(ctx context.Context, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roster(owner, false)
	if r == nil {
		return nil
	}
	if r.ver != 0 {
		r.ver++
		r.floor = r.ver
	}
	clear(r.items)
	clear(r.tombstones)
	clear(r.pending)
	return nil
}

var _ Store = (*MemStore)(nil)
