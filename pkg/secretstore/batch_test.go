package secretstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// shardPatches counts the merge patches of index shards through c, and
// fails the next ones while failing is set.
type shardPatches struct {
	client.Client
	n       atomic.Int64
	failing atomic.Bool
}

func (s *shardPatches) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*corev1.ConfigMap); ok {
		if s.failing.Load() {
			return errors.New("API server unavailable")
		}
		s.n.Add(1)
	}
	return s.Client.Patch(ctx, obj, patch, opts...)
}

func shardEntry(t *testing.T, c client.Client, ns, registry string) (string, bool) {
	t.Helper()
	var cm corev1.ConfigMap
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "regcred", Name: ShardOf(ns)}, &cm))
	v, ok := cm.Data[key(ns, registry, false)]
	return v, ok
}

// A fan-out rewrites many pull secrets; their index entries are written a
// shard at a time, and this replica sees each at once.
func TestRewritesAreRecordedInBatches(t *testing.T) {
	s, c := newStore(t)
	counted := &shardPatches{Client: c}
	s.API, s.Batch = counted, time.Hour // flushed by hand below
	ctx := t.Context()
	const namespaces = 64
	for i := range namespaces {
		_, err := s.Apply(ctx, fmt.Sprintf("ns-%d", i), want(`{"auths":{"a":{}}}`), false)
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, counted.n.Load(), int64(namespaces), "a new entry is written at once")

	counted.n.Store(0)
	rewritten := want(`{"auths":{"b":{}}}`)
	for i := range namespaces {
		out, err := s.Apply(ctx, fmt.Sprintf("ns-%d", i), rewritten, false)
		require.NoError(t, err)
		require.Equal(t, Updated, out)
	}
	assert.Zero(t, counted.n.Load(), "rewrites wait for their batch")
	e, ok := s.Index.Lookup(ctx, "ns-3", "hub", false)
	require.True(t, ok)
	assert.True(t, e.Satisfies(rewritten), "this replica sees the new entry before its batch is written")
	out, err := s.Apply(ctx, "ns-3", rewritten, false)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, out)

	require.NoError(t, s.Flush(ctx))
	assert.LessOrEqual(t, counted.n.Load(), int64(Shards), "one patch per shard")
	fresh := NewIndex(c, "regcred")
	for i := range namespaces {
		e, ok := fresh.Lookup(ctx, fmt.Sprintf("ns-%d", i), "hub", false)
		require.True(t, ok)
		assert.True(t, e.Satisfies(rewritten), "another replica reads the new entry from the shards")
	}
}

// A batch never writes back an entry that a later write removed.
func TestBatchNeverRestoresAForgottenEntry(t *testing.T) {
	s, c := newStore(t)
	s.Batch = time.Hour
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{"a":{}}}`), false)
	require.NoError(t, err)
	_, err = s.Apply(ctx, "app", want(`{"auths":{"b":{}}}`), false)
	require.NoError(t, err)
	require.NoError(t, s.Forget(ctx, Entry{Namespace: "app", Registry: "hub"}))
	require.NoError(t, s.Flush(ctx))
	_, ok := shardEntry(t, c, "app", "hub")
	assert.False(t, ok)
}

// A batch that cannot be written waits for the next one, and is written
// once the API server answers again.
func TestBatchesAreRetried(t *testing.T) {
	s, c := newStore(t)
	failing := &shardPatches{Client: c}
	s.API, s.Batch = failing, 10*time.Millisecond
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{"a":{}}}`), false)
	require.NoError(t, err)
	before, _ := shardEntry(t, c, "app", "hub")
	failing.failing.Store(true)
	rewritten := want(`{"auths":{"b":{}}}`)
	_, err = s.Apply(ctx, "app", rewritten, false)
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	now, _ := shardEntry(t, c, "app", "hub")
	assert.Equal(t, before, now, "not written while the API server fails")
	failing.failing.Store(false)
	require.Eventually(t, func() bool {
		v, _ := shardEntry(t, c, "app", "hub")
		e, ok := parseEntry(key("app", "hub", false), v)
		return ok && e.Satisfies(rewritten)
	}, 5*time.Second, 10*time.Millisecond)
}

// blockedPatches holds the next shard patch until release is closed, and
// fails it if failing is set then.
type blockedPatches struct {
	client.Client
	held    chan struct{}
	release chan struct{}
	failing atomic.Bool
	once    atomic.Bool
}

func (b *blockedPatches) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*corev1.ConfigMap); ok && b.once.CompareAndSwap(false, true) {
		close(b.held)
		<-b.release
	}
	if _, ok := obj.(*corev1.ConfigMap); ok && b.failing.Load() {
		return errors.New("API server unavailable")
	}
	return b.Client.Patch(ctx, obj, patch, opts...)
}

// A flush that fails while the batch's own timer has fired and found
// nothing to write (as when a term ends during an outage) still leaves its
// entries to a later batch: they are written once the API server answers.
func TestAFailedFlushIsRetriedByABatch(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{"a":{}}}`), false)
	require.NoError(t, err)
	blocked := &blockedPatches{Client: c, held: make(chan struct{}), release: make(chan struct{})}
	blocked.failing.Store(true)
	s.API, s.Batch = blocked, 20*time.Millisecond
	rewritten := want(`{"auths":{"b":{}}}`)
	_, err = s.Apply(ctx, "app", rewritten, false)
	require.NoError(t, err)

	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush(ctx) }()
	select {
	case <-blocked.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the flush never wrote its shard")
	}
	// Meanwhile the batch's timer fires and finds nothing waiting.
	time.Sleep(100 * time.Millisecond)
	close(blocked.release)
	require.Error(t, <-flushed)
	blocked.failing.Store(false)
	require.Eventually(t, func() bool {
		v, _ := shardEntry(t, c, "app", "hub")
		e, ok := parseEntry(key("app", "hub", false), v)
		return ok && e.Satisfies(rewritten)
	}, 5*time.Second, 10*time.Millisecond, "the entry put back waits for a batch that never comes")
}
