package ecr

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/regcred/regcred/test/testbed"
)

// 1. An ECR Pod is admitted with a secret whose token pulls the image, for
// both auth types: the access key of the config, and regcred's own identity
// from the SDK's default chain. Each call is signed with the right key for
// the region of the registry URL.
func TestBothAuthTypesPull(t *testing.T) {
	env.ecr.SetLifetime(12 * time.Hour)
	start := time.Now()
	startReplica(t, "solo", "ecr-auth")
	ns := newNamespace(t)
	p := createPod(t, clientset(t, nil), ns, env.imageKeys, env.imageRole)
	assert.Equal(t, []string{"regcred-ecr-keys", "regcred-ecr-role"}, secretNames(p))
	require.NoError(t, pull(t.Context(), t, p, env.imageKeys))
	require.NoError(t, pull(t.Context(), t, p, env.imageRole))
	assert.True(t, isUnauthorized(fetch(t.Context(), env.imageKeys, remote.WithAuth(authn.Anonymous))), "without a token the registry refuses")
	assert.True(t, isUnauthorized(fetch(t.Context(), env.imageKeys, remote.WithAuth(&authn.Basic{Username: "AWS", Password: "made-up"}))))

	keys, role := callsSince(start, keyID), callsSince(start, roleID)
	require.NotEmpty(t, keys)
	require.NotEmpty(t, role)
	for _, c := range keys {
		assert.Equal(t, "us-east-1", c.Region, "the region comes from the registry URL")
		assert.True(t, c.SignatureOK, "signed with the config's secret access key")
	}
	for _, c := range role {
		assert.Equal(t, "eu-west-1", c.Region)
		assert.True(t, c.SignatureOK, "signed with the environment's identity")
	}
	_, exp, ok := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
	require.True(t, ok)
	assert.WithinDuration(t, time.Now().Add(12*time.Hour), exp, time.Minute, "the secret records the token's expiry")
}

// 2. Tokens living seconds: every pull secret is refreshed before each
// expiry, across several namespaces, with one token request per refresh.
func TestTokensAreRefreshedBeforeExpiry(t *testing.T) {
	// Refreshes are planned at half-life: a 6s life leaves 3s for a
	// refresh that is late on a busy machine before the token expires.
	const life = 6 * time.Second
	env.ecr.SetLifetime(life)
	start := time.Now()
	startReplica(t, "solo", "ecr-refresh")
	cs := clientset(t, nil)
	// Every write of the pull secrets, in order: polling them could miss
	// a token, and then compare tokens that did not follow one another.
	secrets, err := cs.CoreV1().Secrets("").Watch(t.Context(), metav1.ListOptions{FieldSelector: "metadata.name=regcred-ecr-keys"})
	require.NoError(t, err)
	defer secrets.Stop()
	var namespaces []string
	pods := map[string]*corev1.Pod{}
	for range 4 {
		ns := newNamespace(t)
		namespaces = append(namespaces, ns)
		pods[ns] = createPod(t, cs, ns, env.imageKeys)
	}

	// Follow the secrets for four lives (several refreshes each); keep
	// pulling all along.
	type held struct {
		password string
		expires  time.Time
	}
	last := map[string]held{}
	var margins []time.Duration
	refreshes := map[string]int{}
	pulls := time.NewTicker(250 * time.Millisecond)
	defer pulls.Stop()
	deadline := time.After(4 * life)
	for watching := true; watching; {
		select {
		case ev, ok := <-secrets.ResultChan():
			require.True(t, ok, "the watch of the pull secrets ended")
			s, isSecret := ev.Object.(*corev1.Secret)
			require.True(t, isSecret, "watch event %s: %v", ev.Type, ev.Object)
			if pods[s.Namespace] == nil || ev.Type == watch.Deleted {
				continue
			}
			pw, _ := tokenIn(t, s, hostKeys)
			// Exact times from the endpoint: when each token expires, and
			// when the one replacing it was minted.
			exp, minted := env.ecr.TokenExpiry(pw)
			require.True(t, minted, "the secret holds a token the endpoint minted")
			if prev, seen := last[s.Namespace]; seen && prev.password != pw {
				refreshes[s.Namespace]++
				margins = append(margins, prev.expires.Sub(exp.Add(-life)))
			}
			last[s.Namespace] = held{pw, exp}
		case <-pulls.C:
			for _, ns := range namespaces {
				require.NoError(t, pull(t.Context(), t, pods[ns], env.imageKeys), "pull in %s at %s", ns, time.Since(start))
			}
		case <-deadline:
			watching = false
		}
	}
	for _, ns := range namespaces {
		assert.GreaterOrEqual(t, refreshes[ns], 3, "refreshes in %s", ns)
	}
	sort.Slice(margins, func(i, j int) bool { return margins[i] < margins[j] })
	require.NotEmpty(t, margins)
	t.Logf("token life %s; refreshes observed %d; margin before the old token's expiry: min %s, max %s", life, len(margins), margins[0].Round(10*time.Millisecond), margins[len(margins)-1].Round(10*time.Millisecond))
	// The secret's next token was minted before the one it held expired
	// (and every pull above, with what the secret held then, was let in).
	assert.Positive(t, margins[0], "each secret was refreshed before its token expired")

	// One token request per refresh cycle, not one per namespace.
	calls := callsSince(start, keyID)
	cycles := refreshes[namespaces[0]] + 1
	t.Logf("token requests for %d namespaces over %d cycles: %d", len(namespaces), cycles, len(calls))
	assert.LessOrEqual(t, len(calls), cycles+1)
	assert.GreaterOrEqual(t, len(calls), cycles)
}

// 3. Throttling and outages: the refresher backs off (a bounded number of
// calls), the secrets keep their still-valid tokens, and recovery
// refreshes them.
func TestThrottlingAndOutagesBackOff(t *testing.T) {
	const life = 12 * time.Second
	env.ecr.SetLifetime(life)
	t.Cleanup(func() { env.ecr.SetMode(testbed.ECROK) })
	startReplica(t, "solo", "ecr-outage")
	ns := newNamespace(t)
	p := createPod(t, clientset(t, nil), ns, env.imageKeys)
	before, exp, ok := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
	require.True(t, ok)

	// ECR throttles from the first refresh (at about half the token's
	// life) for 2 s, then fails for 2 s.
	errorsBefore := metric(t, "regcred_token_refresh_errors_total", "ecr-keys")
	outage := time.Now()
	env.ecr.SetMode(testbed.ECRThrottle)
	// Planned at about half the token's life (less a jitter of up to a
	// tenth): waited for until the token expires, so that a refresh late
	// on a loaded machine still counts.
	require.Eventually(t, func() bool { return len(callsSince(outage, keyID)) > 0 }, time.Until(exp), 10*time.Millisecond, "a refresh before the token expires")
	time.Sleep(2 * time.Second)
	env.ecr.SetMode(testbed.ECRFail)
	time.Sleep(2 * time.Second)
	calls := callsSince(outage, keyID)
	t.Logf("calls during 4s of throttling then failures (backoff 200ms doubling to 1s, full jitter): %d", len(calls))
	require.NotEmpty(t, calls)
	assert.Equal(t, http.StatusBadRequest, calls[0].Status, "the first was throttled (ThrottlingException)")
	// Backing off from 200 ms to 1 s with full jitter, the waits average
	// 6.7 s over 15 calls and 8.2 s over 18 (σ ≈ 1.1 s): 18 calls in 4 s
	// would be a backoff that does not grow (every 200 ms: 20).
	assert.LessOrEqual(t, len(calls), 18, "it backs off")
	assert.GreaterOrEqual(t, len(calls), 3, "it kept trying")
	for _, c := range calls {
		assert.NotEqual(t, http.StatusOK, c.Status)
	}
	held, _, _ := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
	assert.Equal(t, before, held, "the secret keeps its still-valid token")
	require.True(t, time.Now().Before(exp))
	assert.NoError(t, pull(t.Context(), t, p, env.imageKeys), "and it still pulls")
	assert.GreaterOrEqual(t, metric(t, "regcred_token_refresh_errors_total", "ecr-keys")-errorsBefore, float64(len(calls)-1), "failures are counted per registry")

	// Recovery refreshes it before the old token expires.
	env.ecr.SetMode(testbed.ECROK)
	require.Eventually(t, func() bool {
		pw, _, _ := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
		return pw != before
	}, time.Until(exp), 50*time.Millisecond, "recovery did not refresh the secret before its token expired")
	assert.NoError(t, pull(t.Context(), t, p, env.imageKeys))
	_, newExp, _ := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
	assert.Positive(t, metric(t, "regcred_token_refreshes_total", "ecr-keys"))
	assert.InDelta(t, float64(newExp.Unix()), metric(t, "regcred_token_expiry_timestamp_seconds", "ecr-keys"), 2, "the expiry gauge shows the current token's")
}

// 4. Two replicas: only the leader refreshes; when it stops, the other
// takes over.
func TestOnlyTheLeaderRefreshes(t *testing.T) {
	const life = 4 * time.Second
	env.ecr.SetLifetime(life)
	a := startReplica(t, "a", "ecr-ha")
	select {
	case <-a.App.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("replica a was not elected")
	}
	b := startReplica(t, "b", "ecr-ha")
	ns := newNamespace(t)
	p := createPod(t, clientset(t, nil), ns, env.imageKeys)
	require.NoError(t, pull(t.Context(), t, p, env.imageKeys))

	since := time.Now()
	time.Sleep(2 * life)
	byReplica := map[string]int{}
	for _, c := range callsSince(since, keyID) {
		byReplica[c.Replica]++
	}
	t.Logf("token requests over %s with a leading: %v", 2*life, byReplica)
	assert.GreaterOrEqual(t, byReplica["a"], 3, "the leader refreshed")
	assert.Zero(t, byReplica["b"], "the other replica did not")

	a.stop()
	select {
	case <-b.App.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("replica b did not take over")
	}
	since = time.Now()
	before, _, _ := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
	require.Eventually(t, func() bool {
		pw, _, _ := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
		return pw != before
	}, 2*life, 50*time.Millisecond, "replica b did not refresh the secret")
	time.Sleep(life)
	byReplica = map[string]int{}
	for _, c := range callsSince(since, keyID) {
		byReplica[c.Replica]++
	}
	t.Logf("token requests after a stopped: %v", byReplica)
	assert.Zero(t, byReplica["a"])
	assert.GreaterOrEqual(t, byReplica["b"], 1)
	assert.NoError(t, pull(t.Context(), t, p, env.imageKeys))
}

// 5. A first secret needs a token and ECR does not answer: the admission
// waits at most its budget, admits the Pod with a warning, and the
// background catches up once ECR answers.
func TestSlowECRAdmitsWithinBudget(t *testing.T) {
	env.ecr.SetLifetime(12 * time.Hour)
	// No ECR call gets through until the gate is released, below: the
	// admission cannot have had a token from ECR.
	ecrGate.hold(t)
	start := time.Now()
	startReplica(t, "solo", "ecr-slow")
	w := &warnings{}
	ns := newNamespace(t)
	p := createPod(t, clientset(t, w), ns, env.imageKeys)
	assert.Equal(t, []string{"regcred-ecr-keys"}, secretNames(p), "the name is injected all the same")
	assert.Equal(t, []string{`regcred: pull secret "regcred-ecr-keys" for registry "ecr-keys" is not ready yet (see regcred's log); retrying in the background`}, w.Take())
	// The Pod was admitted while ECR was still held: the background's
	// call waits at the gate, ECR has answered nothing, no secret yet.
	require.Eventually(t, func() bool { return ecrGate.waiting() > 0 }, 30*time.Second, 50*time.Millisecond, "no ECR call is waiting")
	require.Empty(t, callsSince(start, keyID), "ECR answered no call while held")
	_, _, made := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
	require.False(t, made, "a secret without a token from ECR")

	ecrGate.release()
	require.Eventually(t, func() bool {
		_, _, ok := heldToken(t, ns, "regcred-ecr-keys", hostKeys)
		return ok
	}, 30*time.Second, 100*time.Millisecond, "the background did not create the secret")
	assert.NoError(t, pull(context.Background(), t, p, env.imageKeys))
}
