package status

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/regcred/regcred/pkg/check"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/registries"
)

// hubSet is a config of one registry.
func hubSet(t *testing.T) *registries.Set {
	t.Helper()
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

// Each term of leadership writes the status at once, though this replica
// wrote the same report before: meanwhile another leader, or someone, may
// have changed or deleted the ConfigMap.
func TestReporterWritesAtEachTerm(t *testing.T) {
	set := hubSet(t)
	c := fake.NewClientBuilder().Build()
	r := NewReporter(&Reporter{Client: c, Namespace: "regcred", Name: "regcred-status", Cluster: "dev",
		Registries: func() *registries.Set { return set }, Config: func() configwatch.Status { return configwatch.Status{} },
		RefreshInterval: time.Hour})
	key := client.ObjectKey{Namespace: "regcred", Name: "regcred-status"}
	term := func() {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Start(ctx) }()
		require.Eventually(t, func() bool { return c.Get(t.Context(), key, &corev1.ConfigMap{}) == nil }, 5*time.Second, time.Millisecond)
		cancel()
		<-done
	}
	term()
	// Deleted while another replica leads.
	require.NoError(t, c.Delete(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "regcred", Name: "regcred-status"}}))
	require.True(t, apierrors.IsNotFound(c.Get(t.Context(), key, &corev1.ConfigMap{})))
	term()
}

// loginGauges is the login gauge per registry, as the metrics keep it.
type loginGauges struct {
	mu sync.Mutex
	ok map[string]bool
}

func (g *loginGauges) LoginChecked(r string, ok bool) { g.mu.Lock(); g.ok[r] = ok; g.mu.Unlock() }
func (g *loginGauges) LoginCheckForgotten(r string)   { g.mu.Lock(); delete(g.ok, r); g.mu.Unlock() }
func (g *loginGauges) get() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.ok)
}

// A registry that leaves the config, or whose check is skipped, no longer
// has a login result; nor has any once the term ends (another replica
// leads and checks): a frozen 0 would keep an alert firing, a frozen 1
// would hide the new leader's 0.
func TestReporterForgetsLoginResultsItNoLongerKeeps(t *testing.T) {
	load := func(body string) *registries.Set {
		set, err := registries.Load(t.Context(), []byte("apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n"+body), registries.Options{StoredIn: config.InSecret})
		require.NoError(t, err)
		return set
	}
	var current atomic.Pointer[registries.Set]
	current.Store(load(`- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
- {name: quay, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
- {name: skipped, type: other, url: reg.example.com, username: {value: u}, password: {value: p}}
`))
	var skip atomic.Bool
	g := &loginGauges{ok: map[string]bool{}}
	r := NewReporter(&Reporter{Client: fake.NewClientBuilder().Build(), Namespace: "regcred", Name: "regcred-status",
		Registries: current.Load, Config: func() configwatch.Status { return configwatch.Status{} },
		CheckInterval: time.Hour, RefreshInterval: time.Hour, Metrics: g,
		Check: func(_ context.Context, reg *registries.Registry) check.Result {
			return check.Result{Registry: reg.Name, OK: reg.Name != "quay", Skipped: reg.Name == "skipped" && skip.Load(), Time: time.Now()}
		}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return len(g.get()) == 3 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, map[string]bool{"hub": true, "quay": false, "skipped": true}, g.get())

	// quay leaves the config, and skipped's check is skipped.
	skip.Store(true)
	current.Store(load(`- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
- {name: skipped, type: other, url: reg.example.com, username: {value: u}, password: {value: p}}
`))
	r.Wake()
	require.Eventually(t, func() bool { return len(g.get()) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, map[string]bool{"hub": true}, g.get())

	// The term ends.
	cancel()
	<-done
	assert.Empty(t, g.get(), "a replica that no longer leads reports no login result")
}

// The status is written before the login checks run, and again after: a
// rejected config shows at once, not after every registry's check (up to
// 45 s each, four at a time).
func TestReporterWritesBeforeTheChecks(t *testing.T) {
	set := hubSet(t)
	c := fake.NewClientBuilder().Build()
	release := make(chan struct{})
	r := NewReporter(&Reporter{Client: c, Namespace: "regcred", Name: "regcred-status",
		Registries: func() *registries.Set { return set }, Config: func() configwatch.Status { return configwatch.Status{} },
		CheckInterval: time.Hour, RefreshInterval: time.Hour, Metrics: &loginGauges{ok: map[string]bool{}},
		Check: func(ctx context.Context, reg *registries.Registry) check.Result {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return check.Result{Registry: reg.Name, OK: true, Time: time.Now()}
		}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	key := client.ObjectKey{Namespace: "regcred", Name: "regcred-status"}
	var cm corev1.ConfigMap
	require.Eventually(t, func() bool { return c.Get(t.Context(), key, &cm) == nil }, 5*time.Second, time.Millisecond,
		"written while the checks still run")
	first := cm.Data[Key]
	close(release)
	require.Eventually(t, func() bool {
		return c.Get(t.Context(), key, &cm) == nil && cm.Data[Key] != first
	}, 5*time.Second, time.Millisecond, "and again with their results")
}

// A rejected config is written at once, without logging in to every
// registry again: the loader retries a config it cannot read, and each
// retry is a rejection, which must not cost a round of logins (a password
// that fails would lock some accounts out). A term that ends during a
// round counts none of its checks, cut short, as failed.
func TestReporterRejectionWritesWithoutLoggingIn(t *testing.T) {
	set := hubSet(t)
	c := fake.NewClientBuilder().Build()
	var logins atomic.Int32
	block := make(chan struct{})
	var blocking atomic.Bool
	g := &loginGauges{ok: map[string]bool{}}
	var rejected atomic.Int32
	r := NewReporter(&Reporter{Client: c, Namespace: "regcred", Name: "regcred-status",
		Registries: func() *registries.Set { return set },
		Config: func() configwatch.Status {
			if n := rejected.Load(); n > 0 {
				return configwatch.Status{Attempted: true, LastError: fmt.Errorf("rejection %d", n), RejectedVersion: fmt.Sprint(n)}
			}
			return configwatch.Status{}
		},
		CheckInterval: time.Hour, RefreshInterval: time.Hour, Metrics: g,
		Check: func(ctx context.Context, reg *registries.Registry) check.Result {
			logins.Add(1)
			if blocking.Load() {
				select {
				case <-block:
				case <-ctx.Done():
				}
				return check.Result{Registry: reg.Name, OK: false, Message: ctx.Err().Error(), Time: time.Now()}
			}
			return check.Result{Registry: reg.Name, OK: true, Time: time.Now()}
		}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	require.Eventually(t, func() bool { return len(g.get()) == 1 }, 5*time.Second, time.Millisecond)
	key := client.ObjectKey{Namespace: "regcred", Name: "regcred-status"}
	for i := 1; i <= 5; i++ {
		rejected.Store(int32(i))
		r.WakeToWrite()
		want := fmt.Sprintf("rejection %d", i)
		require.Eventually(t, func() bool {
			var cm corev1.ConfigMap
			return c.Get(t.Context(), key, &cm) == nil && strings.Contains(cm.Data[Key], want)
		}, 5*time.Second, time.Millisecond)
	}
	assert.EqualValues(t, 1, logins.Load(), "one round of logins, at the start")

	// A config loaded checks again; the term ends during that round.
	blocking.Store(true)
	r.Wake()
	require.Eventually(t, func() bool { return logins.Load() == 2 }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	r.mu.Lock()
	res := r.results["hub"]
	r.mu.Unlock()
	assert.True(t, res.OK, "the round cut short is not kept as a failure")
}
