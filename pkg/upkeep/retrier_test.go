package upkeep

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
)

// flakyEnsurer fails each namespace's first failures[ns] attempts.
type flakyEnsurer struct {
	mu       sync.Mutex
	failures map[string]int
	err      error
	calls    map[string]int
}

func (f *flakyEnsurer) Ensure(_ context.Context, ns string, w *pullsecret.Want, _ bool) (pullsecret.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[ns+"/"+w.Name]++
	if f.failures[ns] > 0 {
		f.failures[ns]--
		return "", f.err
	}
	return pullsecret.Created, nil
}

func (f *flakyEnsurer) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func retrySet(t *testing.T) *registries.Set {
	t.Helper()
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: q, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
- {name: mine, type: other, url: x.io, pullSecret: {mode: image-pull-secret, name: mine}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

func startRetrier(t *testing.T, r *Retrier) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestRetrierRetriesUntilTheSecretIsMade(t *testing.T) {
	set := retrySet(t)
	e := &flakyEnsurer{failures: map[string]int{"a": 3}, err: errors.New("API: ServiceUnavailable"), calls: map[string]int{}}
	m := &counts{ensured: map[string]int{}, deleted: map[string]int{}}
	r := NewRetrier(func() *registries.Set { return set }, e, m, RetryOptions{MaxAttempts: 8, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	startRetrier(t, r)

	r.Retry("a", "q")
	require.Eventually(t, func() bool { return e.count("a/regcred-q") == 4 }, 5*time.Second, time.Millisecond, "three failures, then a success")
	require.Eventually(t, func() bool { return r.queue.Len() == 0 && r.queue.NumRequeues(retryKey{"a", "q"}) == 0 }, time.Second, time.Millisecond, "forgotten once made")
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 4, e.count("a/regcred-q"), "no try after success")
}

func TestRetrierGivesUp(t *testing.T) {
	set := retrySet(t)
	e := &flakyEnsurer{failures: map[string]int{"b": 100}, err: errors.New("boom"), calls: map[string]int{}}
	r := NewRetrier(func() *registries.Set { return set }, e, &counts{ensured: map[string]int{}}, RetryOptions{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	startRetrier(t, r)
	r.Retry("b", "q")
	require.Eventually(t, func() bool { return e.count("b/regcred-q") == 3 }, 5*time.Second, time.Millisecond, "three tries in all")
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 3, e.count("b/regcred-q"), "then it gives up; the next admission tries again")
}

func TestRetrierDropsWhatNoLongerApplies(t *testing.T) {
	set := retrySet(t)
	gone := apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "c")
	e := &flakyEnsurer{failures: map[string]int{"c": 100}, err: gone, calls: map[string]int{}}
	r := NewRetrier(func() *registries.Set { return set }, e, &counts{ensured: map[string]int{}}, RetryOptions{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	startRetrier(t, r)
	r.Retry("c", "q")       // the namespace is gone: one try
	r.Retry("d", "mine")    // the admin's own secret: regcred writes none
	r.Retry("d", "removed") // no longer in the config
	require.Eventually(t, func() bool { return e.count("c/regcred-q") == 1 }, time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, e.count("c/regcred-q"))
	assert.Zero(t, e.count("d/mine"))
}

func TestRetrierCoalescesConcurrentRequests(t *testing.T) {
	set := retrySet(t)
	e := &flakyEnsurer{failures: map[string]int{}, calls: map[string]int{}}
	r := NewRetrier(func() *registries.Set { return set }, e, &counts{ensured: map[string]int{}}, RetryOptions{BaseDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { r.Retry("e", "q") })
	}
	wg.Wait()
	startRetrier(t, r)
	require.Eventually(t, func() bool { return e.count("e/regcred-q") >= 1 }, time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, e.count("e/regcred-q"), "fifty admissions asking for one secret make one try")
}
