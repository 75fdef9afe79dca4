package turn

import "sync"

// quota counts allocations per user (the part after the first ':' of the REST username) so
// that RFC 8656 §7.2 step 7 can refuse with 486 (Allocation Quota Reached) on the username,
// not on the client's address.
//
// pion asks the quota callback before it creates the allocation and reports the outcome only
// through events, so a grant is first held as pending under the request's 5-tuple: the
// OnAllocationCreated event turns it into an active allocation, the OnAllocationError event
// of a failed Allocate drops it. pion serves one 5-tuple from one goroutine, so at most one
// grant per 5-tuple is pending. Without the pending count, Allocates racing on several TCP
// connections could all pass the check before any of them was counted.
type quota struct {
	max int // < 0: no limit

	mu      sync.Mutex
	active  map[string]int    // user -> live allocations
	held    map[string]int    // user -> grants waiting for their allocation
	pending map[string]string // 5-tuple key -> user of the pending grant
}

func newQuota(max int) *quota {
	return &quota{
		max:     max,
		active:  make(map[string]int),
		held:    make(map[string]int),
		pending: make(map[string]string),
	}
}

// reserve grants user one more allocation for the request arriving on tuple, or reports that
// the user is at the limit.
func (q *quota) reserve(user, tuple string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.max >= 0 && q.active[user]+q.held[user] >= q.max {
		return false
	}
	if old, ok := q.pending[tuple]; ok { // cannot happen with one goroutine per 5-tuple
		q.unhold(old)
	}
	q.pending[tuple] = user
	q.held[user]++
	return true
}

// created records a live allocation of user on tuple.
func (q *quota) created(user, tuple string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if held, ok := q.pending[tuple]; ok {
		delete(q.pending, tuple)
		q.unhold(held)
	}
	q.active[user]++
}

// failed drops the pending grant of tuple, if any: its Allocate did not produce an allocation.
func (q *quota) failed(tuple string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if held, ok := q.pending[tuple]; ok {
		delete(q.pending, tuple)
		q.unhold(held)
	}
}

// deleted records the end of one allocation of user.
func (q *quota) deleted(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.active[user] <= 1 {
		delete(q.active, user)
		return
	}
	q.active[user]--
}

// count is the number of live allocations of user.
func (q *quota) count(user string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active[user]
}

func (q *quota) unhold(user string) {
	if q.held[user] <= 1 {
		delete(q.held, user)
		return
	}
	q.held[user]--
}
