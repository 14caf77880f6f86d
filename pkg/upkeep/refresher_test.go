package upkeep

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
)

// fakeToken is an expiring credential source driven by a fake clock: a
// refresh is due at refreshAt; each one moves it a life ahead.
type fakeToken struct {
	id    string
	clock *clocktesting.FakeClock
	life  time.Duration
	fail  atomic.Bool

	mu        sync.Mutex
	refreshAt time.Time
	expiry    time.Time
	refreshes int
	// looks counts the refresher's looks (Refresh called, due or not).
	looks int
}

func (f *fakeToken) ID() string { return f.id }
func (f *fakeToken) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{Username: "AWS", Password: "t", ExpiresAt: f.Expiry()}, nil
}
func (f *fakeToken) RefreshAt() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.refreshAt }
func (f *fakeToken) Expiry() time.Time    { f.mu.Lock(); defer f.mu.Unlock(); return f.expiry }
func (f *fakeToken) Refresh(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks++
	now := f.clock.Now()
	if now.Before(f.refreshAt) {
		return false, nil
	}
	if f.fail.Load() {
		f.refreshAt = now.Add(time.Second)
		return false, errors.New("ThrottlingException")
	}
	f.refreshes++
	f.expiry = now.Add(f.life)
	f.refreshAt = now.Add(f.life / 2)
	return true, nil
}
func (f *fakeToken) count() int  { f.mu.Lock(); defer f.mu.Unlock(); return f.refreshes }
func (f *fakeToken) looked() int { f.mu.Lock(); defer f.mu.Unlock(); return f.looks }

// renew is another caller renewing the token (an admission, past its
// refresh point): it changes without the refresher's Refresh saying so.
func (f *fakeToken) renew() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	f.expiry, f.refreshAt = now.Add(f.life), now.Add(f.life/2)
}

// startRefresher runs r until the test ends.
func startRefresher(t *testing.T, r *TokenRefresher) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A token renewed by another caller on the leader (an admission renews one
// past its refresh point) has its pull secrets rewritten as one the
// refresher renewed: the refresher, finding it not due, would otherwise
// never ask.
func TestTokenRefresherSyncsATokenRenewedByAnotherCaller(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	eu := &fakeToken{id: "eu", clock: clk, life: 12 * time.Hour, refreshAt: start.Add(6 * time.Hour), expiry: start.Add(12 * time.Hour)}
	us := &fakeToken{id: "us", clock: clk, life: 12 * time.Hour, refreshAt: start.Add(6 * time.Hour), expiry: start.Add(12 * time.Hour)}
	set := tokenSet(t, eu, us)
	var syncs atomic.Int32
	r := NewTokenRefresher(func() *registries.Set { return set }, func() { syncs.Add(1) }, newTokenMetrics())
	r.Clock, r.MaxWait = clk, time.Hour
	startRefresher(t, r)
	require.Eventually(t, clk.HasWaiters, time.Second, time.Millisecond)
	assert.Zero(t, syncs.Load(), "nothing due, nothing changed")

	clk.Step(time.Minute)
	eu.renew()
	r.Wake()
	require.Eventually(t, func() bool { return syncs.Load() == 1 }, time.Second, time.Millisecond)
	assert.Zero(t, eu.count()+us.count(), "the refresher itself called nothing")
	// A look that finds nothing changed since asks for nothing.
	looks := eu.looked()
	r.Wake()
	require.Eventually(t, func() bool { return eu.looked() > looks }, time.Second, time.Millisecond)
	require.Eventually(t, clk.HasWaiters, time.Second, time.Millisecond)
	assert.EqualValues(t, 1, syncs.Load(), "once per change")
}

// Two sources the same ID names (one access key ID, two secrets: a typo
// in one Secret, or one updated before the other) are two tokens: both are
// refreshed, each failure is its own registries'.
func TestTokenRefresherRefreshesSourcesThatShareAnID(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	first := &fakeToken{id: "access-key/eu-west-1/AKIA1", clock: clk, life: 12 * time.Hour, refreshAt: start}
	second := &fakeToken{id: "access-key/eu-west-1/AKIA1", clock: clk, life: 12 * time.Hour, refreshAt: start}
	second.fail.Store(true)
	set := tokenSet(t, first, second)
	m := newTokenMetrics()
	r := NewTokenRefresher(func() *registries.Set { return set }, func() {}, m)
	r.Clock, r.MaxWait = clk, time.Hour
	startRefresher(t, r)
	require.Eventually(t, func() bool { return first.count() == 1 }, time.Second, time.Millisecond)
	require.Eventually(t, func() bool { _, fail := m.get("c"); return fail == 1 }, time.Second, time.Millisecond, "c's own source failed")
	okC, _ := m.get("c")
	assert.Zero(t, okC, "c is not credited with a and b's refresh")
	second.fail.Store(false)
	require.Eventually(t, clk.HasWaiters, time.Second, time.Millisecond)
	clk.Step(2 * time.Second)
	r.Wake()
	require.Eventually(t, func() bool { return second.count() == 1 }, time.Second, time.Millisecond)
}

type tokenMetrics struct {
	mu       sync.Mutex
	ok, fail map[string]int
	// expiry is the expiry last reported per registry; a forgotten
	// registry has none.
	expiry map[string]time.Time
}

func newTokenMetrics() *tokenMetrics {
	return &tokenMetrics{ok: map[string]int{}, fail: map[string]int{}, expiry: map[string]time.Time{}}
}

func (m *tokenMetrics) TokenRefreshed(r string, exp time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ok[r]++
	m.expiry[r] = exp
}
func (m *tokenMetrics) TokenRefreshFailed(r string) { m.mu.Lock(); m.fail[r]++; m.mu.Unlock() }
func (m *tokenMetrics) TokenExpiryForgotten(r string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.expiry, r)
}
func (m *tokenMetrics) get(r string) (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ok[r], m.fail[r]
}
func (m *tokenMetrics) expiries() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.expiry)
}

// tokenSet builds a set of three ECR registries, two sharing a source.
func tokenSet(t *testing.T, shared, other *fakeToken) *registries.Set {
	t.Helper()
	ecrType := registrytype.ECR(nil)
	ecrType.NewProvider = func(s credentials.Spec) (credentials.Provider, error) {
		if s.Registry == "c" {
			return other, nil
		}
		return shared, nil
	}
	types, err := registrytype.NewTypes(ecrType)
	require.NoError(t, err)
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: a, type: ecr, url: 111111111111.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: b, type: ecr, url: 222222222222.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: c, type: ecr, url: 111111111111.dkr.ecr.us-east-1.amazonaws.com, ecr: {auth: iam-role}}
`), registries.Options{Types: types, StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

func TestTokenRefresherRefreshesEachSourceOnceWhenDue(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	shared := &fakeToken{id: "eu", clock: clk, life: 12 * time.Hour, refreshAt: start}
	other := &fakeToken{id: "us", clock: clk, life: 12 * time.Hour, refreshAt: start.Add(3 * time.Hour)}
	set := tokenSet(t, shared, other)
	var syncs atomic.Int32
	m := newTokenMetrics()
	r := NewTokenRefresher(func() *registries.Set { return set }, func() { syncs.Add(1) }, m)
	r.Clock, r.MaxWait = clk, time.Hour

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The shared source is due at once: one refresh serves a and b.
	require.Eventually(t, func() bool { return shared.count() == 1 }, time.Second, time.Millisecond)
	assert.Equal(t, 0, other.count(), "not due yet")
	require.Eventually(t, func() bool { return syncs.Load() == 1 }, time.Second, time.Millisecond)
	okA, _ := m.get("a")
	okB, _ := m.get("b")
	assert.Equal(t, 1, okA)
	assert.Equal(t, 1, okB)

	// The refresher sleeps at most MaxWait, and wakes for each due time.
	for i := 0; i < 3; i++ {
		require.Eventually(t, clk.HasWaiters, time.Second, time.Millisecond)
		clk.Step(time.Hour)
	}
	require.Eventually(t, func() bool { return other.count() == 1 }, time.Second, time.Millisecond, "us refreshed at its due time")
	assert.Equal(t, 1, shared.count(), "eu is not due until half its life")

	// Failures are counted per registry, and back off as the source says.
	shared.fail.Store(true)
	for i := 0; i < 3; i++ {
		require.Eventually(t, clk.HasWaiters, time.Second, time.Millisecond)
		clk.Step(time.Hour)
	}
	// Both registries' failures are recorded, one after the other.
	require.Eventually(t, func() bool {
		_, failA := m.get("a")
		_, failB := m.get("b")
		return failA >= 1 && failB >= 1
	}, time.Second, time.Millisecond)
	assert.Equal(t, 1, shared.count())

	// A wake (the config changed) makes it look at once.
	shared.fail.Store(false)
	require.Eventually(t, clk.HasWaiters, time.Second, time.Millisecond)
	clk.Step(time.Second)
	r.Wake()
	require.Eventually(t, func() bool { return shared.count() == 2 }, time.Second, time.Millisecond)
}

func TestTokenRefresherIgnoresStaticAndUnmanagedRegistries(t *testing.T) {
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: q, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	r := NewTokenRefresher(func() *registries.Set { return set }, func() { t.Fatal("nothing to sync") }, newTokenMetrics())
	clk := clocktesting.NewFakeClock(time.Now())
	r.Clock, r.MaxWait = clk, time.Minute
	assert.Equal(t, clk.Now().Add(time.Minute), r.refreshDue(t.Context()), "with no token, it looks again after MaxWait")
}

// fakeGlob is a glob ECR registry's provider: a token source per region.
type fakeGlob struct{ sources []credentials.Expiring }

func (g *fakeGlob) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{}, errors.New("per host")
}
func (g *fakeGlob) ForHost(string) (string, credentials.Provider, error) {
	return "", nil, errors.New("not used")
}
func (g *fakeGlob) PatternOf(string) (string, error) { return "", errors.New("not used") }
func (g *fakeGlob) Sources() []credentials.Expiring  { return g.sources }

// ecrSet loads the ECR registries of body; providers gives each
// registry's provider by name.
func ecrSet(t *testing.T, body string, providers map[string]credentials.Provider) *registries.Set {
	t.Helper()
	ecrType := registrytype.ECR(nil)
	ecrType.NewProvider = func(s credentials.Spec) (credentials.Provider, error) { return providers[s.Registry], nil }
	types, err := registrytype.NewTypes(ecrType)
	require.NoError(t, err)
	set, err := registries.Load(t.Context(), []byte("apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n"+body),
		registries.Options{Types: types, StoredIn: config.InSecret})
	require.NoError(t, err)
	return set
}

// A glob registry's expiry is its earliest region's: a region whose
// refreshes fail shows, however often the others refresh.
func TestTokenRefresherReportsARegistrysEarliestExpiry(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	eu := &fakeToken{id: "eu", clock: clk, life: 12 * time.Hour, refreshAt: start}
	// us refreshed an hour ago and fails since.
	us := &fakeToken{id: "us", clock: clk, life: 12 * time.Hour, refreshAt: start, expiry: start.Add(11 * time.Hour)}
	us.fail.Store(true)
	set := ecrSet(t, "- {name: g, type: ecr, url: '*.dkr.ecr.*.amazonaws.com', ecr: {auth: iam-role}}\n",
		map[string]credentials.Provider{"g": &fakeGlob{sources: []credentials.Expiring{eu, us}}})
	m := newTokenMetrics()
	r := NewTokenRefresher(func() *registries.Set { return set }, func() {}, m)
	r.Clock = clk
	r.refreshDue(t.Context())
	require.Equal(t, 1, eu.count())
	assert.Equal(t, map[string]time.Time{"g": start.Add(11 * time.Hour)}, m.expiries(), "us's expiry, not eu's new one")
	_, failed := m.get("g")
	assert.Equal(t, 1, failed)
}

// A registry that leaves the config, or stops minting tokens, no longer
// has an expiry; nor has any once the term ends (another replica
// leads, and reports its own).
func TestTokenRefresherForgetsExpiriesItNoLongerKeeps(t *testing.T) {
	start := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	a := &fakeToken{id: "a", clock: clk, life: 12 * time.Hour, refreshAt: start}
	b := &fakeToken{id: "b", clock: clk, life: 12 * time.Hour, refreshAt: start}
	both := ecrSet(t, `- {name: a, type: ecr, url: 111111111111.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: b, type: ecr, url: 222222222222.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
`, map[string]credentials.Provider{"a": a, "b": b})
	onlyA := ecrSet(t, "- {name: a, type: ecr, url: 111111111111.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}\n",
		map[string]credentials.Provider{"a": a})
	var current atomic.Pointer[registries.Set]
	current.Store(both)
	m := newTokenMetrics()
	r := NewTokenRefresher(current.Load, func() {}, m)
	r.Clock, r.MaxWait = clk, time.Hour

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return len(m.expiries()) == 2 }, time.Second, time.Millisecond)

	// b leaves the config.
	current.Store(onlyA)
	r.Wake()
	require.Eventually(t, func() bool { _, ok := m.expiries()["b"]; return !ok }, time.Second, time.Millisecond)
	assert.Contains(t, m.expiries(), "a")

	// The term ends.
	cancel()
	<-done
	assert.Empty(t, m.expiries(), "a replica that no longer leads reports no expiry")
}
