package storage

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Change-feed tuning. Rows are kept long enough that a watcher polling every second or so
// never misses one; the count floor keeps a burst (a bulk import) readable by a watcher
// that was briefly slow.
const (
	defaultWatchEvery = 250 * time.Millisecond
	changesKeepFor    = time.Hour
	changesKeepRows   = 1000
	pruneEvery        = time.Minute
	pollBatch         = 512
)

// change is one row of the changes table.
type change struct {
	seq       int64
	kind, key string
}

// changeFeed delivers the rows of the changes table to handlers: own rows right after the
// commit (DB.Write), foreign rows from the polling watcher.
type changeFeed struct {
	db *DB

	hmu      sync.RWMutex
	handlers map[string][]func(key string, own bool)

	// trackMu is held for reading by every write transaction and for writing while the
	// watcher starts or stops, so that "watching" cannot flip while a transaction is in
	// flight (see startTracking).
	trackMu  sync.RWMutex
	watching bool

	// own holds the sequence numbers of this process's change rows that the watcher has
	// not reached yet; the watcher skips them because their handlers already ran.
	ownMu sync.Mutex
	own   map[int64]struct{}

	// Touched only by the watcher goroutine (tests call poll directly instead).
	last      int64 // highest sequence number handled; -1 until known
	lastPrune time.Time
	failing   bool

	runMu   sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

func (f *changeFeed) init(db *DB) {
	f.db = db
	f.handlers = make(map[string][]func(string, bool))
	f.own = make(map[int64]struct{})
	f.last = -1
}

// OnChange registers fn for changes of kind recorded with Tx.Changed: it runs once per
// change, with own=true right after this process's commit (in the writer's goroutine),
// and with own=false when the watcher (StartWatch) finds another process's change. The
// key "" means the watcher fell so far behind that pruned rows were lost: everything of
// that kind may have changed. fn must not block for long, and must not call Close.
func (db *DB) OnChange(kind string, fn func(key string, own bool)) {
	f := &db.changes
	f.hmu.Lock()
	f.handlers[kind] = append(f.handlers[kind], fn)
	f.hmu.Unlock()
}

// StartWatch starts watching the database for changes made by other processes (and by
// other *DB on the same file), polling every `every` (250ms if <= 0) until ctx ends or
// Close. A poll is one indexed read through the reader pool. Calling it while a watcher
// runs does nothing.
func (db *DB) StartWatch(ctx context.Context, every time.Duration) {
	f := &db.changes
	if every <= 0 {
		every = defaultWatchEvery
	}
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.stopped {
		return
	}
	if f.done != nil {
		select {
		case <-f.done:
		default:
			return // already running
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	f.done = make(chan struct{})
	f.startTracking(ctx)
	go f.run(ctx, every, f.done)
}

// startTracking switches on the recording of own sequence numbers and learns where the
// feed stands. Both happen under the write lock of trackMu: a transaction that began
// before, without tracking, has committed by then, so its row is at or below the
// sequence number read here and the watcher never mistakes it for a foreign one.
func (f *changeFeed) startTracking(ctx context.Context) {
	f.trackMu.Lock()
	defer f.trackMu.Unlock()
	f.watching = true
	f.last = -1
	if err := f.readStart(ctx); err != nil {
		f.db.log.Warn("storage: watch: read change feed position; will retry", "err", err)
	}
}

// readStart sets last to the newest sequence number. Own rows at or below it have
// committed and were handled by Write, so they are forgotten.
func (f *changeFeed) readStart(ctx context.Context) error {
	var last int64
	if err := f.db.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&last); err != nil {
		return err
	}
	f.last = last
	f.dropOwnUpTo(last)
	return nil
}

func (f *changeFeed) run(ctx context.Context, every time.Duration, done chan struct{}) {
	defer close(done)
	defer func() {
		f.trackMu.Lock()
		f.watching = false
		f.trackMu.Unlock()
		f.ownMu.Lock()
		clear(f.own)
		f.ownMu.Unlock()
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := f.poll(ctx)
		if err == nil && time.Since(f.lastPrune) >= pruneEvery {
			err = f.prune(ctx, time.Now())
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !f.failing:
			// Logged once per outage, not at every tick.
			f.failing = true
			f.db.log.Error("storage: watch for changes by other processes failing", "err", err)
		case err == nil && f.failing:
			f.failing = false
			f.db.log.Info("storage: watch for changes by other processes recovered")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll handles every change row committed since the last poll.
func (f *changeFeed) poll(ctx context.Context) error {
	if f.last < 0 {
		if err := f.readStart(ctx); err != nil {
			return fmt.Errorf("storage: watch: read change feed position: %w", err)
		}
		return nil
	}
	for {
		batch, err := f.read(ctx, f.last)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		// Sequence numbers have no holes (AUTOINCREMENT reuses a rolled-back number, and
		// only pruning deletes rows), so a jump means rows we never saw were pruned.
		if batch[0].seq > f.last+1 {
			f.db.log.Warn("storage: watch fell behind the pruned change feed; reloading everything",
				"seen", f.last, "oldest", batch[0].seq)
			f.dropOwnUpTo(batch[0].seq - 1)
			f.resetAll()
		}
		for _, c := range batch {
			if !f.takeOwn(c.seq) {
				f.dispatch([]change{c}, false)
			}
			f.last = c.seq
		}
		if len(batch) < pollBatch {
			return nil
		}
	}
}

func (f *changeFeed) read(ctx context.Context, after int64) ([]change, error) {
	rows, err := f.db.r.QueryContext(ctx,
		`SELECT seq, kind, key FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, pollBatch)
	if err != nil {
		return nil, fmt.Errorf("storage: watch: read changes: %w", err)
	}
	defer rows.Close()
	var batch []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.seq, &c.kind, &c.key); err != nil {
			return nil, fmt.Errorf("storage: watch: read changes: %w", err)
		}
		batch = append(batch, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: watch: read changes: %w", err)
	}
	return batch, nil
}

// prune deletes change rows older than changesKeepFor, always keeping the newest
// changesKeepRows.
func (f *changeFeed) prune(ctx context.Context, now time.Time) error {
	f.lastPrune = now
	_, err := f.db.w.ExecContext(ctx,
		`DELETE FROM changes WHERE at < ? AND seq <= (SELECT max(seq) FROM changes) - ?`,
		now.Add(-changesKeepFor).UnixMilli(), changesKeepRows)
	if err != nil {
		return fmt.Errorf("storage: watch: prune changes: %w", err)
	}
	return nil
}

// resetAll tells every handler that anything of its kind may have changed.
func (f *changeFeed) resetAll() {
	f.hmu.RLock()
	kinds := make([]string, 0, len(f.handlers))
	for k := range f.handlers {
		kinds = append(kinds, k)
	}
	f.hmu.RUnlock()
	for _, k := range kinds {
		f.dispatch([]change{{kind: k}}, false)
	}
}

func (f *changeFeed) dispatch(cs []change, own bool) {
	for _, c := range cs {
		f.hmu.RLock()
		hs := f.handlers[c.kind]
		f.hmu.RUnlock()
		// handlers only grows by append, so hs is a stable snapshot.
		for _, h := range hs {
			h(c.key, own)
		}
	}
}

func (f *changeFeed) addOwn(seq int64) {
	f.ownMu.Lock()
	f.own[seq] = struct{}{}
	f.ownMu.Unlock()
}

func (f *changeFeed) forgetOwn(cs []change) {
	if len(cs) == 0 {
		return
	}
	f.ownMu.Lock()
	for _, c := range cs {
		delete(f.own, c.seq)
	}
	f.ownMu.Unlock()
}

// takeOwn reports whether seq is one of this process's rows, and forgets it.
func (f *changeFeed) takeOwn(seq int64) bool {
	f.ownMu.Lock()
	defer f.ownMu.Unlock()
	_, ok := f.own[seq]
	delete(f.own, seq)
	return ok
}

func (f *changeFeed) dropOwnUpTo(seq int64) {
	f.ownMu.Lock()
	for s := range f.own {
		if s <= seq {
			delete(f.own, s)
		}
	}
	f.ownMu.Unlock()
}

// stop ends the watcher for good and waits until its last callback returned.
func (f *changeFeed) stop() {
	f.runMu.Lock()
	f.stopped = true
	cancel, done := f.cancel, f.done
	f.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
