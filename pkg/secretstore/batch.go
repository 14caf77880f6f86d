package secretstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// shardWriter orders the writes of each shard of the index, and keeps the
// entries waiting for a batch (Store.Batch).
type shardWriter struct {
	mu    sync.Mutex
	locks keyLocks
	// pending are the entries waiting, by shard and key.
	pending map[string]map[string]deferred
	// scheduled is set while a flush is due; failures counts the flushes
	// that failed in a row (they back off).
	scheduled bool
	failures  int
}

// lock takes a shard's lock, which every write of the shard holds (a
// batch never lands after a later write of one of its keys), and returns
// what releases it; it gives up when ctx ends, so that an admission waits
// for a flush only within its own time.
func (w *shardWriter) lock(ctx context.Context, shard string) (func(), error) {
	unlock, err := w.locks.lock(ctx, shard)
	if err != nil {
		return nil, fmt.Errorf("waiting for this replica's other writes of index shard %s: %w", shard, err)
	}
	return unlock, nil
}

// deferred is an index entry waiting for a batch.
type deferred struct {
	// value is the entry's value.
	value string
	// base, when set, is the value the shard must still hold for the key
	// for value to be written ("" for none): the entry of a pull secret
	// whose content depends on its hosts (Store.swap).
	base *string
}

// drop forgets the waiting entries of a shard that data supersedes.
func (w *shardWriter) drop(shard string, data map[string]any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range data {
		delete(w.pending[shard], k)
	}
}

// dropKey forgets the waiting entry of key k, if any.
func (w *shardWriter) dropKey(shard, k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending[shard], k)
}

// waiting returns the entry of key k waiting for a batch, if any.
func (w *shardWriter) waiting(shard, k string) (deferred, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.pending[shard][k]
	return d, ok
}

// take returns and forgets the waiting entries of a shard.
func (w *shardWriter) take(shard string) map[string]deferred {
	w.mu.Lock()
	defer w.mu.Unlock()
	data := w.pending[shard]
	delete(w.pending, shard)
	return data
}

// deferEntry queues an index entry for the next batch; base, if set, is
// the value the shard must still hold for it to be written. An entry based
// on the one waiting keeps that one's base: the shard holds it still. One
// based on what the shard was read to hold (after a lost race) keeps its
// own.
func (s *Store) deferEntry(shard, k, value string, base *string) {
	w := &s.shards
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending = map[string]map[string]deferred{}
	}
	if w.pending[shard] == nil {
		w.pending[shard] = map[string]deferred{}
	}
	if old, ok := w.pending[shard][k]; ok && base != nil && old.base != nil {
		if old.value == *base {
			base = old.base
		}
	}
	w.pending[shard][k] = deferred{value: value, base: base}
	s.scheduleLocked()
}

// scheduleLocked makes sure a flush is due, after Batch, or later after
// failures.
func (s *Store) scheduleLocked() {
	w := &s.shards
	if w.scheduled || len(w.pending) == 0 {
		return
	}
	w.scheduled = true
	wait := s.Batch << min(w.failures, 5)
	time.AfterFunc(wait, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := s.Flush(ctx)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.scheduled = false
		if err != nil {
			w.failures++
			s.Log.Error(err, "Cannot record rewritten pull secrets in the index; retrying", "retryIn", s.Batch<<min(w.failures, 5))
		} else {
			w.failures = 0
		}
		s.scheduleLocked()
	})
}

// Flush writes the entries waiting for a batch now, one patch per shard.
// Entries that could not be written wait for the next batch.
func (s *Store) Flush(ctx context.Context) error {
	w := &s.shards
	w.mu.Lock()
	shards := slices.Sorted(maps.Keys(w.pending))
	w.mu.Unlock()
	var first error
	for _, shard := range shards {
		unlock, err := w.lock(ctx, shard)
		if err != nil {
			return err // the entries wait for the next flush
		}
		left, lost, err := s.flushShard(ctx, shard, w.take(shard))
		if err != nil {
			// Back in line, unless a newer entry of the key came meanwhile.
			w.mu.Lock()
			if w.pending == nil {
				w.pending = map[string]map[string]deferred{}
			}
			if w.pending[shard] == nil {
				w.pending[shard] = map[string]deferred{}
			}
			for k, d := range left {
				if _, newer := w.pending[shard][k]; !newer {
					w.pending[shard][k] = d
				}
			}
			// A batch writes them later, even when this flush was not the
			// batch's own (its timer may have fired meanwhile and found
			// nothing to write).
			s.scheduleLocked()
			w.mu.Unlock()
			if first == nil {
				first = err
			}
		}
		unlock()
		for _, l := range lost {
			if err := s.raced(ctx, l); err != nil {
				s.Log.Error(err, "Cannot record as pending a pull secret another replica rewrote meanwhile; the next resync writes it", "shard", shard, "entry", l.k)
			}
		}
	}
	return first
}

// flushShard writes a shard's waiting entries: those without a base in
// one merge patch, those with one with swapBatch, whose lost entries it
// returns. On error it returns the entries left to write. The caller
// holds the shard's lock.
func (s *Store) flushShard(ctx context.Context, shard string, data map[string]deferred) (map[string]deferred, []lostSwap, error) {
	plain := map[string]any{}
	based := map[string]deferred{}
	for k, d := range data {
		if d.base == nil {
			plain[k] = d.value
		} else {
			based[k] = d
		}
	}
	if len(plain) > 0 {
		if err := s.mergeShard(ctx, shard, plain); err != nil {
			return data, nil, err
		}
	}
	if len(based) > 0 {
		return s.swapBatch(ctx, shard, based)
	}
	return nil, nil, nil
}
