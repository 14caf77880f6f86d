package upkeep

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

func syncSet(t *testing.T, password string) *registries.Set {
	t.Helper()
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: keep, type: quay, url: quay.io, username: {value: u}, password: {value: `+password+`}}
- {name: switched, type: other, url: a.example.com, pullSecret: {mode: image-pull-secret, name: theirs}}
- {name: excluded, type: other, url: b.example.com, username: {value: u}, password: {value: p}, clusters: {mode: inject-only, names: [prod]}}
- {name: scoped, type: other, url: c.example.com, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}}}
`), registries.Options{ClusterName: "dev", StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

// seed writes entries as an earlier config left them.
func seed(s *memStore, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		s.put(pairs[i], &pullsecret.Want{Name: "regcred-" + pairs[i+1], Registry: pairs[i+1], Data: []byte("old")})
	}
}

func startSyncer(t *testing.T, sy *Syncer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = sy.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return sy.current() != nil }, time.Second, time.Millisecond)
}

func TestSyncerBringsEverySecretInLine(t *testing.T) {
	s := newMemStore()
	seed(s, "a", "keep", "b", "keep", "a", "gone", "a", "switched", "a", "excluded", "a", "scoped", "b", "scoped",
		"kube-system", "keep", "quiet", "keep", "deleted-ns", "keep")
	var set atomic.Pointer[registries.Set]
	set.Store(syncSet(t, "new"))
	m := newCounts()
	nss := &liveNamespaces{labels: nsLabels{"a": {"team": "a"}, "b": {"team": "b"}, "kube-system": {}, "quiet": {"regcred.io/inject": "false"}}}
	sy := &Syncer{
		Registries: set.Load, HasConfig: func() bool { return true },
		Index: s, Store: s, Metrics: m, Exclusions: testExclusions, WriteQPS: 1000, WriteBurst: 1000,
		Namespaces: nss,
	}
	startSyncer(t, sy)

	want, err := set.Load().Get("keep").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	scoped, err := set.Load().Get("scoped").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	wanted := map[string]string{"a/keep": string(want.Data), "b/keep": string(want.Data), "a/scoped": string(scoped.Data)}
	// The sweep's deletes and writes go in any order: until both are done.
	require.Eventually(t, func() bool {
		all, _ := s.All(t.Context())
		for k, data := range wanted {
			if got, _ := s.get(k); got != data {
				return false
			}
		}
		return len(all) == 3
	}, 2*time.Second, time.Millisecond)
	for k, data := range wanted {
		got, ok := s.get(k)
		assert.True(t, ok, k)
		assert.Equal(t, data, got, k)
	}
	for _, k := range []string{"a/gone", "a/switched", "a/excluded", "b/scoped", "kube-system/keep", "quiet/keep"} {
		assert.Equal(t, 1, s.count(s.deletes, k), "deleted: %s", k)
	}
	assert.Zero(t, s.count(s.deletes, "deleted-ns/keep"), "a namespace that is gone took its secrets with it: forgotten, not deleted")
	assert.Equal(t, map[string]int{"gone": 1, "switched": 1, "excluded": 1, "scoped": 1, "keep": 2}, m.deletedCounts())

	// A credential change rewrites what holds the old one, and only that.
	set.Store(syncSet(t, "newer"))
	sy.ConfigChanged()
	want2, err := set.Load().Get("keep").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { d, _ := s.get("b/keep"); return d == string(want2.Data) }, 2*time.Second, time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 1, s.count(s.writes, "a/scoped"), "unchanged content is not written again")

	// A namespace's labels change: its scoped secret goes.
	nss.set(nsLabels{"a": {"team": "b"}, "b": {"team": "b"}})
	sy.NamespaceChanged("a")
	require.Eventually(t, func() bool { return s.count(s.deletes, "a/scoped") == 1 }, 2*time.Second, time.Millisecond)
}

// A pull secret the API server's policy protects (its labels were
// removed, its namespace excluded since) is left in place and forgotten:
// not counted as deleted, nor tried again at every sweep.
func TestSyncerLeavesWhatThePolicyProtects(t *testing.T) {
	s := newMemStore()
	seed(s, "a", "gone")
	s.leftInPlace = map[string]bool{"a/gone": true}
	m := newCounts()
	sy := &Syncer{Registries: func() *registries.Set { return syncSet(t, "p") }, HasConfig: func() bool { return true }, Index: s, Store: s,
		Metrics: m, Namespaces: nsLabels{"a": {}}, Exclusions: testExclusions, WriteQPS: 1000, WriteBurst: 1000}
	var mu sync.Mutex
	var errs []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(args, `"error"`) {
			errs = append(errs, args)
		}
	}, funcr.Options{})
	ctx, cancel := context.WithCancel(logr.NewContext(t.Context(), log))
	done := make(chan struct{})
	go func() { defer close(done); _ = sy.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return s.count(s.deletes, "a/gone") == 1 }, 2*time.Second, time.Millisecond)
	sy.ConfigChanged()
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, s.count(s.deletes, "a/gone"), "forgotten: not tried again")
	mu.Lock()
	assert.Empty(t, errs, "not an error: nothing to retry")
	mu.Unlock()
	assert.Empty(t, m.deletedCounts(), "not deleted")
	_, kept := s.get("a/gone")
	assert.True(t, kept)
}

func TestSyncerDeletesNothingWithoutAConfig(t *testing.T) {
	s := newMemStore()
	seed(s, "a", "gone")
	sy := &Syncer{Registries: registries.Empty, HasConfig: func() bool { return false }, Index: s, Store: s,
		Metrics: newCounts(), Namespaces: nsLabels{"a": {}}, Exclusions: testExclusions}
	startSyncer(t, sy)
	sy.ConfigChanged()
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, s.count(s.deletes, "a/gone"), "before a good config loads, nothing is swept")
}

// resyncing is a syncer that resyncs every period, and its store, which
// holds namespace a's pull secret written already: only a resync writes it
// again (a restore).
func resyncing(t *testing.T, every time.Duration) (*memStore, *Syncer) {
	t.Helper()
	s := newMemStore()
	set := syncSet(t, "p")
	w, err := set.Get("keep").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	s.put("a", w)
	return s, &Syncer{Registries: func() *registries.Set { return set }, HasConfig: func() bool { return true }, Index: s, Store: s,
		Metrics: newCounts(), Namespaces: nsLabels{"a": {}}, Exclusions: testExclusions, Resync: every}
}

func TestSyncerResyncWritesEverythingAgain(t *testing.T) {
	s, sy := resyncing(t, 20*time.Millisecond)
	startSyncer(t, sy)
	require.Eventually(t, func() bool { return s.count(s.restores, "a/keep") >= 2 }, 2*time.Second, time.Millisecond,
		"a pull secret deleted while no replica heard of it comes back at the next resync")
}

// The resync is due at the clock's multiples of Resync, whichever replica
// leads then: leaders that change more often than Resync (rollouts, spot
// nodes) do not put it off for ever.
func TestSyncerResyncSurvivesShortTerms(t *testing.T) {
	s, sy := resyncing(t, 200*time.Millisecond)
	for range 10 { // ten terms of 150 ms: 1.5 s of leadership
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = sy.Start(ctx) }()
		time.Sleep(150 * time.Millisecond)
		cancel()
		<-done
	}
	assert.Positive(t, s.count(s.restores, "a/keep"), "a resync within seven periods of leadership")
}

func TestNextResync(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 59, 59, 0, time.UTC)
	assert.Equal(t, time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC), nextResync(at, time.Hour))
	assert.Equal(t, time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC), nextResync(at.Add(time.Second), time.Hour), "on the hour: the next one")
}

// tokens grants a fixed number of writes, then blocks.
type tokens chan struct{}

func (t tokens) Wait(ctx context.Context) error {
	select {
	case <-t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSyncerWritesAreRateLimited(t *testing.T) {
	s := newMemStore()
	nss := nsLabels{}
	for i := range 30 {
		ns := string(rune('a'+i%26)) + string(rune('a'+i/26))
		seed(s, ns, "keep")
		nss[ns] = map[string]string{}
	}
	set := syncSet(t, "p")
	limit := make(tokens, 30)
	for range 10 {
		limit <- struct{}{}
	}
	sy := &Syncer{Registries: func() *registries.Set { return set }, HasConfig: func() bool { return true }, Index: s, Store: s,
		Metrics: newCounts(), Namespaces: nss, Exclusions: testExclusions, limiter: limit}
	startSyncer(t, sy)
	writes := func() int {
		n := 0
		for ns := range nss {
			n += s.count(s.writes, ns+"/keep")
		}
		return n
	}
	require.Eventually(t, func() bool { return writes() == 10 }, 2*time.Second, time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 10, writes(), "no write without a token from the limiter")
	for range 20 {
		limit <- struct{}{}
	}
	require.Eventually(t, func() bool { return writes() == 30 }, 2*time.Second, time.Millisecond)
}

// liveNamespaces are namespaces whose labels a test changes while the
// syncer runs.
type liveNamespaces struct {
	mu     sync.Mutex
	labels nsLabels
}

func (l *liveNamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.labels.NamespaceLabels(ctx, name)
}

func (l *liveNamespaces) set(n nsLabels) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.labels = n
}

// orderStore records the namespaces written, in order.
type orderStore struct {
	*memStore
	mu    sync.Mutex
	order []string
}

func (o *orderStore) Apply(ctx context.Context, ns string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error) {
	o.mu.Lock()
	o.order = append(o.order, ns)
	o.mu.Unlock()
	return o.memStore.Apply(ctx, ns, w, dryRun)
}

// A config change rewrites the pull secrets a shard of the index at a
// time, so that their entries are recorded together.
func TestSyncerWritesAShardAtATime(t *testing.T) {
	s := newMemStore()
	for i := range 200 {
		seed(s, fmt.Sprintf("ns-%03d", i), "keep")
	}
	o := &orderStore{memStore: s}
	var set atomic.Pointer[registries.Set]
	set.Store(syncSet(t, "new"))
	sy := &Syncer{
		Registries: set.Load, HasConfig: func() bool { return true },
		Index: s, Store: o, Metrics: newCounts(), Exclusions: testExclusions, WriteQPS: 1000, WriteBurst: 1000,
		Namespaces: &liveNamespaces{labels: nsLabels{}}, Workers: 1,
	}
	for i := range 200 {
		sy.Namespaces.(*liveNamespaces).labels[fmt.Sprintf("ns-%03d", i)] = map[string]string{}
	}
	startSyncer(t, sy)
	require.Eventually(t, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.order) == 200
	}, 5*time.Second, time.Millisecond)
	o.mu.Lock()
	defer o.mu.Unlock()
	changes := 0
	for i := 1; i < len(o.order); i++ {
		if secretstore.ShardOf(o.order[i]) != secretstore.ShardOf(o.order[i-1]) {
			changes++
		}
	}
	assert.Equal(t, secretstore.Shards-1, changes, "each shard's secrets written one after the other")
}

// slowStore takes its time writing, as an API server under load does.
type slowStore struct{ *memStore }

func (s slowStore) Apply(ctx context.Context, ns string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error) {
	time.Sleep(time.Millisecond)
	return s.memStore.Apply(ctx, ns, w, dryRun)
}

// A sweep across many namespaces holds only a few of them in its queue at
// a time: what the syncer holds does not grow with the namespaces.
func TestSweepKeepsTheQueueShort(t *testing.T) {
	s := newMemStore()
	const namespaces = 500
	nss := &liveNamespaces{labels: nsLabels{}}
	for i := range namespaces {
		ns := fmt.Sprintf("ns-%03d", i)
		seed(s, ns, "keep")
		nss.labels[ns] = map[string]string{}
	}
	var set atomic.Pointer[registries.Set]
	set.Store(syncSet(t, "new"))
	sy := &Syncer{
		Registries: set.Load, HasConfig: func() bool { return true },
		Index: s, Store: slowStore{s}, Metrics: newCounts(), Exclusions: testExclusions, WriteQPS: 1000, WriteBurst: 1000,
		Namespaces: nss, Workers: 2,
	}
	startSyncer(t, sy)
	q := sy.current()
	longest := 0
	want, err := set.Load().Get("keep").Want(t.Context(), registries.Need{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		longest = max(longest, q.Len())
		for i := range namespaces {
			if data, _ := s.get(fmt.Sprintf("ns-%03d/keep", i)); data != string(want.Data) {
				return false
			}
		}
		return true
	}, 20*time.Second, time.Millisecond)
	assert.LessOrEqual(t, longest, 2*sy.Workers, "at most twice the workers wait in the queue")
}
