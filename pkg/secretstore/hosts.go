package secretstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/pullsecret"
)

// The pull secret of a registry whose credential depends on the image
// host (a glob ECR registry) has a key per host it serves, and any
// replica adds hosts to it as Pods need them. regcred cannot read the
// Secret back, so two replicas adding a host each at once could each
// write the Secret with its own host only, and one host would be lost.
// The index entry, which records the hosts, is what keeps them:
//
//   - a write of such a secret always serves every host its entry
//     records (Want.Widen);
//   - its entry is recorded only if the shard still holds the entry the
//     write was based on, in one JSON patch whose test the API server
//     checks (swap);
//   - the writer that finds the entry changed cannot tell whose Secret
//     write landed last: it writes the Secret again, serving the hosts of
//     the entry it found too, and records that from the new base.
//
// So the entry last recorded is always that of the Secret last written,
// and serves every host recorded before it. A rewrite recorded with a
// batch (a token refresh) that finds its entry changed cannot write the
// Secret again there: its entry turns pending, with every host, and
// Raced is told.

// maxRaces bounds how many times in a row one write finds its entry
// changed by another.
const maxRaces = 10

// writeHosts is write for a pull secret whose content depends on its
// hosts. This replica writes one such secret at a time: of its own
// admissions asking for hosts at once, the later ones find the hosts
// written, or add theirs to them, rather than race.
func (s *Store) writeHosts(ctx context.Context, namespace string, w *pullsecret.Want, restore bool) (_ Outcome, err error) {
	k := key(namespace, w.Registry, w.Exact())
	unlock, err := s.writing.lock(ctx, k)
	if err != nil {
		return "", fmt.Errorf("secret %s/%s: waiting for this replica's other write of it: %w", namespace, w.Name, err)
	}
	defer unlock()
	prev, raw, known := s.Index.lookupRaw(ctx, namespace, w.Registry, w.Exact())
	if known && !restore && prev.Satisfies(w) {
		return Unchanged, nil
	}
	exists := known && !prev.Pending()
	wrote := false
	defer func() {
		if err != nil && wrote {
			// This replica's last Secret write, from what this replica
			// knew of the entry, may have landed after the entry another
			// replica recorded, which then claims hosts the Secret lacks;
			// and its own entry is not recorded. The entry turns pending,
			// for the sweeps to write it again.
			err = s.recordPending(ctx, entryOf(namespace, w, ""), prev, raw, err)
		}
	}()
	for range maxRaces {
		if !w.Serves(prev.Hosts) {
			wider, err := w.Widen(ctx, prev.Hosts)
			if err != nil {
				return "", err
			}
			w = wider
		}
		out, uid, err := s.put(ctx, namespace, w, exists, prev)
		if err != nil {
			return "", err
		}
		wrote = true
		e := entryOf(namespace, w, uid)
		// A rewrite for a new token can wait for a batch; one that adds a
		// host is recorded at once, for the other replicas to see.
		if inPlace(out, prev) && w.ServedBy(prev.Hosts) && s.Batch > 0 {
			s.Index.remember(e, false)
			s.deferEntry(ShardOf(namespace), k, e.value(), &raw)
			return out, nil
		}
		won, cur, err := s.swap(ctx, namespace, k, raw, e.value())
		if err != nil {
			return "", fmt.Errorf("recording pull secret %s/%s in the index: %w", namespace, w.Name, err)
		}
		if won {
			s.Index.remember(e, false)
			return out, nil
		}
		// Another replica recorded the entry meanwhile: write the Secret
		// again from what it recorded.
		prev, _ = parseEntry(k, cur)
		raw, exists = cur, true
		s.Index.learn(k, cur)
	}
	return "", fmt.Errorf("secret %s/%s: its index entry was changed by other replicas %d times in a row; left to the sweeps", namespace, w.Name, maxRaces)
}

// recordPending records e pending after a write that failed with err, and
// returns err with what became of that. Within ctx's time if it has some
// left; once it is up (an admission's deadline), in the background for 5
// seconds more, so that the admission is answered in its time.
func (s *Store) recordPending(ctx context.Context, e, prev Entry, raw string, err error) error {
	if ctx.Err() == nil {
		_, perr := s.markPending(ctx, e, prev, raw, true)
		if perr == nil {
			return err
		}
		if ctx.Err() == nil {
			return fmt.Errorf("%w; and recording it pending: %w", err, perr)
		}
	}
	log := logr.FromContextOrDiscard(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, perr := s.markPending(ctx, e, prev, raw, true); perr != nil {
			log.Error(perr, "Cannot record pull secret pending in the index; the hourly resync writes it", "namespace", e.Namespace, "registry", e.Registry)
		}
	}()
	return fmt.Errorf("%w; recording it pending in the background", err)
}

// Pending records that namespace should hold the pull secret of e's
// registry (its Namespace, Registry, Exact), serving e.Hosts, which could
// not be written yet: the leader's sweeps, which walk the index, write it
// then, whichever replica was asked for it and whether or not it still
// runs. An entry the shard has already that serves those hosts is left as
// it is; one that does not keeps its UID (deletes stay bound to the Secret
// regcred made) and its hosts, and takes e.Hosts besides.
func (s *Store) Pending(ctx context.Context, e Entry) error {
	prev, raw, _ := s.Index.lookupRaw(ctx, e.Namespace, e.Registry, e.Exact)
	_, err := s.markPending(ctx, e, prev, raw, false)
	return err
}

// Stale records e pending like Pending, even if the entry the shard has
// serves e.Hosts: someone else changed or deleted that Secret, or another
// replica's write raced with this one's, and what the entry says of it no
// longer holds.
func (s *Store) Stale(ctx context.Context, e Entry) error {
	prev, raw, _ := s.Index.lookupRaw(ctx, e.Namespace, e.Registry, e.Exact)
	_, err := s.markPending(ctx, e, prev, raw, true)
	return err
}

// markPending records e pending, from prev, the entry as the shard holds
// it (raw, "" for none), and returns what it recorded; force records it
// even if prev serves e.Hosts.
func (s *Store) markPending(ctx context.Context, e Entry, prev Entry, raw string, force bool) (Entry, error) {
	k := key(e.Namespace, e.Registry, e.Exact)
	for range maxRaces {
		if raw != "" && !force && prev.Version != "" && pullsecret.ServesHosts(prev.Hosts, e.Hosts) {
			return prev, nil
		}
		p := Entry{Namespace: e.Namespace, Registry: e.Registry, Exact: e.Exact, UID: prev.UID, Version: pendingVersion, Hosts: pullsecret.UnionHosts(prev.Hosts, e.Hosts)}
		won, cur, err := s.swap(ctx, e.Namespace, k, raw, p.value())
		if err != nil {
			return Entry{}, fmt.Errorf("recording pull secret of registry %s in namespace %s in the index: %w", e.Registry, e.Namespace, err)
		}
		if won {
			s.Index.remember(p, false)
			return p, nil
		}
		prev, _ = parseEntry(k, cur)
		raw = cur
	}
	return Entry{}, fmt.Errorf("recording pull secret of registry %s in namespace %s in the index: changed by other replicas %d times in a row", e.Registry, e.Namespace, maxRaces)
}

// lostSwap is an entry of a batch that another replica changed: ours is
// the batch's value, cur what the shard holds.
type lostSwap struct{ k, ours, cur string }

// swapBatch writes the waiting entries of a shard that have a base, in one
// JSON patch whose tests require each base. Refused, it reads the shard
// from the API server and writes again those whose entry still holds its
// base, in one patch; it returns those whose entry another replica
// changed, for raced. On error, it returns the entries left to write. The
// caller holds the shard's lock.
func (s *Store) swapBatch(ctx context.Context, shard string, based map[string]deferred) (map[string]deferred, []lostSwap, error) {
	left := maps.Clone(based)
	var lost []lostSwap
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: shard}}
	for chunk := range slices.Chunk(slices.Sorted(maps.Keys(based)), maxSwapsPerPatch) {
		keys := chunk
		for try := 0; len(keys) > 0; try++ {
			if try == maxRaces {
				return left, lost, fmt.Errorf("recording rewritten pull secrets in index shard %s: refused %d times in a row", shard, maxRaces)
			}
			ops := make([]map[string]any, 0, 2*len(keys))
			for _, k := range keys {
				d := based[k]
				ops = append(ops, testOp(k, *d.base), map[string]any{"op": "add", "path": dataPath(k), "value": d.value})
			}
			err := s.API.Patch(ctx, cm, jsonPatch(ops), client.FieldOwner(FieldManager))
			if err == nil {
				for _, k := range keys {
					delete(left, k)
				}
				break
			}
			if !isPatchRefused(err) && !apierrors.IsNotFound(err) {
				return left, lost, err
			}
			// Refused: some entries changed, or the shard has none yet.
			var fresh corev1.ConfigMap
			err = s.reader().Get(ctx, client.ObjectKeyFromObject(cm), &fresh)
			if err != nil && !apierrors.IsNotFound(err) {
				return left, lost, err
			}
			if err != nil || fresh.Data == nil {
				// No shard, or no /data for the tests to look in: one at a
				// time, as swap makes them.
				if err := s.swapEach(ctx, shard, keys, based, left, &lost); err != nil {
					return left, lost, err
				}
				break
			}
			var still []string
			for _, k := range keys {
				d := based[k]
				switch cur := fresh.Data[k]; cur {
				case *d.base:
					still = append(still, k)
				case d.value: // written by a flush that did not hear so
					delete(left, k)
				default:
					delete(left, k)
					lost = append(lost, lostSwap{k: k, ours: d.value, cur: cur})
				}
			}
			keys = still
		}
	}
	return nil, lost, nil
}

// swapEach is swapBatch one entry at a time, for a shard that has no
// entries yet; it deletes from left what it writes or finds lost.
func (s *Store) swapEach(ctx context.Context, shard string, keys []string, based, left map[string]deferred, lost *[]lostSwap) error {
	for _, k := range keys {
		d := based[k]
		won, cur, err := s.swapLocked(ctx, shard, k, *d.base, d.value, true)
		if err != nil {
			return err
		}
		delete(left, k)
		if !won {
			*lost = append(*lost, lostSwap{k: k, ours: d.value, cur: cur})
		}
	}
	return nil
}

// maxSwapsPerPatch bounds the entries of one batch's JSON patch: two
// operations each, and kube-apiserver takes at most 10,000 in a patch.
var maxSwapsPerPatch = 1000

// raced handles an entry recorded with a batch that another replica
// changed after this replica's Secret write was based on it: the entry
// turns pending, serving the hosts of both, and Raced is told. An entry
// forgotten meanwhile stays forgotten.
func (s *Store) raced(ctx context.Context, l lostSwap) error {
	mine, ok := parseEntry(l.k, l.ours)
	if !ok {
		return nil
	}
	theirs, _ := parseEntry(l.k, l.cur)
	s.Index.learn(l.k, l.cur)
	if l.cur == "" {
		return nil
	}
	if theirs.UID == "" {
		theirs.UID = mine.UID
	}
	p, err := s.markPending(ctx, mine, theirs, l.cur, true)
	if err != nil {
		// Not pending: only this replica's retry writes it again.
		p = Entry{Namespace: mine.Namespace, Registry: mine.Registry, Exact: mine.Exact, UID: theirs.UID, Hosts: pullsecret.UnionHosts(mine.Hosts, theirs.Hosts)}
	}
	if s.Raced != nil {
		s.Raced(p)
	}
	return err
}

// swap sets entry k of namespace's shard to value if the shard holds base
// for k ("" for none), in one request whose test the API server checks:
// of two replicas writing the entry from one base, one wins. When swap
// does not, cur is what the shard holds, read from the API server.
func (s *Store) swap(ctx context.Context, namespace, k, base, value string) (won bool, cur string, err error) {
	shard := ShardOf(namespace)
	unlock, err := s.shards.lock(ctx, shard)
	if err != nil {
		return false, "", err
	}
	defer unlock()
	return s.swapLocked(ctx, shard, k, base, value, false)
}

// swapLocked is swap; the caller holds the shard's lock. A flush's swap
// (flushing) writes an entry taken from those waiting for a batch: an
// entry of k waiting now came after it, and is left waiting; any other
// swap supersedes this replica's entry of k waiting, if any.
func (s *Store) swapLocked(ctx context.Context, shard, k, base, value string, flushing bool) (bool, string, error) {
	asked := base
	superseded := func() {
		if !flushing {
			s.shards.dropKey(shard, k)
		}
	}
	if d, ok := s.shards.waiting(shard, k); ok && !flushing && d.base != nil && d.value == base {
		// This replica's own entry waits for its batch: the shard holds
		// what that was based on (unless a flush wrote it and failed to
		// hear so: below).
		base = *d.base
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: shard}}
	noData := false
	for range 5 {
		ops := []map[string]any{testOp(k, base), {"op": "add", "path": dataPath(k), "value": value}}
		if noData {
			// A shard without entries has no /data for the test to look in.
			ops = []map[string]any{{"op": "test", "path": "/data", "value": nil}, {"op": "add", "path": "/data", "value": map[string]string{k: value}}}
		}
		err := s.API.Patch(ctx, cm, jsonPatch(ops), client.FieldOwner(FieldManager))
		switch {
		case err == nil:
			superseded()
			return true, "", nil
		case !isPatchRefused(err) && !apierrors.IsNotFound(err):
			return false, "", err
		}
		// Refused: the entry changed, or the test could not apply (no
		// shard, or one without entries). The shard says which.
		var fresh corev1.ConfigMap
		err = s.reader().Get(ctx, client.ObjectKeyFromObject(cm), &fresh)
		switch {
		case apierrors.IsNotFound(err):
			if base != "" {
				return false, "", nil
			}
			shardCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Index.Namespace, Name: shard,
				Labels: map[string]string{LabelIndex: IndexValue, pullsecret.LabelManagedBy: pullsecret.ManagedBy}},
				Data: map[string]string{k: value}}
			err = s.API.Create(ctx, shardCM, client.FieldOwner(FieldManager))
			if err == nil {
				superseded()
				return true, "", nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return false, "", err
			}
			noData = false
			continue // created meanwhile: the test applies now
		case err != nil:
			return false, "", err
		}
		cur, present := fresh.Data[k]
		switch {
		case present && cur == value:
			// Written already: a flush that failed to hear its answer.
			superseded()
			return true, "", nil
		case cur == base:
			noData = fresh.Data == nil // else changed and back: try again
		case base != asked && cur == asked:
			// The waiting entry was written by a flush that failed to
			// hear so: the shard holds what the caller based on.
			s.shards.dropKey(shard, k)
			base, noData = asked, false
		default:
			return false, cur, nil
		}
	}
	return false, "", fmt.Errorf("index shard %s: changed by others over and over", shard)
}

// testOp is the JSON patch operation that requires entry k to be base
// ("" for none: JSON null, which the API server's test finds equal to a
// member that is not there).
func testOp(k, base string) map[string]any {
	var v any
	if base != "" {
		v = base
	}
	return map[string]any{"op": "test", "path": dataPath(k), "value": v}
}

func dataPath(k string) string { return "/data/" + escape(k) }

// reader reads a shard from the API server.
func (s *Store) reader() client.Reader {
	if s.Reader != nil {
		return s.Reader
	}
	return s.API
}

// keyLocks is a lock per key, kept while in use only.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	held  chan struct{} // holds a token while the lock is taken
	users int
}

// lock takes k's lock, or gives up when ctx ends, and returns what
// releases it.
func (l *keyLocks) lock(ctx context.Context, k string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	kl := l.m[k]
	if kl == nil {
		kl = &keyLock{held: make(chan struct{}, 1)}
		l.m[k] = kl
	}
	kl.users++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if kl.users--; kl.users == 0 {
			delete(l.m, k)
		}
		l.mu.Unlock()
	}
	select {
	case kl.held <- struct{}{}:
		return func() { <-kl.held; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
