package upkeep

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
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

// globECRSet loads a config with a glob ECR registry, ecr, whose tokens a
// fake ECR mints (refusing while down is set), and a quay registry, q.
func globECRSet(t *testing.T, down *atomic.Bool) *registries.Set {
	t.Helper()
	minter := ecr.NewMinter(ecr.Options{BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		NewAPI: func(_ context.Context, k ecr.Key, _ ecr.AccessKey) (ecr.TokenAPI, error) {
			return ecrAPI{region: k.Region, down: down}, nil
		}})
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: q, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
- {name: ecr, type: ecr, url: '*.dkr.ecr.*.amazonaws.com', ecr: {auth: iam-role}}
`), registries.Options{StoredIn: config.InSecret, Types: registrytype.Builtin(registrytype.Deps{ECR: minter})})
	require.NoError(t, err)
	return set
}

var testExclusions = plan.Exclusions{"kube-system": true, "regcred": true}

func startMender(t *testing.T, store *memStore, ns Namespaces, o MendOptions) *Mender {
	t.Helper()
	set := mendSet(t)
	m := NewMender(func() *registries.Set { return set }, store, store, ns, testExclusions, newCounts(), o)
	run(t, m)
	return m
}

// run starts m until the test ends; the returned func stops it at once
// and waits for it.
func run(t *testing.T, m *Mender) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Start(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

var fast = MendOptions{BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, RestoreDelay: time.Millisecond}

func TestMenderRetriesUntilTheSecretIsMade(t *testing.T) {
	s := newMemStore()
	s.failures["a/q"], s.err = 3, errUnavailable
	m := startMender(t, s, nsLabels{"a": {}}, fast)
	m.Retry("a", "regcred-q", nil)
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
	m.Retry("b", "regcred-q", nil)
	require.Eventually(t, func() bool { return s.count(s.writes, "b/q") == 3 }, 5*time.Second, time.Millisecond, "three tries in all")
	time.Sleep(30 * time.Millisecond)
	assert.Equal(t, 3, s.count(s.writes, "b/q"), "then it gives up; the next admission tries again")
}

// A pull secret the mender could not write is handed to the leader's
// sweeps through the index, at its first failure: whether the mender
// gives up or its replica stops, a later sweep writes it.
func TestMenderHandsWhatItCannotWriteToTheSweeps(t *testing.T) {
	s := newMemStore()
	s.failures["b/q"], s.err = 100, errUnavailable
	m := startMender(t, s, nsLabels{"b": {}}, MendOptions{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	m.Retry("b", "regcred-q", nil)
	require.Eventually(t, func() bool { return s.count(s.writes, "b/q") == 3 }, 5*time.Second, time.Millisecond)
	e, ok := s.Lookup(t.Context(), "b", "q", false)
	require.True(t, ok, "the index knows it should exist")
	assert.True(t, e.Pending())

	// The API answers again: the leader's next sweep writes it.
	s.mu.Lock()
	s.failures["b/q"] = 0
	s.mu.Unlock()
	set := mendSet(t)
	sy := &Syncer{Registries: func() *registries.Set { return set }, HasConfig: func() bool { return true }, Index: s, Store: s,
		Metrics: newCounts(), Namespaces: nsLabels{"b": {}}, Exclusions: testExclusions, WriteQPS: 1000, WriteBurst: 1000}
	startSyncer(t, sy)
	require.Eventually(t, func() bool { _, ok := s.get("b/q"); return ok }, 5*time.Second, time.Millisecond)
	e, _ = s.Lookup(t.Context(), "b", "q", false)
	assert.False(t, e.Pending())

	// A restore the mender cannot make is recorded pending, though the
	// entry is as the index wants it: someone deleted or changed the
	// secret it records, and until it is written again the index must not
	// answer admissions that it is as it should be.
	s.mu.Lock()
	s.failures["b/q"] = 100
	s.mu.Unlock()
	m.Restore("b", "regcred-q")
	require.Eventually(t, func() bool { return s.count(s.restores, "b/q") >= 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { e, _ := s.Lookup(t.Context(), "b", "q", false); return e.Pending() }, 5*time.Second, time.Millisecond)
}

// A glob ECR registry's pull secret someone deleted is restored serving
// the hosts its index entry records: a restore carries none itself.
func TestMenderRestoresAGlobECRSecret(t *testing.T) {
	set := globECRSet(t, &atomic.Bool{})
	s := newMemStore()
	const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	w, err := set.Get("ecr").Want(t.Context(), registries.Need{Hosts: []string{host}})
	require.NoError(t, err)
	_, err = s.Apply(t.Context(), "a", w, false)
	require.NoError(t, err)
	s.mu.Lock()
	delete(s.data, "a/ecr") // someone deleted it
	s.mu.Unlock()
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"a": {}}, testExclusions, newCounts(), fast)
	run(t, m)
	m.Restore("a", "regcred-ecr")
	require.Eventually(t, func() bool { _, ok := s.get("a/ecr"); return ok }, 5*time.Second, time.Millisecond)
	data, _ := s.get("a/ecr")
	keys, err := pullsecret.Keys([]byte(data))
	require.NoError(t, err)
	assert.Equal(t, []string{"*.dkr.ecr.eu-west-1.amazonaws.com"}, keys)
	assert.Equal(t, 1, s.count(s.restores, "a/ecr"))
}

func TestMenderDecidesAgainWithThePlan(t *testing.T) {
	s := newMemStore()
	m := startMender(t, s, nsLabels{"a": {"team": "a"}, "b": {"team": "b"}}, fast)
	m.Retry("a", "regcred-scoped", nil)           // served: written
	m.Retry("b", "regcred-scoped", nil)           // no longer served there: nothing
	m.Retry("kube-system", "regcred-q", nil)      // excluded, whatever asked: nothing
	m.Retry("gone", "regcred-q", nil)             // the namespace is gone: nothing
	m.Retry("a", "regcred-mine", nil)             // the admin's own secret: regcred writes none
	m.Retry("a", "regcred-removed-registry", nil) // not in the config: nothing
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
		wg.Go(func() { m.Retry("e", "regcred-q", nil) })
	}
	wg.Wait()
	run(t, m)
	require.Eventually(t, func() bool { return s.count(s.writes, "e/q") >= 1 }, time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, s.count(s.writes, "e/q"), "fifty admissions asking for one secret make one write")
}

// Admissions asking for a secret are not failures of the mender: however
// many ask, it tries MaxAttempts times before it gives up.
func TestMenderCountsOnlyItsOwnFailures(t *testing.T) {
	s := newMemStore()
	s.failures["e/q"], s.err = 2, errUnavailable
	set := mendSet(t)
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"e": {}}, testExclusions, newCounts(),
		MendOptions{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond})
	for range 8 {
		m.Retry("e", "regcred-q", nil)
	}
	run(t, m)
	require.Eventually(t, func() bool { _, ok := s.get("e/q"); return ok }, 5*time.Second, time.Millisecond,
		"two failures, then the third try writes it; tries: %d", s.count(s.writes, "e/q"))
	assert.Equal(t, 3, s.count(s.writes, "e/q"))
}

// Admissions asking for a secret that waits for its backoff after the
// mender's failures do not bring it forward: its tries stay spaced as the
// backoff says, however many Pods are admitted meanwhile.
func TestMenderKeepsItsBackoffWhileAdmissionsAsk(t *testing.T) {
	s := newMemStore()
	s.failures["e/q"], s.err = 100, errUnavailable
	m := startMender(t, s, nsLabels{"e": {}}, MendOptions{MaxAttempts: 8, BaseDelay: time.Second, MaxDelay: 10 * time.Second})
	m.Retry("e", "regcred-q", nil)
	require.Eventually(t, func() bool { return s.count(s.writes, "e/q") == 2 }, 10*time.Second, time.Millisecond, "two failures")
	failed := time.Now() // the next try waits 2 s; an admission's first delay is 1 s
	for range 10 {
		m.Retry("e", "regcred-q", nil)
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Until(failed.Add(1500 * time.Millisecond)))
	assert.Equal(t, 2, s.count(s.writes, "e/q"), "no try before the backoff ends")
	require.Eventually(t, func() bool { return s.count(s.writes, "e/q") == 3 }, 5*time.Second, time.Millisecond, "then the next")
}

// ecrAPI mints a token of its region, or fails while down.
type ecrAPI struct {
	region string
	down   *atomic.Bool
}

func (a ecrAPI) GetAuthorizationToken(context.Context, *awsecr.GetAuthorizationTokenInput, ...func(*awsecr.Options)) (*awsecr.GetAuthorizationTokenOutput, error) {
	if a.down.Load() {
		return nil, errors.New("throttled")
	}
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:token-" + a.region))
	exp := time.Now().Add(12 * time.Hour)
	return &awsecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{AuthorizationToken: &tok, ExpiresAt: &exp}}}, nil
}

// A glob ECR registry's secret that an admission could not make is made
// by the retry for the hosts the admission needed: the index knows none
// of them yet. They are kept over the retry's own failures.
func TestMenderRetriesAGlobECRSecretForItsHosts(t *testing.T) {
	down := &atomic.Bool{}
	down.Store(true)
	set := globECRSet(t, down)
	s := newMemStore()
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"a": {}}, testExclusions, newCounts(), fast)
	const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	m.Retry("a", "regcred-ecr", []string{host})
	run(t, m)
	require.Eventually(t, func() bool { e, ok := s.Lookup(t.Context(), "a", "ecr", false); return ok && e.Pending() }, 5*time.Second, time.Millisecond)
	e, _ := s.Lookup(t.Context(), "a", "ecr", false)
	assert.Equal(t, []string{host}, e.Hosts, "handed over with the host it must serve")
	_, ok := s.get("a/ecr")
	require.False(t, ok)
	down.Store(false)

	require.Eventually(t, func() bool { _, ok := s.get("a/ecr"); return ok }, 5*time.Second, time.Millisecond)
	data, _ := s.get("a/ecr")
	keys, err := pullsecret.Keys([]byte(data))
	require.NoError(t, err)
	assert.Equal(t, []string{"*.dkr.ecr.eu-west-1.amazonaws.com"}, keys, "the admission's host is served")
	e, ok = s.Lookup(t.Context(), "a", "ecr", false)
	require.True(t, ok)
	assert.Equal(t, []string{host}, e.Hosts, "and recorded, for the refreshes to come")
	uid := e.UID

	// A region the secret does not serve yet, while ECR is down: handed
	// over too, with every host, bound to the same Secret.
	down.Store(true)
	const other = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	m.Retry("a", "regcred-ecr", []string{other})
	require.Eventually(t, func() bool { e, ok := s.Lookup(t.Context(), "a", "ecr", false); return ok && e.Pending() }, 5*time.Second, time.Millisecond)
	e, _ = s.Lookup(t.Context(), "a", "ecr", false)
	assert.Equal(t, []string{host, other}, e.Hosts)
	assert.Equal(t, uid, e.UID)
}

// A rewrite that raced with another replica's is written again here at
// once, whatever the index says (the other's Secret write may have landed
// first), serving the hosts of both.
func TestMenderRetriesARacedEntry(t *testing.T) {
	set := globECRSet(t, &atomic.Bool{})
	s := newMemStore()
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"a": {}}, testExclusions, newCounts(), fast)
	const west, east = "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	// The index records a secret serving both regions, as another
	// replica's entry said when this one's write raced with it.
	w, err := set.Get("ecr").Want(t.Context(), registries.Need{Hosts: []string{west, east}})
	require.NoError(t, err)
	_, err = s.Apply(t.Context(), "a", w, false)
	require.NoError(t, err)
	m.RetryEntry(secretstore.Entry{Namespace: "a", Registry: "ecr", Hosts: []string{west, east}})
	run(t, m)
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.restores["a/ecr"] == 1
	}, 5*time.Second, time.Millisecond, "written again, though the index says it is written")
	data, _ := s.get("a/ecr")
	keys, err := pullsecret.Keys([]byte(data))
	require.NoError(t, err)
	assert.Equal(t, []string{"*.dkr.ecr.eu-west-1.amazonaws.com", "*.dkr.ecr.us-east-1.amazonaws.com"}, keys)

	// Raced with hosts the index does not record: served too.
	const south = "123456789012.dkr.ecr.ap-south-1.amazonaws.com"
	m.RetryEntry(secretstore.Entry{Namespace: "a", Registry: "ecr", Hosts: []string{south}})
	require.Eventually(t, func() bool {
		data, _ := s.get("a/ecr")
		keys, _ := pullsecret.Keys([]byte(data))
		return len(keys) == 3
	}, 5*time.Second, time.Millisecond)
}

// A retry still waiting for its backoff when the replica stops is handed
// over to the leader's sweeps (a pending entry in the index): the queue
// ends with the replica.
// Admissions asking for retries while the mender stops: each retry is
// either queued before the stop, and handed over with the rest, or handed
// over at once after it; none falls between.
func TestRetriesDuringTheStopAreNeverLost(t *testing.T) {
	for round := range 200 {
		s := newMemStore()
		set := globECRSet(t, &atomic.Bool{})
		m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"a": {}}, testExclusions, newCounts(),
			MendOptions{BaseDelay: time.Hour, MaxDelay: time.Hour, RestoreDelay: time.Hour})
		stop := run(t, m)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					m.Retry(fmt.Sprintf("ns%d-%d", g, i), "regcred-q", nil)
				}
			})
		}
		stop()
		wg.Wait()
		lost := 0
		for g := range 8 {
			for i := range 200 {
				if _, ok := s.Lookup(t.Context(), fmt.Sprintf("ns%d-%d", g, i), "q", false); !ok {
					lost++
				}
			}
		}
		require.Zero(t, lost, "round %d: retries neither queued nor handed over", round)
	}
}

// A try the stop cuts short may have been the last: its pull secret is
// handed over all the same.
func TestATryCutShortByTheStopIsHandedOver(t *testing.T) {
	s := newMemStore()
	started := make(chan struct{})
	s.applying = func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	set := globECRSet(t, &atomic.Bool{})
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"a": {}}, testExclusions, newCounts(),
		MendOptions{MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, RestoreDelay: time.Millisecond})
	stop := run(t, m)
	m.Retry("a", "regcred-q", nil)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the retry never ran")
	}
	stop()
	e, ok := s.Lookup(t.Context(), "a", "q", false)
	require.True(t, ok, "handed over")
	assert.True(t, e.Pending())
}

func TestMenderHandsOverWhatIsQueuedWhenItStops(t *testing.T) {
	s := newMemStore()
	set := globECRSet(t, &atomic.Bool{})
	// Retries wait an hour: none runs before the stop.
	m := NewMender(func() *registries.Set { return set }, s, s, nsLabels{"a": {}}, testExclusions, newCounts(),
		MendOptions{BaseDelay: time.Hour, MaxDelay: time.Hour, RestoreDelay: time.Hour})
	stop := run(t, m)
	const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	m.Retry("a", "regcred-q", nil)
	m.Retry("a", "regcred-ecr", []string{host})
	m.Restore("a", "regcred-other")
	stop()
	e, ok := s.Lookup(t.Context(), "a", "q", false)
	require.True(t, ok, "handed over")
	assert.True(t, e.Pending())
	e, ok = s.Lookup(t.Context(), "a", "ecr", false)
	require.True(t, ok)
	assert.True(t, e.Pending())
	assert.Equal(t, []string{host}, e.Hosts, "with the hosts it must serve")
	_, ok = s.Lookup(t.Context(), "a", "other", false)
	assert.False(t, ok, "a restore is the resync's")
	assert.Zero(t, s.writes["a/q"], "nothing written on the way out")

	// Admissions go on while the webhook drains, after the mender stopped:
	// what they could not write is handed over at once.
	m.Retry("b", "regcred-q", nil)
	e, ok = s.Lookup(t.Context(), "b", "q", false)
	require.True(t, ok, "handed over after the stop")
	assert.True(t, e.Pending())
}
