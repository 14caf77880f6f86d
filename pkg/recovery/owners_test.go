package recovery

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A controller whose new Pods the webhook does not give the pull secret
// (a Secret of its name that is not regcred's, matchConditions that skip
// them, an API server that cannot reach the webhook; whatever the cause):
// its Pods that lacked the secret are evicted, each once, and a Pod it
// makes since that lacks the same secret is not evicted, ever. regcred
// gives up on it with an Event that says what to check.
func TestGivesUpOnReplacementsThatLackTheSecretAgain(t *testing.T) {
	b := start(t, quayOnly, &open{})
	// Two Pods of ReplicaSet web, admitted while their namespace opted out.
	originals := map[types.UID]*corev1.Pod{}
	for range 2 {
		p := b.owned("quiet", "ReplicaSet", "web", "quay.io/org/web:1", ReasonImagePullBackOff)
		originals[p.UID] = p
	}
	b.settle(2)
	require.Zero(t, b.evictor.total(), "the namespace opted out")

	// The ReplicaSet makes a Pod for each one evicted, and the cache holds
	// it before the API server answers the eviction. The webhook gives the
	// first the pull secret, not the second, whose pull fails later.
	var mu sync.Mutex
	var made []*corev1.Pod
	b.evictor.fail = func(uid types.UID) error {
		old, ok := originals[uid]
		if !ok {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		r := b.podObject("quiet", "ReplicaSet", "web", "quay.io/org/web:1", "")
		if len(made) == 0 {
			r = b.podObject("quiet", "ReplicaSet", "web", "quay.io/org/web:1", "", "regcred-quay")
		}
		made = append(made, r)
		return b.replace(old, r)
	}

	b.namespaces.set("quiet", map[string]string{})
	b.c.NamespaceChanged("quiet")
	b.waitForRetry()
	b.clock.Step(b.c.Settle)
	require.Eventually(t, func() bool { return b.counts.eviction(Evicted) == 2 }, eventually, tick)
	for uid := range originals {
		assert.Equal(t, 1, b.evictor.count(uid), "every Pod that lacked the secret before is evicted")
	}
	mu.Lock()
	require.Len(t, made, 2)
	lacking := made[1]
	mu.Unlock()
	term := b.c.current()
	require.Eventually(t, func() bool {
		term.mu.Lock()
		defer term.mu.Unlock()
		_, ok := term.made[lacking.UID]
		return ok
	}, eventually, tick, "the Pod made without the secret is marked")
	term.mu.Lock()
	assert.Len(t, term.made, 1, "the Pod made with it is not")
	term.mu.Unlock()

	b.setReason(lacking, ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(lacking.UID)) == 1 }, eventually, tick)
	ev := b.events.of(lacking.UID)[0]
	assert.Equal(t, EventGaveUp, ev.reason)
	assert.Equal(t, "Warning", ev.eventtype)
	require.NotNil(t, ev.related)
	assert.Equal(t, "ReplicaSet", ev.related.Kind)
	assert.Equal(t, "web", ev.related.Name)
	for _, want := range []string{"regcred gave up", "ReplicaSet web made this Pod", `pull secret "regcred-quay"`,
		`Secret named "regcred-quay" in namespace "quiet" is not regcred's`, "matchConditions", "the API server reaches the webhook",
		"delete this Pod", `image "quay.io/org/web:1"`, `registry "quay"`} {
		assert.Contains(t, ev.note, want)
	}
	assert.LessOrEqual(t, len(ev.note), maxNote)

	// The memory is the controller's: a Pod of another one that lacks the
	// same secret is evicted.
	api := b.owned("quiet", "ReplicaSet", "api", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return b.counts.eviction(Evicted) == 3 }, eventually, tick)
	assert.Equal(t, 1, b.evictor.count(api.UID))

	// Whatever the kubelet reports or the namespace does, the Pod made
	// since is never evicted, and told once.
	b.setReason(lacking, ReasonImagePullBackOff)
	b.c.NamespaceChanged("quiet")
	b.settle(3)
	assert.Zero(t, b.evictor.count(lacking.UID))
	assert.Len(t, b.events.of(lacking.UID), 1)
	assert.Equal(t, 3, b.counts.eviction(Evicted))
	assert.Equal(t, 1, b.counts.eviction(GaveUp))
	b.counts.mu.Lock()
	assert.Equal(t, 1, b.counts.events[EventGaveUp])
	b.counts.mu.Unlock()
}

// The memory is of the pull secret evicted for: a Pod the controller made
// since that lacks another one is evicted.
func TestEvictsPodsThatLackAnotherSecret(t *testing.T) {
	b := start(t, quayAndHub, &open{})
	p := b.owned("app", "ReplicaSet", "web", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(p.UID)) == 1 }, eventually, tick, "evicted")

	same := b.owned("app", "ReplicaSet", "web", "quay.io/org/web:1", ReasonErrImagePull)
	other := b.owned("app", "ReplicaSet", "web", "myorg/app:1", ReasonErrImagePull, "regcred-quay")
	require.Eventually(t, func() bool { return b.evictor.count(other.UID) == 1 }, eventually, tick)
	require.Eventually(t, func() bool { return len(b.events.of(same.UID)) == 1 }, eventually, tick)
	assert.Equal(t, EventGaveUp, b.events.of(same.UID)[0].reason)
	b.settle(3)
	assert.Zero(t, b.evictor.count(same.UID))
}

// Pods a controller makes within the window of an eviction of its own, or
// of the evicted Pod going, are its replacements, even if their pull fails
// later; a window after that, the controller is forgotten and a Pod it
// makes then is evicted. What is remembered of a Pod goes with it.
func TestRemembersControllersForAWindow(t *testing.T) {
	b := start(t, quayOnly, &open{})
	window := b.c.ReplacementWindow
	assert.Equal(t, 10*time.Minute, window)
	term := b.c.current()
	memory := func() (owners, made, evicting int) {
		term.mu.Lock()
		defer term.mu.Unlock()
		for _, o := range term.owners {
			evicting += len(o.evicting)
		}
		return len(term.owners), len(term.made), evicting
	}

	p := b.owned("app", "StatefulSet", "db", "quay.io/org/db:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(p.UID)) == 1 }, eventually, tick, "evicted")

	// A StatefulSet makes the Pod again once the evicted one is gone,
	// after its grace period, however long.
	b.clock.Step(2 * window)
	b.remove(p)
	require.Eventually(t, func() bool { _, _, evicting := memory(); return evicting == 0 }, eventually, tick, "told the Pod went")
	b.clock.Step(window - time.Second)
	again := b.owned("app", "StatefulSet", "db", "quay.io/org/db:1", "")
	require.Eventually(t, func() bool { _, made, _ := memory(); return made == 1 }, eventually, tick, "marked")

	// A window after the evicted Pod went (and at most a tenth of a window
	// more: how often it sweeps), a Pod event forgets the controller:
	// nothing stays of a controller since deleted but the marks of its
	// Pods, which go with them.
	b.clock.Step(window / 10)
	b.pod("app", "", "ghcr.io/org/other:1", "")
	require.Eventually(t, func() bool { owners, _, _ := memory(); return owners == 0 }, eventually, tick)

	// The Pod made within the window, whose pull fails only now, is its
	// replacement still.
	b.setReason(again, ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(again.UID)) == 1 }, eventually, tick)
	assert.Equal(t, EventGaveUp, b.events.of(again.UID)[0].reason)

	// A Pod it makes now is evicted, once.
	later := b.owned("app", "StatefulSet", "db", "quay.io/org/db:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(later.UID)) == 1 }, eventually, tick)
	assert.Equal(t, EventEvicted, b.events.of(later.UID)[0].reason)

	// The Pod given up on stays so.
	b.setReason(again, ReasonImagePullBackOff)
	b.c.NamespaceChanged("app")
	b.settle(3)
	assert.Zero(t, b.evictor.count(again.UID))
	assert.Len(t, b.events.of(again.UID), 1)

	// When the Pods go, so does what is remembered of them.
	b.remove(again)
	b.remove(later)
	require.Eventually(t, func() bool { _, _, evicting := memory(); return evicting == 0 }, eventually, tick, "told the Pod went")
	b.clock.Step(window + window/10)
	b.pod("app", "", "ghcr.io/org/other:1", "")
	require.Eventually(t, func() bool {
		owners, made, _ := memory()
		term.mu.Lock()
		defer term.mu.Unlock()
		return owners == 0 && made == 0 && len(term.acted) == 0
	}, eventually, tick)
}

// An eviction a PodDisruptionBudget refused replaced nothing: another Pod
// of the controller is evicted, not given up on.
func TestRefusedEvictionsAreNotRemembered(t *testing.T) {
	b := start(t, quayOnly, &open{})
	// The bed names its Pods p1, p2, ... with UIDs uid-1, uid-2, ...
	b.evictor.fail = func(uid types.UID) error {
		if uid == "uid-1" {
			return budgetRefusal()
		}
		return nil
	}
	guarded := b.owned("app", "ReplicaSet", "web", "quay.io/org/web:1", ReasonErrImagePull)
	require.Equal(t, types.UID("uid-1"), guarded.UID)
	require.Eventually(t, func() bool { return len(b.events.of(guarded.UID)) == 1 }, eventually, tick)
	require.Equal(t, EventBlocked, b.events.of(guarded.UID)[0].reason)
	p := b.owned("app", "ReplicaSet", "web", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(p.UID)) == 1 }, eventually, tick)
	assert.Equal(t, EventEvicted, b.events.of(p.UID)[0].reason)
	assert.Equal(t, 1, b.evictor.count(p.UID))
	assert.Zero(t, b.counts.eviction(GaveUp))
}
