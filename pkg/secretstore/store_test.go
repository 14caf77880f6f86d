package secretstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllertest"

	"github.com/regcred/regcred/pkg/pullsecret"
)

// newStore returns a store on a fake client that answers as the API
// server does where the fake differs (measured on kube-apiserver v1.37.2):
// a JSON patch whose operation does not apply is 422 Invalid, and a
// delete honours its UID precondition.
func newStore(t *testing.T, objs ...client.Object) (*Store, client.Client) {
	t.Helper()
	var patchLive func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error
	patchLive = func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
		o := &client.PatchOptions{}
		o.ApplyOptions(opts)
		if slices.Contains(o.DryRun, metav1.DryRunAll) {
			// As the API server: the patch is applied, to a copy.
			live := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
				return err
			}
			scratch := fake.NewClientBuilder().WithObjects(live).Build()
			return patchLive(ctx, scratch, obj, patch)
		}
		err := c.Patch(ctx, obj, patch, opts...)
		var status apierrors.APIStatus
		if err != nil && patch.Type() == types.JSONPatchType && !errors.As(err, &status) {
			return apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, obj.GetName(), nil)
		}
		return err
	}
	c := fake.NewClientBuilder().WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			o := &client.CreateOptions{}
			o.ApplyOptions(opts)
			if slices.Contains(o.DryRun, metav1.DryRunAll) {
				// As the API server: refused if it exists.
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object)); err == nil {
					return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, obj.GetName())
				}
				return nil
			}
			if obj.GetUID() == "" {
				obj.SetUID(types.UID(uuid.NewString()))
			}
			return c.Create(ctx, obj, opts...)
		},
		Patch: patchLive,
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			o := &client.DeleteOptions{}
			o.ApplyOptions(opts)
			if o.Preconditions != nil && o.Preconditions.UID != nil {
				var live corev1.Secret
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &live); err == nil && live.UID != *o.Preconditions.UID {
					return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, obj.GetName(), errors.New("UID in precondition does not match"))
				}
			}
			return c.Delete(ctx, obj, opts...)
		},
	}).Build()
	return &Store{API: c, Index: NewIndex(c, "regcred")}, c
}

func want(data string) *pullsecret.Want {
	return &pullsecret.Want{Name: "regcred-hub", Registry: "hub", Data: []byte(data)}
}

func getSecret(t *testing.T, c client.Client, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &s))
	return &s
}

func TestApply(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()

	out, err := s.Apply(ctx, "app", want(`{"auths":{}}`), true)
	require.NoError(t, err)
	assert.Equal(t, WouldCreate, out)
	assert.Error(t, c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "regcred-hub"}, &corev1.Secret{}), "a dry run writes nothing")

	out, err = s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	sec := getSecret(t, c, "app", "regcred-hub")
	assert.Equal(t, corev1.SecretTypeDockerConfigJson, sec.Type)
	assert.Equal(t, map[string]string{pullsecret.LabelManagedBy: pullsecret.ManagedBy, pullsecret.LabelRegistry: "hub"}, sec.Labels)

	// The index records where it lives, with its UID and version.
	e, ok := s.Index.Lookup(ctx, "app", "hub", false)
	require.True(t, ok)
	assert.Equal(t, sec.UID, e.UID)
	assert.Equal(t, want(`{"auths":{}}`).Version(), e.Version)
	shard := &corev1.ConfigMap{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "regcred", Name: ShardOf("app")}, shard))
	assert.Equal(t, IndexValue, shard.Labels[LabelIndex])
	assert.Contains(t, shard.Data, "app.hub")

	out, err = s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, out, "the index answers: no API call")

	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	w2 := &pullsecret.Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{"x":{}}}`), ExpiresAt: exp}
	out, err = s.Apply(ctx, "app", w2, true)
	require.NoError(t, err)
	assert.Equal(t, WouldUpdate, out)
	out, err = s.Apply(ctx, "app", w2, false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	sec = getSecret(t, c, "app", "regcred-hub")
	assert.Equal(t, w2.Data, sec.Data[corev1.DockerConfigJsonKey])
	assert.Equal(t, "2030-01-02T03:04:05Z", sec.Annotations[pullsecret.AnnotationExpiresAt])

	// An older token does not replace a fresher one another replica wrote.
	older := &pullsecret.Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`old`), ExpiresAt: exp.Add(-time.Hour)}
	out, err = s.Apply(ctx, "app", older, false)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, out)

	// Back to static credentials: the expiry annotation goes.
	out, err = s.Apply(ctx, "app", want(`{"auths":{"y":{}}}`), false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	assert.NotContains(t, getSecret(t, c, "app", "regcred-hub").Annotations, pullsecret.AnnotationExpiresAt)
}

func TestApplyNeverTakesOverAnotherSecret(t *testing.T) {
	for name, existing := range map[string]*corev1.Secret{
		"someone's dockerconfigjson": {ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred-hub"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"mine":{}}}`)}},
		"an Opaque squat with regcred's labels": {ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred-hub",
			Labels: map[string]string{pullsecret.LabelManagedBy: pullsecret.ManagedBy, pullsecret.LabelRegistry: "hub"}}, Type: corev1.SecretTypeOpaque},
		"another registry's label": {ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred-hub",
			Labels: map[string]string{pullsecret.LabelManagedBy: pullsecret.ManagedBy, pullsecret.LabelRegistry: "quay"}}, Type: corev1.SecretTypeDockerConfigJson},
	} {
		t.Run(name, func(t *testing.T) {
			s, c := newStore(t, existing.DeepCopy())
			_, err := s.Apply(t.Context(), "app", want(`{"auths":{}}`), false)
			require.ErrorIs(t, err, ErrNotManaged)
			assert.Equal(t, existing.Data, getSecret(t, c, "app", "regcred-hub").Data, "left as it was")
			_, ok := s.Index.Lookup(t.Context(), "app", "hub", false)
			assert.False(t, ok)
		})
	}
}

// counting counts the store's API calls.
func counting(s *Store) *atomic.Int32 {
	var calls atomic.Int32
	s.API = interceptor.NewClient(s.API.(client.WithWatch), interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			calls.Add(1)
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			calls.Add(1)
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	return &calls
}

// A Secret found not to be regcred's is remembered for RefusedFor: the
// admissions of its namespace meanwhile make no API call. Once it is gone,
// the pull secret is made.
func TestApplyRemembersASecretNotItsOwn(t *testing.T) {
	squat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred-hub"}, Type: corev1.SecretTypeOpaque}
	s, c := newStore(t, squat)
	calls := counting(s)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ctx := t.Context()

	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.ErrorIs(t, err, ErrNotManaged)
	first := calls.Load()
	require.Positive(t, first)
	for range 10 {
		_, err = s.Apply(ctx, "app", want(`{"auths":{}}`), false)
		require.ErrorIs(t, err, ErrNotManaged)
		_, err = s.Apply(ctx, "app", want(`{"auths":{}}`), true)
		require.ErrorIs(t, err, ErrNotManaged, "a dry run answers as the write would")
	}
	assert.Equal(t, first, calls.Load(), "remembered: no API call")
	out, err := s.Apply(ctx, "other", want(`{"auths":{}}`), false)
	require.NoError(t, err, "another namespace is not concerned")
	assert.Equal(t, Created, out)

	require.NoError(t, c.Delete(ctx, squat))
	now = now.Add(RefusedFor - time.Second)
	_, err = s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.ErrorIs(t, err, ErrNotManaged)
	now = now.Add(time.Second)
	out, err = s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	assert.Equal(t, Created, out)
}

// A dry run answers as the write would, without writing: it asks the API
// server for a dry run where the index does not know the Secret.
func TestDryRunAnswersAsTheWriteWould(t *testing.T) {
	squat := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "squat", Name: "regcred-hub"}, Type: corev1.SecretTypeOpaque}
	own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "own", Name: "regcred-hub",
		Labels: map[string]string{pullsecret.LabelManagedBy: pullsecret.ManagedBy, pullsecret.LabelRegistry: "hub"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}
	s, c := newStore(t, squat, own)
	ctx := t.Context()
	_, err := s.Apply(ctx, "squat", want(`{"auths":{"x":{}}}`), true)
	require.ErrorIs(t, err, ErrNotManaged)
	out, err := s.Apply(ctx, "own", want(`{"auths":{"x":{}}}`), true)
	require.NoError(t, err)
	assert.Equal(t, WouldUpdate, out, "regcred's, not in the index yet")
	out, err = s.Apply(ctx, "empty", want(`{"auths":{"x":{}}}`), true)
	require.NoError(t, err)
	assert.Equal(t, WouldCreate, out)

	assert.Equal(t, own.Data, getSecret(t, c, "own", "regcred-hub").Data, "a dry run writes nothing")
	assert.Error(t, c.Get(ctx, client.ObjectKey{Namespace: "empty", Name: "regcred-hub"}, &corev1.Secret{}))
	for _, ns := range []string{"squat", "own", "empty"} {
		_, ok := s.Index.Lookup(ctx, ns, "hub", false)
		assert.False(t, ok, ns)
	}
}

func TestApplyAdoptsItsOwnSecretWithoutAnnotations(t *testing.T) {
	// A pull secret regcred made before the index existed, or edited by
	// hand down to nothing but its labels.
	own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred-hub",
		Labels: map[string]string{pullsecret.LabelManagedBy: pullsecret.ManagedBy, pullsecret.LabelRegistry: "hub"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("corrupted")}}
	s, c := newStore(t, own)
	w := &pullsecret.Want{Name: "regcred-hub", Registry: "hub", Data: []byte(`{"auths":{}}`), ExpiresAt: time.Now().Add(time.Hour)}
	out, err := s.Apply(t.Context(), "app", w, false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	got := getSecret(t, c, "app", "regcred-hub")
	assert.Equal(t, w.Data, got.Data[corev1.DockerConfigJsonKey])
	assert.Equal(t, w.ExpiresAtString(), got.Annotations[pullsecret.AnnotationExpiresAt])
}

func TestRestoreRecreatesADeletedSecret(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	out, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	assert.Equal(t, Unchanged, out, "the index cannot know of a delete it did not see")
	out, err = s.Restore(ctx, "app", want(`{"auths":{}}`))
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	e, _ := s.Index.Lookup(ctx, "app", "hub", false)
	assert.Equal(t, getSecret(t, c, "app", "regcred-hub").UID, e.UID, "the index follows the new Secret")
}

func TestDeleteIsBoundToTheUIDRegcredCreated(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	e, _ := s.Index.Lookup(ctx, "app", "hub", false)
	// Someone replaces it with their own Secret of the same name.
	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "regcred-hub"}}))
	require.NoError(t, s.Delete(ctx, e, "regcred-hub"))
	getSecret(t, c, "app", "regcred-hub") // still there
	_, ok := s.Index.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "forgotten")

	_, err = s.Apply(ctx, "other", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	e, _ = s.Index.Lookup(ctx, "other", "hub", false)
	require.NoError(t, s.Delete(ctx, e, "regcred-hub"))
	assert.Error(t, c.Get(ctx, client.ObjectKey{Namespace: "other", Name: "regcred-hub"}, &corev1.Secret{}), "its own is deleted")
}

func TestConcurrentAppliesOneSecret(t *testing.T) {
	s, c := newStore(t)
	// Two replicas, each with its own index view, racing on one Secret.
	s2 := &Store{API: c, Index: NewIndex(c, "regcred")}
	var wg sync.WaitGroup
	outs := make([]Outcome, 16)
	for i := range outs {
		st := s
		if i%2 == 1 {
			st = s2
		}
		wg.Go(func() {
			var err error
			outs[i], err = st.Apply(t.Context(), "app", want(`{"auths":{}}`), false)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	created := 0
	for _, o := range outs {
		if o == Created {
			created++
		}
	}
	assert.Equal(t, 1, created, "one create; the others patch or find it done: %v", outs)
}

// allEntries reads the whole index a shard at a time, sorted by
// namespace and registry.
func allEntries(t *testing.T, x *Index) []Entry {
	t.Helper()
	var all []Entry
	for _, shard := range ShardNames() {
		entries, err := x.InShard(t.Context(), shard)
		require.NoError(t, err)
		all = append(all, entries...)
	}
	slices.SortFunc(all, func(a, b Entry) int {
		return strings.Compare(key(a.Namespace, a.Registry, a.Exact), key(b.Namespace, b.Registry, b.Exact))
	})
	return all
}

func TestIndexEntries(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	for _, ns := range []string{"b", "a", "c"} {
		for _, reg := range []string{"quay", "hub"} {
			_, err := s.Apply(ctx, ns, &pullsecret.Want{Name: "regcred-" + reg, Registry: reg, Data: []byte("{}")}, false)
			require.NoError(t, err)
		}
	}
	all := allEntries(t, s.Index)
	var keys []string
	for _, e := range all {
		keys = append(keys, e.Namespace+"/"+e.Registry)
	}
	assert.Equal(t, []string{"a/hub", "a/quay", "b/hub", "b/quay", "c/hub", "c/quay"}, keys)
	in, err := s.Index.InNamespace(ctx, "b")
	require.NoError(t, err)
	assert.Len(t, in, 2)
	shards := map[string]bool{}
	for _, shard := range ShardNames() {
		entries, err := s.Index.InShard(ctx, shard)
		require.NoError(t, err)
		for _, e := range entries {
			assert.Equal(t, shard, ShardOf(e.Namespace))
			shards[shard] = true
		}
	}
	// Every shard written is labelled as the index's.
	var labelled corev1.ConfigMapList
	require.NoError(t, s.Index.Cache.List(ctx, &labelled, client.InNamespace("regcred"), client.MatchingLabels{LabelIndex: IndexValue}))
	assert.Len(t, labelled.Items, len(shards))

	// A fresh replica's index, from the shards alone, agrees.
	fresh := NewIndex(s.Index.Cache, "regcred")
	assert.Equal(t, all, allEntries(t, fresh))
	require.NoError(t, s.Forget(ctx, Entry{Namespace: "a", Registry: "hub"}))
	assert.Len(t, allEntries(t, fresh), 5)
}

func TestEntryValueRoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Namespace: "app", Registry: "ecr", UID: "1234-abcd", Version: "0123456789ab", ExpiresAt: time.Unix(1_800_000_000, 0)},
		{Namespace: "app", Registry: "ecr", UID: "1234-abcd", Version: "0123456789ab", Shape: "89abcdef", ExpiresAt: time.Unix(1_800_000_000, 0), Hosts: []string{"a", "b"}},
		{Namespace: "app", Registry: "hub", Version: "0123456789ab"},
		{Namespace: "app", Registry: "hub", Exact: true, UID: "5678", Version: "0123456789ab"},
	} {
		got, ok := parseEntry(key(e.Namespace, e.Registry, e.Exact), e.value())
		require.True(t, ok)
		assert.Equal(t, e, got)
	}
	legacy, ok := parseEntry("app.hub", "- 0123456789ab 0")
	require.True(t, ok)
	assert.Equal(t, Entry{Namespace: "app", Registry: "hub", Version: "0123456789ab"}, legacy, "an entry recorded before shapes were")
	_, ok = parseEntry("nodot", "x y 0")
	assert.False(t, ok)
	_, ok = parseEntry("a.b", "too few")
	assert.False(t, ok)
	assert.Len(t, ShardNames(), Shards)
	assert.Contains(t, ShardNames(), ShardOf("any-namespace"))
}

// A replica's own writes overlay the cache for a minute, then go: the
// overlay does not keep an entry per pull secret after a fan-out.
func TestOverlayKeepsTheLastMinuteOnly(t *testing.T) {
	x := NewIndex(nil, "regcred")
	now := time.Unix(1_800_000_000, 0)
	x.now = func() time.Time { return now }
	for i := range 1000 {
		x.remember(Entry{Namespace: fmt.Sprintf("ns-%d", i), Registry: "hub", Version: "v1"}, false)
		now = now.Add(100 * time.Millisecond) // a fan-out at 10 writes a second
	}
	// 100 s of writes: those of the last Overlay (plus a quarter) remain.
	assert.LessOrEqual(t, len(x.local), int(x.Overlay*5/4/(100*time.Millisecond))+1)
	assert.GreaterOrEqual(t, len(x.local), int(x.Overlay/(100*time.Millisecond)))
	l, ok := x.recent(key("ns-999", "hub", false))
	require.True(t, ok, "the last write is still overlaid")
	assert.Equal(t, "v1", l.entry.Version)
	_, ok = x.recent(key("ns-0", "hub", false))
	assert.False(t, ok, "the first write, 100 s old, is not")
}

// This replica's write overlays the cache only until the cache shows it:
// a change another replica makes after (the leader deletes the entry
// within the minute) is not hidden by it, or an admission would answer
// "unchanged" for a Secret that no longer exists.
func TestOverlayGoesOnceTheCacheShowsTheWrite(t *testing.T) {
	ctx := t.Context()
	x := NewIndex(fake.NewClientBuilder().Build(), "regcred")
	inf := controllertest.NewFakeInformer()
	require.NoError(t, x.Follow(inf))
	inf.Synced()
	e := Entry{Namespace: "app", Registry: "hub", UID: "u1", Version: "v1"}
	k := key("app", "hub", false)

	x.remember(e, false)
	_, ok := x.Lookup(ctx, "app", "hub", false)
	require.True(t, ok, "the cache has not shown the write yet: the overlay answers")
	shard := shardOf("app", map[string]string{k: e.value()})
	inf.Add(shard)
	deleted := shardOf("app", map[string]string{})
	inf.Update(shard, deleted) // the leader deletes it
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "the cache showed the write, then another replica's delete")

	// A write the cache showed before it was remembered leaves no overlay.
	inf.Update(deleted, shard)
	x.remember(e, false)
	inf.Update(shard, deleted)
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok)

	// This replica's removal stays overlaid for its minute, though the
	// cache shows the entry absent: that may be from before another
	// replica recorded it, whose recording, delivered next, is gone.
	inf.Update(deleted, shard)
	x.remember(e, true)
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "removed here, not yet in the cache")
	inf.Update(shard, deleted)
	inf.Update(deleted, shard)
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok)

	// What this replica learnt from the API server, likewise: the entry
	// was recorded and removed since the cache's state.
	x.local = map[string]localEntry{}
	inf.Update(shard, deleted)
	x.learn(k, "")
	inf.Update(deleted, shard) // the watch catches up: the recording first
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "this replica knows the entry is gone")
	x.local = map[string]localEntry{}

	// An overlay of another shard's entry stays.
	other := Entry{Namespace: "elsewhere", Registry: "hub", UID: "u2", Version: "v1"}
	require.NotEqual(t, ShardOf("app"), ShardOf("elsewhere"))
	x.remember(other, false)
	inf.Update(shard, deleted)
	_, ok = x.Lookup(ctx, "elsewhere", "hub", false)
	assert.True(t, ok)
}

// The shard a namespace's entries go to is FNV-1a's, as indexes already
// written in clusters have it.
func TestShardOfIsFNV1a(t *testing.T) {
	for i := range 2000 {
		ns := fmt.Sprintf("team-%d", i)
		h := fnv.New32a()
		_, _ = h.Write([]byte(ns))
		require.Equal(t, fmt.Sprintf("%s%x", ShardPrefix, h.Sum32()%Shards), ShardOf(ns), ns)
	}
}

func shardOf(ns string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: ShardOf(ns), Labels: map[string]string{LabelIndex: IndexValue}},
		Data:       data,
	}
}

// A followed index reads its shards as the informer delivers them, and
// through the cache until the informer has delivered them all.
func TestFollowedShards(t *testing.T) {
	ctx := t.Context()
	e := Entry{Namespace: "app", Registry: "hub", UID: "u1", Version: "v1"}
	c := fake.NewClientBuilder().WithObjects(shardOf("app", map[string]string{key("app", "hub", false): e.value()})).Build()
	x := NewIndex(c, "regcred")
	inf := controllertest.NewFakeInformer()
	require.NoError(t, x.Follow(inf))

	got, ok := x.Lookup(ctx, "app", "hub", false)
	require.True(t, ok, "before the informer synced, the cache answers")
	assert.Equal(t, e, got)

	inf.Synced()
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "once synced, only what the informer delivered counts")

	v2 := e
	v2.Version = "v2"
	followedShard := shardOf("app", map[string]string{key("app", "hub", false): v2.value()})
	inf.Add(followedShard)
	other := shardOf("app", map[string]string{key("app", "hub", false): "elsewhere 0 0"})
	other.Namespace = "tenant"
	inf.Add(other)
	notAShard := shardOf("app", map[string]string{key("app", "hub", false): "not a shard 0"})
	notAShard.Name = "regcred-config"
	inf.Add(notAShard)
	got, ok = x.Lookup(ctx, "app", "hub", false)
	require.True(t, ok)
	assert.Equal(t, "v2", got.Version)
	in, err := x.InNamespace(ctx, "app")
	require.NoError(t, err)
	assert.Equal(t, []Entry{v2}, in)
	in, err = x.InShard(ctx, ShardOf("app"))
	require.NoError(t, err)
	assert.Equal(t, []Entry{v2}, in)

	inf.Delete(followedShard)
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "a deleted shard holds nothing")

	// A delete the informer learns of only on relisting comes as a
	// tombstone around the last state it saw.
	inf.Add(followedShard)
	_, ok = x.Lookup(ctx, "app", "hub", false)
	require.True(t, ok)
	x.follow.set(toolscache.DeletedFinalStateUnknown{Key: "regcred/" + followedShard.Name, Obj: followedShard}, true)
	_, ok = x.Lookup(ctx, "app", "hub", false)
	assert.False(t, ok, "a shard deleted while the watch was down holds nothing")
	_, err = x.InShard(ctx, "regcred-config")
	assert.Error(t, err, "not a shard's name")
}

// An entry satisfies a Want of the same content, or of the same shape
// whose hosts it serves with a token that lives as long; never one
// written from another address, whatever its token's life.
func TestEntrySatisfies(t *testing.T) {
	const addr = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
	exp := time.Unix(1_800_000_000, 0)
	want := func(token, source string, exp time.Time, hosts ...string) *pullsecret.Want {
		return &pullsecret.Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte(`{"auths":{"x":{"auth":"` + token + `"}}}`), ExpiresAt: exp, Source: source, Hosts: hosts}
	}
	written := want("t1", addr, exp, "a")
	e := Entry{Namespace: "app", Registry: "ecr", Version: written.Version(), Shape: written.Shape(), ExpiresAt: exp, Hosts: []string{"a"}}
	for _, tc := range []struct {
		name string
		w    *pullsecret.Want
		e    Entry
		ok   bool
	}{
		{"the same content", written, e, true},
		{"another token that lives no longer", want("t2", addr, exp, "a"), e, true},
		{"another token that lives longer", want("t2", addr, exp.Add(time.Hour), "a"), e, false},
		{"a host it does not serve", want("t2", addr, exp, "a", "b"), e, false},
		{"another address, a token as long-lived", want("t2", "222222222222.dkr.ecr.eu-west-1.amazonaws.com/team-b", exp, "a"), e, false},
		{"an entry of unknown shape, other content", want("t2", addr, exp, "a"), Entry{Version: e.Version, ExpiresAt: exp, Hosts: []string{"a"}}, false},
		{"an entry of unknown shape, the same content", written, Entry{Version: e.Version, ExpiresAt: exp, Hosts: []string{"a"}}, true},
	} {
		assert.Equal(t, tc.ok, tc.e.Satisfies(tc.w), tc.name)
	}
}

// failingShards makes the store's writes of the index fail while *fail is
// set; it counts the API calls made on Secrets.
func failingShards(t *testing.T, fail *bool, secretCalls *int) (*Store, client.Client) {
	t.Helper()
	s, inner := newStore(t)
	c := interceptor.NewClient(inner.(client.WithWatch), interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.ConfigMap); ok && *fail {
				return apierrors.NewTooManyRequests("throttled", 1)
			}
			if _, ok := obj.(*corev1.Secret); ok {
				*secretCalls++
			}
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, ok := obj.(*corev1.ConfigMap); ok && *fail {
				return apierrors.NewTooManyRequests("throttled", 1)
			}
			if _, ok := obj.(*corev1.Secret); ok {
				*secretCalls++
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	s.API = c
	return s, c
}

// A pull secret written whose index entry could not be: the overlay does
// not claim the entry, so the retry writes the entry and the syncer,
// which walks the index, keeps the secret fresh.
func TestAFailedIndexWriteIsRetried(t *testing.T) {
	fail, calls := true, 0
	s, c := failingShards(t, &fail, &calls)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.Error(t, err, "the index entry could not be written")
	getSecret(t, c, "app", "regcred-hub") // the Secret was
	_, known := s.Index.Lookup(ctx, "app", "hub", false)
	assert.False(t, known, "the index does not know of it")

	fail = false
	out, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out, "written again, and recorded this time")
	fresh := NewIndex(c, "regcred")
	e, known := fresh.Lookup(ctx, "app", "hub", false)
	require.True(t, known, "the shard holds the entry")
	assert.Equal(t, getSecret(t, c, "app", "regcred-hub").UID, e.UID)
}

// A Secret the index knows is rewritten with one API call (a patch), not
// a create that fails first: the hourly resync rewrites every pull secret
// within the syncer's write budget of one call per token.
func TestRestoreOfAKnownSecretIsOnePatch(t *testing.T) {
	fail, calls := false, 0
	s, c := failingShards(t, &fail, &calls)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	calls = 0
	out, err := s.Restore(ctx, "app", want(`{"auths":{}}`))
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	assert.Equal(t, 1, calls, "one patch")

	// Deleted by someone else: the patch finds nothing, a create follows.
	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	calls = 0
	out, err = s.Restore(ctx, "app", want(`{"auths":{}}`))
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	assert.Equal(t, 2, calls)
	e, _ := s.Index.Lookup(ctx, "app", "hub", false)
	assert.Equal(t, getSecret(t, c, "app", "regcred-hub").UID, e.UID)
}

// The chart's ValidatingAdmissionPolicy refuses the delete of a Secret
// that is not regcred's any more, or in a namespace excluded since: the
// API server answers 422 Invalid (its validations set no reason). The
// entry is forgotten, the Secret left, and the caller told it stays.
func TestDeleteRefusedByThePolicyForgetsTheEntry(t *testing.T) {
	s, inner := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	e, _ := s.Index.Lookup(ctx, "app", "hub", false)
	s.API = interceptor.NewClient(inner.(client.WithWatch), interceptor.Funcs{
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			// As kube-apiserver v1.37.2 answers.
			return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 422, Reason: metav1.StatusReasonInvalid,
				Message: `secrets "regcred-hub" is forbidden: ValidatingAdmissionPolicy 'regcred-pull-secrets' with binding 'regcred-pull-secrets' denied request: regcred updates and deletes only Secrets that were already its own`}}
		},
	})
	err = s.Delete(ctx, e, "regcred-hub")
	require.ErrorIs(t, err, ErrLeftInPlace)
	_, known := s.Index.Lookup(ctx, "app", "hub", false)
	assert.False(t, known, "forgotten: no sweep tries again")
	getSecret(t, inner, "app", "regcred-hub")

	// Any other refusal is an error, and the entry stays to be retried.
	_, err = s.Apply(ctx, "other", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	e, _ = s.Index.Lookup(ctx, "other", "hub", false)
	s.API = interceptor.NewClient(inner.(client.WithWatch), interceptor.Funcs{
		Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
			return apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "regcred-hub", nil)
		},
	})
	err = s.Delete(ctx, e, "regcred-hub")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrLeftInPlace)
	_, known = s.Index.Lookup(ctx, "other", "hub", false)
	assert.True(t, known)
}

// A pull secret an admission named and nothing could write yet is
// recorded as pending: the index, which the leader's sweeps walk, knows
// it should exist. Writing it then creates it at once, and an entry the
// index has already is never replaced by a pending one.
func TestPendingEntries(t *testing.T) {
	fail, calls := false, 0
	s, c := failingShards(t, &fail, &calls)
	ctx := t.Context()
	glob := Entry{Namespace: "app", Registry: "ecr", Hosts: []string{"1.dkr.ecr.eu-west-1.amazonaws.com"}}
	require.NoError(t, s.Pending(ctx, glob))
	e, known := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	require.True(t, known, "in the shard")
	assert.True(t, e.Pending())
	assert.Equal(t, glob.Hosts, e.Hosts, "with the hosts it must serve")
	assert.Empty(t, e.UID)

	w := &pullsecret.Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte(`{"auths":{}}`), Hosts: glob.Hosts}
	assert.False(t, e.Satisfies(w))
	out, err := s.Apply(ctx, "app", w, true)
	require.NoError(t, err)
	assert.Equal(t, WouldCreate, out)
	calls = 0
	out, err = s.Apply(ctx, "app", w, false)
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	assert.Equal(t, 1, calls, "a create, no patch of a Secret that is not there first")
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.False(t, e.Pending())
	assert.Equal(t, getSecret(t, c, "app", "regcred-ecr").UID, e.UID)

	// Known already, serving the hosts asked for: left as it is.
	uid := e.UID
	require.NoError(t, s.Pending(ctx, Entry{Namespace: "app", Registry: "ecr", Hosts: glob.Hosts}))
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.False(t, e.Pending())

	// Known, and a host it does not serve yet: pending, with the hosts
	// given and its UID, so that the sweep writes it again serving them.
	more := []string{"1.dkr.ecr.eu-west-1.amazonaws.com", "1.dkr.ecr.us-east-1.amazonaws.com"}
	require.NoError(t, s.Pending(ctx, Entry{Namespace: "app", Registry: "ecr", Hosts: more}))
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.True(t, e.Pending())
	assert.Equal(t, more, e.Hosts)
	assert.Equal(t, uid, e.UID, "deletes stay bound to the Secret regcred made")
	w = &pullsecret.Want{Name: "regcred-ecr", Registry: "ecr", Data: []byte(`{"auths":{"more":{}}}`), Hosts: more}
	out, err = s.Apply(ctx, "app", w, false)
	require.NoError(t, err)
	assert.Equal(t, Updated, out)
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.False(t, e.Pending())
	assert.Equal(t, uid, e.UID)

	// A restore of a pending entry creates too.
	require.NoError(t, s.Pending(ctx, Entry{Namespace: "app", Registry: "hub"}))
	calls = 0
	out, err = s.Restore(ctx, "app", want(`{"auths":{}}`))
	require.NoError(t, err)
	assert.Equal(t, Created, out)
	assert.Equal(t, 1, calls)

	// Stale records pending an entry that serves the hosts asked for: what
	// it says of its Secret no longer holds. It keeps the UID and hosts.
	e, _ = NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	require.False(t, e.Pending())
	require.NoError(t, s.Stale(ctx, Entry{Namespace: "app", Registry: "ecr"}))
	stale, _ := NewIndex(c, "regcred").Lookup(ctx, "app", "ecr", false)
	assert.True(t, stale.Pending())
	assert.Equal(t, e.UID, stale.UID)
	assert.Equal(t, e.Hosts, stale.Hosts)

	// An entry that cannot be recorded is an error.
	fail = true
	assert.Error(t, s.Pending(ctx, Entry{Namespace: "other", Registry: "hub"}))
	_, known = s.Index.Lookup(ctx, "other", "hub", false)
	assert.False(t, known)
}

// A delete the leader decided on, of a Secret another replica made again
// meanwhile (a config it read later says the registry serves the
// namespace): the delete, bound to the old UID, leaves the new Secret,
// and the index keeps the new Secret's entry, for the sweeps to decide on
// again.
func TestDeleteKeepsTheEntryOfASecretMadeAgain(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	old, _ := s.Index.Lookup(ctx, "app", "hub", false)

	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	other := &Store{API: c, Index: NewIndex(c, "regcred")}
	out, err := other.Restore(ctx, "app", want(`{"auths":{}}`))
	require.NoError(t, err)
	require.Equal(t, Created, out)
	made := getSecret(t, c, "app", "regcred-hub").UID
	require.NotEqual(t, old.UID, made)

	require.NoError(t, s.Delete(ctx, old, "regcred-hub"))
	getSecret(t, c, "app", "regcred-hub") // still there
	e, known := NewIndex(c, "regcred").Lookup(ctx, "app", "hub", false)
	require.True(t, known, "the new Secret's entry stays")
	assert.Equal(t, made, e.UID)
	e, known = s.Index.Lookup(ctx, "app", "hub", false)
	assert.True(t, known, "and this replica sees it")
	assert.Equal(t, made, e.UID)

	// The entry of the Secret deleted goes.
	require.NoError(t, s.Delete(ctx, e, "regcred-hub"))
	_, known = NewIndex(c, "regcred").Lookup(ctx, "app", "hub", false)
	assert.False(t, known)
}

// A delete bound to an old UID, where the index still records that UID
// but regcred's Secret of the name is another (made again and recorded by
// a write that then lost to a stale one): that Secret is deleted, bound
// to its own UID, with its entry, rather than left with regcred's
// credentials for good. If whose it is cannot be told (the API server
// throttles), the entry stays for the next sweep. Someone else's Secret of
// the name is left, and its entry forgotten.
func TestDeleteRebindsTheEntryOfARegcredSecretItDoesNotRecord(t *testing.T) {
	s, c := newStore(t)
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	stale, _ := s.Index.Lookup(ctx, "app", "hub", false)
	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	require.NoError(t, c.Create(ctx, want(`{"auths":{}}`).Secret("app")))
	require.NotEqual(t, stale.UID, getSecret(t, c, "app", "regcred-hub").UID)

	live := s.API
	s.API = interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, _ client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			o := &client.PatchOptions{}
			o.ApplyOptions(opts)
			if len(o.DryRun) > 0 {
				return apierrors.NewTooManyRequests("throttled", 1)
			}
			return live.Patch(ctx, obj, patch, opts...)
		},
	})
	require.Error(t, s.Delete(ctx, stale, "regcred-hub"))
	_, known := NewIndex(c, "regcred").Lookup(ctx, "app", "hub", false)
	require.True(t, known, "kept for the next sweep")
	s.API = live

	require.NoError(t, s.Delete(ctx, stale, "regcred-hub"))
	err = c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "regcred-hub"}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "regcred's Secret of the name is deleted")
	_, known = NewIndex(c, "regcred").Lookup(ctx, "app", "hub", false)
	assert.False(t, known, "with its entry")

	// Someone else's Secret of the name: left, and the entry forgotten.
	_, err = s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	stale, _ = s.Index.Lookup(ctx, "app", "hub", false)
	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	theirs := want(`{"auths":{}}`).Secret("app")
	theirs.Labels = nil
	require.NoError(t, c.Create(ctx, theirs))
	require.NoError(t, s.Delete(ctx, stale, "regcred-hub"))
	getSecret(t, c, "app", "regcred-hub")
	_, known = NewIndex(c, "regcred").Lookup(ctx, "app", "hub", false)
	assert.False(t, known)
}

// A delete bound to a Secret made again meanwhile keeps, with the new
// Secret's entry, this replica's rewrite of it waiting for a batch.
func TestDeleteKeepsAWaitingRewriteOfTheSecretMadeAgain(t *testing.T) {
	s, c := newStore(t)
	s.Batch = time.Hour // flushed below
	ctx := t.Context()
	_, err := s.Apply(ctx, "app", want(`{"auths":{}}`), false)
	require.NoError(t, err)
	old, _ := s.Index.Lookup(ctx, "app", "hub", false)
	require.NoError(t, c.Delete(ctx, getSecret(t, c, "app", "regcred-hub")))
	_, err = (&Store{API: c, Index: NewIndex(c, "regcred")}).Restore(ctx, "app", want(`{"auths":{}}`))
	require.NoError(t, err)
	made := getSecret(t, c, "app", "regcred-hub").UID

	// This replica rewrites it in place (its entry waits for a batch)...
	out, err := s.Apply(ctx, "app", want(`{"auths":{"x":{}}}`), false)
	require.NoError(t, err)
	require.Equal(t, Updated, out)
	// ...and the leader's delete of the old Secret comes.
	require.NoError(t, s.Delete(ctx, old, "regcred-hub"))
	require.NoError(t, s.Flush(ctx))
	e, known := NewIndex(c, "regcred").Lookup(ctx, "app", "hub", false)
	require.True(t, known)
	assert.Equal(t, made, e.UID)
	assert.Equal(t, want(`{"auths":{"x":{}}}`).Version(), e.Version, "the rewrite is recorded")
}
