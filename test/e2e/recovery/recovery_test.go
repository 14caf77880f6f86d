package recovery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/test/testbed"
)

// Workloads created before their registry is configured: when it is,
// the Deployment's Pod is evicted and made again with the pull secret; a
// bare Pod gets an Event and stays; a PodDisruptionBudget that forbids the
// eviction holds; a Pod that carries the secret is not touched.
func TestRecovery(t *testing.T) {
	r := startReplica(t, true)
	r.setConfig(t, noRegistries)
	t.Cleanup(func() { r.setConfig(t, noRegistries) })
	ns := namespace(t)

	web := deployment(t, ns, "web")
	require.Empty(t, web.Spec.ImagePullSecrets, "admitted before its registry was configured")
	// The API server lets a budget hold only Pods that run: a Pod whose
	// containers never started is Pending, and its eviction disrupts
	// nothing.
	budget(t, ns, "web")
	bare := barePod(t, ns, "bare")
	// A Pod that ran with a hand-made pull secret, since deleted: its
	// container restarted and cannot pull its image again. It is Running,
	// so its budget holds.
	guarded := deployment(t, ns, "guarded", "hand-made")
	budget(t, ns, "guarded")
	// Its own secret under the name regcred will use: if its pull fails,
	// it is for another reason (a wrong password), not recovery's business.
	carried := deployment(t, ns, "carried", "regcred-reg")
	for _, p := range []*corev1.Pod{web, bare, carried} {
		failPull(t, p, recovery.ReasonErrImagePull)
	}
	failPull(t, web, recovery.ReasonImagePullBackOff)
	failPullAfterRun(t, guarded)

	start := time.Now()
	r.setConfig(t, withRegistry())

	t.Run("a Deployment's Pod is made again with the pull secret", func(t *testing.T) {
		var made *corev1.Pod
		require.Eventually(t, func() bool {
			for _, p := range podsOf(t, ns, "web") {
				if p.UID != web.UID {
					made = &p
				}
			}
			return made != nil && !exists(t, web)
		}, eventually, tick, "the Pod was not evicted and made again")
		t.Logf("Deployment's Pod evicted and made again %s after the config change", time.Since(start).Round(time.Millisecond))
		assert.Contains(t, made.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred-reg"})
		require.NoError(t, pull(t, made), "the new Pod's secret pulls the image")

		ev := waitForEvent(t, web, recovery.EventEvicted)
		assert.Equal(t, "Normal", ev.Type)
		assert.Equal(t, "Evict", ev.Action)
		assert.Equal(t, "regcred", ev.ReportingController)
		require.NotNil(t, ev.Related)
		assert.Equal(t, "ReplicaSet", ev.Related.Kind)
		for _, want := range []string{env.image, `registry "reg"`, `pull secret "regcred-reg"`, "ImagePullBackOff"} {
			assert.Contains(t, ev.Note, want)
		}
		testbed.NoSecret(t, "an Event", ev.Note, password)
		assert.GreaterOrEqual(t, r.counter(t, "regcred_recovery_evictions_total", "result", "evicted"), 1.0)
	})

	t.Run("a bare Pod gets an Event and stays", func(t *testing.T) {
		ev := waitForEvent(t, bare, recovery.EventMissing)
		assert.Equal(t, "Warning", ev.Type)
		assert.Nil(t, ev.Related)
		assert.Contains(t, ev.Note, `pull secret "regcred-reg"`)
		assert.Contains(t, ev.Note, "delete it and create it again")
		assert.True(t, exists(t, bare))
	})

	t.Run("a PodDisruptionBudget that forbids the eviction holds", func(t *testing.T) {
		ev := waitForEvent(t, guarded, recovery.EventBlocked)
		assert.Equal(t, "Warning", ev.Type)
		assert.Contains(t, ev.Note, "PodDisruptionBudget")
		assert.Contains(t, ev.Note, "guarded", "the API server's reason names the budget")
		blockedAt := time.Now()
		// Tried again with backoff (5s, then 10s, ...), not in a loop: no
		// more tries than the backoff allows since the config change,
		// before which nothing was refused.
		var blocked float64
		require.Eventually(t, func() bool {
			blocked = r.counter(t, "regcred_recovery_evictions_total", "result", "blocked")
			return blocked >= 2
		}, eventually, tick, "not tried again")
		elapsed := time.Since(start)
		t.Logf("evictions refused by the budget: %g in all, seen %s after the Event of the first refusal, %s after the config change", blocked, time.Since(blockedAt).Round(time.Millisecond), elapsed.Round(time.Millisecond))
		assert.LessOrEqual(t, blocked, float64(triesWithin(elapsed, 5*time.Second)), "with backoff: no more tries than one from 5s allows in the %s since the config change", elapsed.Round(time.Millisecond))
		assert.True(t, exists(t, guarded))
		n := 0
		for _, e := range eventsOn(t, ns, guarded.UID) {
			if e.Reason == recovery.EventBlocked {
				n++
			}
		}
		assert.Equal(t, 1, n, "one Event for the refusals")
	})

	t.Run("a Pod that carries the secret is not touched", func(t *testing.T) {
		assert.True(t, exists(t, carried))
		assert.Empty(t, eventsOn(t, ns, carried.UID))
	})

	t.Run("once per Pod", func(t *testing.T) {
		// The kubelet reports the bare Pod's failure again; the config
		// changes again.
		failPull(t, bare, recovery.ReasonImagePullBackOff)
		r.setConfig(t, withRegistry()+"# a comment changes the object\n")
		time.Sleep(4 * time.Second) // more than the settling delay after a config change
		n := 0
		for _, e := range eventsOn(t, ns, bare.UID) {
			n += max(1, int(e.DeprecatedCount))
			if e.Series != nil {
				n += int(e.Series.Count) - 1
			}
		}
		assert.Equal(t, 1, n, "one Event for a bare Pod")
		assert.InDelta(t, 1, r.counter(t, "regcred_recovery_events_total", "reason", recovery.EventMissing), 0)
		assert.InDelta(t, 1, r.counter(t, "regcred_recovery_evictions_total", "result", "evicted"), 0)
	})
}

// triesWithin is how many tries an exponential backoff from base (base,
// then twice as long each time) lets happen within d of the first.
func triesWithin(d, base time.Duration) int {
	n := 1
	for next, wait := base, base; next <= d; wait *= 2 {
		n++
		next += 2 * wait
	}
	return n
}

// With recovery off (the default), a Pod stuck without its secret stays
// stuck: nothing is evicted, no Event recorded.
func TestRecoveryOff(t *testing.T) {
	r := startReplica(t, false)
	r.setConfig(t, noRegistries)
	t.Cleanup(func() { r.setConfig(t, noRegistries) })
	ns := namespace(t)
	web := deployment(t, ns, "web")
	bare := barePod(t, ns, "bare")
	failPull(t, web, recovery.ReasonImagePullBackOff)
	failPull(t, bare, recovery.ReasonImagePullBackOff)
	r.setConfig(t, withRegistry())
	// TestRecovery evicted within a few seconds of the same change.
	time.Sleep(10 * time.Second)
	assert.True(t, exists(t, web), "not evicted")
	assert.Len(t, podsOf(t, ns, "web"), 1)
	assert.True(t, exists(t, bare))
	assert.Empty(t, eventsOn(t, ns, web.UID))
	assert.Empty(t, eventsOn(t, ns, bare.UID))
	assert.Zero(t, r.counter(t, "regcred_recovery_evictions_total", "result", "evicted"))
}
