package upkeep

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

func mendSet(t *testing.T) *registries.Set {
	t.Helper()
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: q, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
- {name: scoped, type: other, url: x.io, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}}}
- {name: mine, type: other, url: y.io, pullSecret: {mode: image-pull-secret, name: mine}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

var testExclusions = plan.Exclusions{"kube-system": true, "regcred": true}

func startMender(t *testing.T, store *memStore, ns Namespaces, o MendOptions) *Mender {
	t.Helper()
	set := mendSet(t)
	m := NewMender(func() *registries.Set { return set }, store, store, ns, testExclusions, newCounts(), o)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

var fast = MendOptions{BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, RestoreDelay: time.Millisecond}

func TestMenderRetriesUntilTheSecretIsMade(t *testing.T) {
	s := newMemStore()
	s.failures["a/q"], s.err = 3, errUnavailable
	m := startMender(t, s, nsLabels{"a": {}}, fast)
	m.Retry("a", "regcred-q")
	require.Eventually(t, func() bool { return s.count(s.writes, "a/q") == 4 }, 5*time.Second, time.Millisecond, "three failures, then a success")
	_, ok := s.get("a/q")
	assert.True(t, ok)
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 4, s.count(s.writes, "a/q"), "no try after success")
}

func TestMenderGivesUp(t *testing.T) {
	s := newMemStore()
	s.failures["b/q"], s.err = 100, errUnavailable
	m := startMender(t, s, nsLabels{"b": {}}, MendOptions{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	m.Retry("b", "regcred-q")
	require.Eventually(t, func() bool { return s.count(s.writes, "b/q") == 3 }, 5*time.Second, time.Millisecond, "three tries in all")
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 3, s.count(s.writes, "b/q"), "then it gives up; the next admission tries again")
}

func TestMenderDecidesAgainWithThePlan(t *testing.T) {
	s := newMemStore()
	m := startMender(t, s, nsLabels{"a": {"team": "a"}, "b": {"team": "b"}}, fast)
	m.Retry("a", "regcred-scoped")           // served: written
	m.Retry("b", "regcred-scoped")           // no longer served there: nothing
	m.Retry("kube-system", "regcred-q")      // excluded, whatever asked: nothing
	m.Retry("gone", "regcred-q")             // the namespace is gone: nothing
	m.Retry("a", "regcred-mine")             // the admin's own secret: regcred writes none
	m.Retry("a", "regcred-removed-registry") // not in the config: nothing
	require.Eventually(t, func() bool { _, ok := s.get("a/scoped"); return ok }, time.Second, time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	for _, k := range []string{"b/scoped", "kube-system/q", "gone/q", "a/mine", "a/removed-registry"} {
		assert.Zero(t, s.count(s.writes, k), k)
	}
}

func TestMenderRestores(t *testing.T) {
	s := newMemStore()
	m := startMender(t, s, nsLabels{"a": {}}, fast)
	m.Restore("a", "regcred-q")
	require.Eventually(t, func() bool { return s.count(s.restores, "a/q") == 1 }, time.Second, time.Millisecond)
	assert.Zero(t, s.count(s.writes, "a/q"), "a restore writes whatever the index says")
}

func TestMenderForgetsWhatCannotBeWritten(t *testing.T) {
	s := newMemStore()
	s.failures["a/q"] = 1
	s.err = apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "regcred-q", errBeingTerminated)
	s.entries["a/q"] = secretstore.Entry{Namespace: "a", Registry: "q"} // an index entry to forget
	m := startMender(t, s, nsLabels{"a": {}}, fast)
	m.Restore("a", "regcred-q")
	require.Eventually(t, func() bool { return s.count(s.restores, "a/q") == 1 }, time.Second, time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 1, s.count(s.restores, "a/q"), "the namespace is being deleted: no retry")
	_, ok := s.Lookup(t.Context(), "a", "q", false)
	assert.False(t, ok)
}

func TestMenderCoalescesConcurrentRequests(t *testing.T) {
	s := newMemStore()
	set := mendSet(t)
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"e": {}}, testExclusions, newCounts(),
		MendOptions{BaseDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { m.Retry("e", "regcred-q") })
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return s.count(s.writes, "e/q") >= 1 }, time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, s.count(s.writes, "e/q"), "fifty admissions asking for one secret make one write")
}
