package secretstore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/regcred/regcred/pkg/pullsecret"
)

var hostsExpiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// hostsWant is the pull secret of a registry whose credential depends on
// the image host (a glob ECR registry): an auths key per host, each with
// token tok ("t1", "t2": a later one expires later).
func hostsWant(tok string, hosts ...string) *pullsecret.Want {
	hosts = slices.Compact(slices.Sorted(slices.Values(hosts)))
	auths := map[string]any{}
	for _, h := range hosts {
		auths[h] = map[string]string{"auth": tok}
	}
	data, _ := json.Marshal(map[string]any{"auths": auths})
	w := &pullsecret.Want{Name: "regcred-ecr", Registry: "ecr", Data: data, Hosts: hosts, Source: "*.dkr.ecr.*.amazonaws.com",
		ExpiresAt: hostsExpiry.Add(time.Duration(tok[1]-'0') * time.Hour)}
	w.Widen = func(_ context.Context, more []string) (*pullsecret.Want, error) {
		return hostsWant(tok, append(slices.Clone(hosts), more...)...), nil
	}
	return w
}

// secretHosts returns the auths keys of namespace app's pull secret of
// registry ecr.
func secretHosts(t *testing.T, c client.Client) []string {
	t.Helper()
	var cfg struct {
		Auths map[string]any `json:"auths"`
	}
	require.NoError(t, json.Unmarshal(getSecret(t, c, "app", "regcred-ecr").Data[corev1.DockerConfigJsonKey], &cfg))
	return slices.Sorted(maps.Keys(cfg.Auths))
}

// blindReader is a cache that has shown nothing yet: a replica whose
// informer has not delivered another's writes.
type blindReader struct{}

func (blindReader) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, key.Name)
}

func (blindReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

// blindStore is a replica whose cache has shown nothing yet, writing
// through api and reading shards from the API server through reader.
func blindStore(api client.Client, reader client.Reader) *Store {
	return &Store{API: api, Reader: reader, Index: NewIndex(blindReader{}, "regcred")}
}

// servingA returns a store whose namespace app holds registry ecr's pull
// secret serving host a, and that Secret's UID.
func servingA(t *testing.T) (*Store, client.Client, types.UID) {
	t.Helper()
	s, c := newStore(t)
	_, err := s.Apply(t.Context(), "app", hostsWant("t1", "a"), false)
	require.NoError(t, err)
	return s, c, getSecret(t, c, "app", "regcred-ecr").UID
}

// A caller that knows fewer hosts than the index records (its view is
// older) never writes a secret without them.
func TestAHostWriteKeepsTheHostsTheIndexRecords(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", hostsWant("t1", "a"), false)
	require.NoError(t, err)

	other := &Store{API: c, Index: NewIndex(c, "regcred")}
	out, err := other.Apply(ctx, "app", hostsWant("t1", "b"), false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	assert.Equal(t, []string{"a", "b"}, secretHosts(t, c))
	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.Equal(t, []string{"a", "b"}, e.Hosts)
	assert.Equal(t, hostsWant("t1", "a", "b").Version(), e.Version)
}

// Two replicas, neither of which has seen the other's write, each add a
// host to one pull secret: the one whose index entry lands second finds
// the entry changed, and writes the secret again serving both.
func TestReplicasAddingHostsAtOnceKeepEveryHost(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	blind := func() *Store { return blindStore(c, c) }
	a, b := blind(), blind()
	out, err := a.Apply(ctx, "app", hostsWant("t1", "a"), false)
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	out, err = b.Apply(ctx, "app", hostsWant("t1", "b"), false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	assert.Equal(t, []string{"a", "b"}, secretHosts(t, c))
	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.Equal(t, []string{"a", "b"}, e.Hosts)
	assert.Equal(t, getSecret(t, c, "app", "regcred-ecr").UID, e.UID)

	// a remembers its own write only; the shard tells it of b's.
	_, err = a.Apply(ctx, "app", hostsWant("t1", "c"), false)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, secretHosts(t, c))
	e, _ = s.Index.Lookup(ctx, "app", "ecr", false)
	assert.Equal(t, []string{"a", "b", "c"}, e.Hosts)

	// Three replicas, four admissions each, at once: every host stays.
	var wg sync.WaitGroup
	hosts := []string{"a", "b", "c"}
	replicas := []*Store{blind(), blind(), blind()}
	for i := range 12 {
		h := fmt.Sprintf("h%02d", i)
		hosts = append(hosts, h)
		wg.Go(func() {
			_, err := replicas[i%3].Apply(ctx, "app", hostsWant("t1", h), false)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	slices.Sort(hosts)
	assert.Equal(t, hosts, secretHosts(t, c))
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.Equal(t, hosts, e.Hosts)
	assert.Equal(t, hostsWant("t1", hosts...).Version(), e.Version)
}

// A token refresh rewrites a secret in place and records it with a batch;
// another replica adds a host meanwhile. Which secret write landed last
// is unknown: the entry turns pending with every host, keeping its UID,
// and Raced is told, so that it is written again.
func TestABatchedHostRewriteThatRacedIsWrittenAgain(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	s.Batch = time.Hour // flushed below
	var raced []Entry
	s.Raced = func(e Entry) { raced = append(raced, e) }
	_, err := s.Apply(ctx, "app", hostsWant("t1", "a"), false)
	require.NoError(t, err)
	uid := getSecret(t, c, "app", "regcred-ecr").UID
	out, err := s.Apply(ctx, "app", hostsWant("t2", "a"), false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)

	other := &Store{API: c, Index: NewIndex(c, "regcred")}
	_, err = other.Apply(ctx, "app", hostsWant("t1", "b"), false)
	require.NoError(t, err)
	require.NoError(t, s.Flush(ctx))

	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.True(t, e.Pending(), "the sweeps write it again")
	assert.Equal(t, []string{"a", "b"}, e.Hosts)
	assert.Equal(t, uid, e.UID)
	require.Len(t, raced, 1)
	assert.Equal(t, Entry{Namespace: "app", Registry: "ecr", UID: uid, Version: pendingVersion, Hosts: []string{"a", "b"}}, raced[0])
	got, _ := s.Index.Lookup(ctx, "app", "ecr", false)
	assert.True(t, got.Pending(), "this replica sees it pending")

	// Written again, it serves both.
	out, err = s.Restore(ctx, "app", hostsWant("t2", "a"))
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	assert.Equal(t, []string{"a", "b"}, secretHosts(t, c))
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.False(t, e.Pending())
	assert.Equal(t, hostsWant("t2", "a", "b").Version(), e.Version)
}

// A batch whose entries nobody changed meanwhile is one patch, as before.
func TestABatchedHostRewriteIsRecorded(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	s.Batch = time.Hour
	s.Raced = func(e Entry) { t.Errorf("raced: %v", e) }
	for _, ns := range []string{"app", "web"} {
		_, err := s.Apply(ctx, ns, hostsWant("t1", "a", "b"), false)
		require.NoError(t, err)
		_, err = s.Apply(ctx, ns, hostsWant("t2", "a", "b"), false)
		require.NoError(t, err)
	}
	require.NoError(t, s.Flush(ctx))
	for _, ns := range []string{"app", "web"} {
		e, _ := NewIndex(c, "regcred").Lookup(ctx, ns, "ecr", false)
		assert.Equal(t, hostsWant("t2", "a", "b").Version(), e.Version, ns)
	}
}

// A pending entry recorded by a replica that has not seen another's
// entry keeps that entry's hosts and UID.
func TestPendingKeepsWhatAnotherReplicaRecorded(t *testing.T) {
	s, c, uid := servingA(t)
	ctx := t.Context()

	blind := blindStore(c, c)
	require.NoError(t, blind.Pending(ctx, Entry{Namespace: "app", Registry: "ecr", Hosts: []string{"b"}}))
	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.True(t, e.Pending())
	assert.Equal(t, []string{"a", "b"}, e.Hosts)
	assert.Equal(t, uid, e.UID)

	// Serving the hosts asked for already: left as it is.
	_, err := s.Apply(ctx, "app", hostsWant("t1", "a", "b"), false)
	require.NoError(t, err)
	require.NoError(t, blindStore(c, c).Pending(ctx, Entry{Namespace: "app", Registry: "ecr", Hosts: []string{"b"}}))
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.False(t, e.Pending())
}

// A replica whose rewrite, after it lost a race, fails (the API server
// throttles, ECR is down) leaves the entry pending: its earlier Secret
// write may have landed after the entry the other replica recorded.
func TestAFailedRewriteAfterARaceLeavesTheEntryPending(t *testing.T) {
	_, c, uid := servingA(t)
	ctx := t.Context()

	secretPatches := 0
	failing := interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				if secretPatches++; secretPatches > 1 {
					return apierrors.NewTooManyRequests("slow down", 1)
				}
			}
			return cl.Patch(ctx, obj, p, opts...)
		},
	})
	blind := blindStore(failing, c)
	_, err := blind.Apply(ctx, "app", hostsWant("t1", "b"), false)
	require.Error(t, err)
	assert.Equal(t, 2, secretPatches, "its own write, then the one serving both, refused")
	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.True(t, e.Pending(), "the sweeps write it again")
	assert.Equal(t, []string{"a", "b"}, e.Hosts)
	assert.Equal(t, uid, e.UID)
}

// A replica that wrote the secret from an older view of its entry, and
// then cannot record it (the API server throttles it), leaves the entry
// pending with every host: the entry another replica recorded claims a
// host that the Secret written last lacks.
func TestAFailedRecordAfterAWriteLeavesTheEntryPending(t *testing.T) {
	_, c, uid := servingA(t)
	ctx := t.Context()
	throttled := 0
	failing := interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.ConfigMap); ok && throttled == 0 {
				throttled++
				return apierrors.NewTooManyRequests("slow down", 1)
			}
			return cl.Patch(ctx, obj, p, opts...)
		},
	})
	_, err := blindStore(failing, c).Apply(ctx, "app", hostsWant("t1", "b"), false)
	require.Error(t, err)
	require.Equal(t, 1, throttled)
	assert.Equal(t, []string{"b"}, secretHosts(t, c), "written from a view without host a")
	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.True(t, e.Pending(), "the sweeps write it again")
	assert.Equal(t, []string{"a", "b"}, e.Hosts)
	assert.Equal(t, uid, e.UID)
}

// Replicas recording the first entries of a shard that has none (its
// last was forgotten: the ConfigMap has no data) all succeed.
func TestFirstEntriesOfAnEmptyShard(t *testing.T) {
	_, c := newStore(t)
	ctx := t.Context()
	nss := inOneShard(6)
	require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: ShardOf("app"),
		Labels: map[string]string{LabelIndex: IndexValue}}}))
	var wg sync.WaitGroup
	for i, ns := range nss {
		wg.Go(func() {
			_, err := blindStore(c, c).Apply(ctx, ns, hostsWant("t1", fmt.Sprintf("h%d", i)), false)
			assert.NoError(t, err, ns)
		})
	}
	wg.Wait()
	for i, ns := range nss {
		e, ok := NewIndex(c, "regcred").Lookup(ctx, ns, "ecr", false)
		assert.True(t, ok, ns)
		assert.Equal(t, []string{fmt.Sprintf("h%d", i)}, e.Hosts, ns)
	}
}

// patchCountingStore returns a store that batches (flushed by the test),
// the client beneath it, and the sizes of the JSON patches it sends the
// index, in operations.
func patchCountingStore(t *testing.T) (*Store, client.Client, *[]int) {
	t.Helper()
	_, inner := newStore(t)
	var sizes []int
	c := interceptor.NewClient(inner.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.ConfigMap); ok && p.Type() == types.JSONPatchType {
				body, _ := p.Data(obj)
				var ops []any
				_ = json.Unmarshal(body, &ops)
				sizes = append(sizes, len(ops))
			}
			return cl.Patch(ctx, obj, p, opts...)
		},
	})
	return &Store{API: c, Index: NewIndex(inner, "regcred"), Batch: time.Hour}, inner, &sizes
}

// rewritesWaiting records a pull secret serving host a in n namespaces of
// one shard, rewrites each with a new token, which waits for s's batch
// (s.Batch is long), and returns the namespaces.
func rewritesWaiting(t *testing.T, s *Store, n int) []string {
	t.Helper()
	nss := inOneShard(n)
	for _, tok := range []string{"t1", "t2"} {
		for _, ns := range nss {
			_, err := s.Apply(t.Context(), ns, hostsWant(tok, "a"), false)
			require.NoError(t, err)
		}
	}
	return nss
}

// A batch's entries go in patches of at most maxSwapsPerPatch entries
// (kube-apiserver takes at most 10,000 operations in one).
func TestABatchIsSplitIntoPatchesTheAPIServerTakes(t *testing.T) {
	defer func(n int) { maxSwapsPerPatch = n }(maxSwapsPerPatch)
	maxSwapsPerPatch = 2
	s, inner, sizes := patchCountingStore(t)
	ctx := t.Context()
	nss := rewritesWaiting(t, s, 5)
	*sizes = nil
	require.NoError(t, s.Flush(ctx))
	assert.Equal(t, []int{4, 4, 2}, *sizes, "a test and an add per entry, two entries a patch")
	for _, ns := range nss {
		e, _ := NewIndex(inner, "regcred").Lookup(ctx, ns, "ecr", false)
		assert.Equal(t, hostsWant("t2", "a").Version(), e.Version, ns)
	}
}

// A batch another replica changed one entry of is written again in one
// patch, the changed entry left out (it turns pending): not one request
// per entry while the shard's lock is held.
func TestARefusedBatchIsWrittenAgainInOnePatch(t *testing.T) {
	s, inner, sizes := patchCountingStore(t)
	var raced []Entry
	s.Raced = func(e Entry) { raced = append(raced, e) }
	ctx := t.Context()
	nss := rewritesWaiting(t, s, 5)
	other := &Store{API: inner, Index: NewIndex(inner, "regcred")}
	_, err := other.Apply(ctx, nss[2], hostsWant("t1", "b"), false)
	require.NoError(t, err)
	*sizes = nil
	require.NoError(t, s.Flush(ctx))
	require.GreaterOrEqual(t, len(*sizes), 2)
	assert.Equal(t, []int{10, 8}, (*sizes)[:2], "the batch, refused; then the four entries nobody changed, in one patch")
	for i, ns := range nss {
		e, _ := NewIndex(inner, "regcred").Lookup(ctx, ns, "ecr", false)
		if i == 2 {
			assert.True(t, e.Pending(), "the entry another replica changed is written again by the sweeps")
			assert.Equal(t, []string{"a", "b"}, e.Hosts)
			continue
		}
		assert.Equal(t, hostsWant("t2", "a").Version(), e.Version, ns)
	}
	require.Len(t, raced, 1)
	assert.Equal(t, nss[2], raced[0].Namespace)
}

// A rewrite that lost a race, and then waits for a batch, is based on
// what the shard was read to hold, not on what this replica's older entry
// waiting was based on: the batch lands, nothing turns pending.
func TestARewriteAfterALostRaceIsBasedOnWhatTheShardHolds(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	s.Batch = time.Hour // flushed below
	s.Raced = func(e Entry) { t.Errorf("raced: %v", e) }
	_, err := s.Apply(ctx, "app", hostsWant("t1", "a"), false)
	require.NoError(t, err)
	_, err = s.Apply(ctx, "app", hostsWant("t2", "a"), false) // waits for the batch
	require.NoError(t, err)
	other := &Store{API: c, Index: NewIndex(c, "regcred")}
	_, err = other.Apply(ctx, "app", hostsWant("t1", "b"), false)
	require.NoError(t, err)
	_, err = s.Apply(ctx, "app", hostsWant("t2", "a", "b"), false) // loses to other's entry, then waits
	require.NoError(t, err)
	require.NoError(t, s.Flush(ctx))
	e, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.False(t, e.Pending())
	assert.Equal(t, hostsWant("t2", "a", "b").Version(), e.Version)
	assert.Equal(t, []string{"a", "b"}, secretHosts(t, c))
}

// A flush's swap writes an entry taken from those waiting: an entry of the
// same key queued since (a later token rewrite) is newer, and still waits.
// Any other swap supersedes the entry waiting.
func TestAFlushKeepsTheEntryQueuedSinceItTookItsOwn(t *testing.T) {
	for _, flushing := range []bool{true, false} {
		t.Run(fmt.Sprintf("flushing: %v", flushing), func(t *testing.T) {
			s, _ := newStore(t)
			s.Batch = time.Hour // no flush but this test's
			ctx := t.Context()
			_, err := s.Apply(ctx, "app", hostsWant("t1", "a"), false)
			require.NoError(t, err)
			shard, k := ShardOf("app"), key("app", "ecr", false)
			_, base, _ := s.Index.lookupRaw(ctx, "app", "ecr", false)
			taken := entryOf("app", hostsWant("t2", "a"), "uid").value()
			newer := entryOf("app", hostsWant("t3", "a"), "uid").value()
			s.deferEntry(shard, k, newer, &taken)
			unlock, err := s.shards.lock(ctx, shard)
			require.NoError(t, err)
			won, _, err := s.swapLocked(ctx, shard, k, base, taken, flushing)
			unlock()
			require.NoError(t, err)
			require.True(t, won)
			_, waits := s.shards.waiting(shard, k)
			assert.Equal(t, flushing, waits)
		})
	}
}

// A write of the index waits for this replica's other writes of the shard
// (a flush) only within its own time: an admission is not held past its
// deadline by a flush that takes long, nor by recording the secret it
// wrote pending, which goes on in the background.
func TestAnIndexWriteWaitsForTheShardOnlyWithinItsTime(t *testing.T) {
	s, c := newStore(t)
	unlock, err := s.shards.lock(t.Context(), ShardOf("app"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		_, err := s.Apply(ctx, "app", hostsWant("t1", "a"), false)
		answered <- err
	}()
	select {
	case err = <-answered:
	case <-time.After(3 * time.Second): // the background record waits 5 s
		unlock()
		t.Fatal("the write held the admission past its deadline, while the shard's lock is held")
	}
	require.ErrorIs(t, err, context.DeadlineExceeded, "given up while the shard's lock is still held")
	assert.Contains(t, err.Error(), "waiting for this replica's other writes of index shard")
	assert.Contains(t, err.Error(), "recording it pending in the background")

	// The lock is released: the Secret written is recorded pending, for
	// the sweeps to write it again.
	unlock()
	require.Eventually(t, func() bool {
		e, ok := NewIndex(c, "regcred").Lookup(t.Context(), "app", "ecr", false)
		return ok && e.Pending()
	}, 5*time.Second, 10*time.Millisecond)
}

// An entry the shard holds already, as a flush that did not hear its
// answer wrote it, is written.
func TestSwapOfAnEntryWrittenAlready(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	k := key("app", "ecr", false)
	won, _, err := s.swap(ctx, "app", k, "", "v1")
	require.NoError(t, err)
	require.True(t, won)
	won, _, err = s.swap(ctx, "app", k, "v0", "v1")
	require.NoError(t, err)
	assert.True(t, won, "the shard holds v1 already")
	won, cur, err := s.swap(ctx, "app", k, "v0", "v2")
	require.NoError(t, err)
	assert.False(t, won)
	assert.Equal(t, "v1", cur)
}

// inOneShard returns n namespaces whose entries go in app's shard.
func inOneShard(n int) []string {
	var nss []string
	for i := 0; len(nss) < n; i++ {
		if ns := fmt.Sprintf("ns-%d", i); ShardOf(ns) == ShardOf("app") {
			nss = append(nss, ns)
		}
	}
	return nss
}
