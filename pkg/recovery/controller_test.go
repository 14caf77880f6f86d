package recovery

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	eventually = 10 * time.Second
	tick       = time.Millisecond
)

func TestEvictsOncePodsAControllerRecreates(t *testing.T) {
	for _, kind := range []string{"ReplicaSet", "StatefulSet", "DaemonSet", "Job"} {
		t.Run(kind, func(t *testing.T) {
			b := start(t, quayOnly, &open{})
			p := b.pod("app", kind, "quay.io/org/web:1", ReasonErrImagePull)
			require.Eventually(t, func() bool { return b.evictor.count(p.UID) == 1 }, eventually, tick)

			evs := b.events.of(p.UID)
			require.Len(t, evs, 1)
			ev := evs[0]
			assert.Equal(t, EventEvicted, ev.reason)
			assert.Equal(t, "Normal", ev.eventtype)
			assert.Equal(t, "Pod", ev.regarding.Kind)
			assert.Equal(t, p.Name, ev.regarding.Name)
			assert.Equal(t, kind, ev.related.Kind, "related to the controller that recreates it")
			for _, want := range []string{`image "quay.io/org/web:1"`, `container "c"`, "ErrImagePull", `registry "quay"`, `pull secret "regcred-quay"`, kind + " owner"} {
				assert.Contains(t, ev.note, want)
			}
			assert.Equal(t, 1, b.counts.eviction(Evicted))

			// The kubelet keeps reporting the failure: once per Pod.
			b.setReason(p, ReasonImagePullBackOff)
			b.setReason(p, ReasonErrImagePull)
			b.c.ConfigChanged()
			b.clock.Step(b.c.Settle)
			b.settle(1)
			assert.Equal(t, 1, b.evictor.count(p.UID))
			assert.Len(t, b.events.of(p.UID), 1)
		})
	}
}

func TestBarePodsOnlyGetAnEvent(t *testing.T) {
	b := start(t, quayOnly, &open{})
	bare := b.pod("app", "", "quay.io/org/web:1", ReasonImagePullBackOff)
	require.Eventually(t, func() bool { return len(b.events.of(bare.UID)) == 1 }, eventually, tick)
	ev := b.events.of(bare.UID)[0]
	assert.Equal(t, EventMissing, ev.reason)
	assert.Equal(t, "Warning", ev.eventtype)
	assert.Nil(t, ev.related)
	assert.Contains(t, ev.note, `pull secret "regcred-quay"`)
	assert.Contains(t, ev.note, "delete it and create it again")

	// Nor does a Pod of a controller that would not make it again.
	mirror := b.pod("app", "", "quay.io/org/web:1", "")
	mirror.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n", UID: "n", Controller: ptr.To(true)}}
	_, err := b.cs.CoreV1().Pods("app").Update(t.Context(), mirror, metav1.UpdateOptions{})
	require.NoError(t, err)
	b.setReason(mirror, ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(mirror.UID)) == 1 }, eventually, tick)

	// Once: however often the kubelet reports it or the config changes.
	b.setReason(bare, ReasonErrImagePull)
	b.c.ConfigChanged()
	b.clock.Step(b.c.Settle)
	b.settle(2)
	assert.Len(t, b.events.of(bare.UID), 1)
	assert.Zero(t, b.evictor.total(), "a Pod nothing recreates is never evicted")
}

// A Pod that carries the registry's secret failed for another reason (a
// wrong password): not recovery's business.
func TestNeverActsOnPodsThatHaveTheSecret(t *testing.T) {
	b := start(t, quayOnly, &open{})
	p := b.pod("app", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull, "regcred-quay")
	bare := b.pod("app", "", "quay.io/org/web:1", ReasonErrImagePull, "other", "regcred-quay")
	// Nor on Pods no registry serves, that opted out, in excluded
	// namespaces, or that pull fine.
	others := []*corev1.Pod{
		b.pod("app", "ReplicaSet", "ghcr.io/org/web:1", ReasonErrImagePull),
		b.pod("quiet", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull),
		b.pod("kube-system", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull),
		b.pod("app", "ReplicaSet", "quay.io/org/web:1", ""),
		b.pod("app", "ReplicaSet", "quay.io/org/web:1", "CrashLoopBackOff"),
	}
	b.c.ConfigChanged()
	b.clock.Step(b.c.Settle)
	b.settle(2 + len(others))
	assert.Zero(t, b.evictor.total())
	assert.Empty(t, b.events.of(p.UID))
	assert.Empty(t, b.events.of(bare.UID))
	for _, o := range others {
		assert.Empty(t, b.events.of(o.UID), o.Namespace+"/"+o.Spec.Containers[0].Image)
	}
	assert.Empty(t, b.c.current().acted, "nothing remembered of Pods it did not act on")
}

// A debug container's image does not count: the Pod carries the secret
// admission gave it, though the debug image alone would have the plan
// pick the registry's exact variant (the repository named as its prefix).
func TestEphemeralContainersDoNotCount(t *testing.T) {
	const harborOnly = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: harbor, type: other, url: harbor.example.com/team-a, username: {value: u}, password: {value: p}}
`
	b := start(t, harborOnly, &open{})
	p := b.podObject("app", "ReplicaSet", "owner", "harbor.example.com/team-a/app:typo", ReasonErrImagePull, "regcred-harbor")
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "debug", Image: "harbor.example.com/team-a:tools"}}}
	_, err := b.cs.CoreV1().Pods("app").Create(t.Context(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	b.settle(1)
	assert.Zero(t, b.evictor.total(), "the Pod carries regcred-harbor, as admitted")
	assert.Empty(t, b.events.of(p.UID))
}

// A Pod created before its registry was configured is evicted once the
// config serves it, after the config has had time to reach every replica.
func TestConfigChangeRecovers(t *testing.T) {
	b := start(t, quayOnly, &open{})
	p := b.pod("app", "ReplicaSet", "myorg/app:1", ReasonImagePullBackOff)
	b.settle(1)
	require.Zero(t, b.evictor.total(), "no registry serves it yet")

	b.set.Store(load(t, quayAndHub))
	b.c.ConfigChanged()
	b.evictedOnceSettled(p)
	assert.Contains(t, b.events.of(p.UID)[0].note, `registry "hub"`)
}

func TestNamespaceChangeRecovers(t *testing.T) {
	b := start(t, quayOnly, &open{})
	p := b.pod("quiet", "ReplicaSet", "quay.io/org/web:1", ReasonImagePullBackOff)
	b.settle(1)
	require.Zero(t, b.evictor.total(), "the namespace opted out")
	b.namespaces.set("quiet", map[string]string{})
	b.c.NamespaceChanged("other")
	b.clock.Step(b.c.Settle)
	b.settle(1)
	require.Zero(t, b.evictor.total(), "another namespace changed")
	// After Settle, so that every replica's cache of namespaces has the
	// change by the time the replacement is admitted.
	b.c.NamespaceChanged("quiet")
	b.evictedOnceSettled(p)
}

// A Pod whose pull fails just after a config change (its event comes at
// once) waits, as the Pods the change queued do, until the change has had
// Settle to reach every replica.
func TestPodEventsWaitForAChangeToSettle(t *testing.T) {
	b := start(t, quayOnly, &open{})
	b.set.Store(load(t, quayAndHub))
	b.c.ConfigChanged()
	p := b.pod("app", "ReplicaSet", "myorg/app:1", ReasonErrImagePull)
	b.evictedOnceSettled(p)
}

// A Pod whose namespace's labels cannot be read is never evicted: whether
// the namespace opted out is unknown. It is looked at again with backoff.
func TestNoEvictionWhileANamespaceIsUnknown(t *testing.T) {
	b := start(t, quayOnly, &open{})
	p := b.pod("unknown", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull)
	b.waitForRetry()
	assert.Zero(t, b.evictor.total())
	assert.Empty(t, b.events.of(p.UID))
	b.namespaces.set("unknown", map[string]string{})
	b.clock.Step(5 * time.Second)
	require.Eventually(t, func() bool { return b.evictor.count(p.UID) == 1 }, eventually, tick, "evicted once the labels are read")
}

// A PodDisruptionBudget that forbids the eviction holds: an Event says so
// once, and the eviction is tried again with exponential backoff, never in
// a loop, whatever the kubelet reports meanwhile.
func TestBudgetRefusalIsRetriedWithBackoff(t *testing.T) {
	b := start(t, quayOnly, &open{})
	var allowed atomic.Bool
	b.evictor.fail = func(types.UID) error {
		if allowed.Load() {
			return nil
		}
		return budgetRefusal()
	}
	p := b.pod("app", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return b.evictor.count(p.UID) == 1 }, eventually, tick)
	require.Eventually(t, func() bool { return len(b.events.of(p.UID)) == 1 }, eventually, tick)
	ev := b.events.of(p.UID)[0]
	assert.Equal(t, EventBlocked, ev.reason)
	assert.Equal(t, "Warning", ev.eventtype)
	assert.Contains(t, ev.note, "PodDisruptionBudget")
	assert.Contains(t, ev.note, "The disruption budget web needs 1 healthy pods", "the API server's reason")
	assert.Equal(t, 1, b.counts.eviction(Blocked))

	for attempt, backoff := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		b.waitForRetry()
		// The kubelet's reports do not cut the backoff short.
		b.setReason(p, ReasonImagePullBackOff)
		b.setReason(p, ReasonErrImagePull)
		b.clock.Step(backoff - time.Millisecond)
		b.settle(1)
		require.Equal(t, attempt+1, b.evictor.count(p.UID), "not before %s", backoff)
		b.clock.Step(time.Millisecond)
		require.Eventually(t, func() bool { return b.evictor.count(p.UID) == attempt+2 }, eventually, tick, "tried again after %s", backoff)
	}
	assert.Len(t, b.events.of(p.UID), 1, "one Event for the refusals")

	allowed.Store(true)
	b.waitForRetry()
	b.clock.Step(40 * time.Second)
	require.Eventually(t, func() bool { return len(b.events.of(p.UID)) == 2 }, eventually, tick)
	assert.Equal(t, EventEvicted, b.events.of(p.UID)[1].reason)
	assert.Equal(t, 1, b.counts.eviction(Evicted))
	assert.Equal(t, 4, b.counts.eviction(Blocked))
}

func TestOtherEvictionErrors(t *testing.T) {
	b := start(t, quayOnly, &open{})
	// The bed names its Pods p1, p2, ... with UIDs uid-1, uid-2, ...
	b.evictor.fail = func(uid types.UID) error {
		switch uid {
		case "uid-1":
			return apierrors.NewNotFound(corev1.Resource("pods"), "p1")
		case "uid-2": // the UID precondition: a Pod of the same name, made again
			old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p2"}}
			again := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "p2", UID: "uid-2-again"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "quay.io/org/b:1"}}}}
			if err := b.replace(old, again); err != nil {
				return err
			}
			return apierrors.NewConflict(corev1.Resource("pods"), "p2", errors.New("precondition failed: UID"))
		}
		return apierrors.NewInternalError(errors.New("etcd is sad"))
	}
	gone := b.pod("app", "ReplicaSet", "quay.io/org/a:1", ReasonErrImagePull)
	replaced := b.pod("app", "StatefulSet", "quay.io/org/b:1", ReasonErrImagePull)
	broken := b.pod("app", "ReplicaSet", "quay.io/org/c:1", ReasonErrImagePull)
	require.Equal(t, types.UID("uid-3"), broken.UID)
	require.Eventually(t, func() bool { return b.evictor.count(broken.UID) == 1 }, eventually, tick)
	b.waitForRetry()
	b.clock.Step(5 * time.Second)
	require.Eventually(t, func() bool { return b.evictor.count(broken.UID) == 2 }, eventually, tick, "a failure is tried again")
	b.settle(3)
	assert.Equal(t, 1, b.evictor.count(gone.UID), "a Pod that is gone is not tried again")
	assert.Equal(t, 1, b.evictor.count(replaced.UID), "nor one made again under its name")
	assert.Empty(t, b.events.of(gone.UID))
	assert.Empty(t, b.events.of(broken.UID), "no Event for a failure of regcred's own")
	assert.Equal(t, 2, b.counts.eviction(Failed))
	assert.Zero(t, b.counts.eviction(Evicted))
}

// The API server answers 409 too when its own retries of the eviction of
// a Pod that keeps changing run out: the Pod is still there (the cache
// holds its UID), and it is tried again.
func TestAConflictOnAPodStillThereIsRetried(t *testing.T) {
	b := start(t, quayOnly, &open{})
	var tries atomic.Int32
	b.evictor.fail = func(uid types.UID) error {
		switch uid {
		case "uid-2":
			// The UID precondition, the cache not showing the new Pod yet.
			return apierrors.NewConflict(corev1.Resource("pods"), "p2", errors.New("Precondition failed: UID in precondition: uid-2, UID in object meta: uid-9"))
		case "uid-3":
			// The same, in the words of the eviction's own check
			// (k8s.io/apiserver's rest.BeforeDelete).
			return apierrors.NewConflict(corev1.Resource("pods"), "p3", errors.New("the UID in the precondition (uid-3) does not match the UID in record (uid-8). The object might have been deleted and then recreated"))
		}
		if tries.Add(1) == 1 {
			return apierrors.NewConflict(corev1.Resource("pods"), "p1", errors.New("the object has been modified"))
		}
		return nil
	}
	p := b.pod("app", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull)
	lagging := b.owned("app", "StatefulSet", "db", "quay.io/org/db:1", ReasonErrImagePull)
	again := b.owned("app", "StatefulSet", "cache", "quay.io/org/cache:1", ReasonErrImagePull)
	require.Equal(t, types.UID("uid-3"), again.UID)
	require.Eventually(t, func() bool { return b.evictor.count(lagging.UID) == 1 }, eventually, tick)
	require.Eventually(t, func() bool { return b.evictor.count(again.UID) == 1 }, eventually, tick)
	require.Eventually(t, func() bool { return b.evictor.count(p.UID) == 1 }, eventually, tick)
	b.waitForRetry()
	b.clock.Step(5 * time.Second)
	require.Eventually(t, func() bool { return b.counts.eviction(Evicted) == 1 }, eventually, tick, "p=%d lagging=%d again=%d failed=%d", b.evictor.count(p.UID), b.evictor.count(lagging.UID), b.evictor.count(again.UID), b.counts.eviction(Failed))
	assert.Equal(t, 2, b.evictor.count(p.UID))
	b.settle(3)
	assert.Equal(t, 1, b.evictor.count(lagging.UID), "a Pod made again under its name is not tried again")
	assert.Equal(t, 1, b.evictor.count(again.UID), "whichever check refused it")
	assert.Equal(t, 1, b.counts.eviction(Failed), "the conflict tried again, not the Pods made again")
}

// Evictions go through the limiter, one wait each; Events do not.
func TestEvictionsArePaced(t *testing.T) {
	g := &gate{tokens: make(chan struct{})}
	b := start(t, quayOnly, g)
	bare := b.pod("app", "", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(bare.UID)) == 1 }, eventually, tick, "an Event needs no token")
	var pods []*corev1.Pod
	for range 3 {
		pods = append(pods, b.pod("app", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull))
	}
	// Both workers wait for a token, and the third Pod is queued: the
	// controller saw each Pod before evicting any (one of the controller's
	// Pods it saw only after evicting another would be taken for a
	// replacement).
	require.Eventually(t, func() bool { return g.waiting.Load() == 2 && b.c.current().queue.Len() == 1 }, eventually, tick)
	assert.Zero(t, b.evictor.total(), "nothing evicted without a token")
	for n := 1; n <= 3; n++ {
		g.tokens <- struct{}{}
		require.Eventually(t, func() bool { return b.evictor.total() == n }, eventually, tick)
		b.settle(4)
		assert.Equal(t, n, b.evictor.total(), "one eviction per token")
	}
	for _, p := range pods {
		assert.Equal(t, 1, b.evictor.count(p.UID))
	}
}

// What the controller remembers of a Pod goes with the Pod.
func TestForgetsPodsThatAreGone(t *testing.T) {
	b := start(t, quayOnly, &open{})
	bare := b.pod("app", "", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return len(b.events.of(bare.UID)) == 1 }, eventually, tick)
	term := b.c.current()
	term.mu.Lock()
	require.Len(t, term.acted, 1)
	term.mu.Unlock()
	require.NoError(t, b.cs.CoreV1().Pods("app").Delete(t.Context(), bare.Name, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		term.mu.Lock()
		defer term.mu.Unlock()
		return len(term.acted) == 0
	}, eventually, tick)
}

func TestDefaults(t *testing.T) {
	c := &Controller{}
	c.defaults()
	assert.InDelta(t, 1, c.EvictionsPerSecond, 0)
	assert.Equal(t, 1, c.EvictionBurst, "no more evictions in a second than the pace")
	assert.Equal(t, 5*time.Second, c.RetryBase)
	assert.Equal(t, 5*time.Minute, c.RetryMax)
	assert.Equal(t, 10*time.Minute, c.ReplacementWindow)
	c = &Controller{EvictionsPerSecond: 0.2}
	c.defaults()
	assert.Equal(t, 1, c.EvictionBurst)
	c = &Controller{EvictionsPerSecond: 5}
	c.defaults()
	assert.Equal(t, 1, c.EvictionBurst, "a burst of 5 would let 9 through in one second")
	// A pace that is not a number is none: the default.
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		c = &Controller{EvictionsPerSecond: v}
		c.defaults()
		assert.InDelta(t, 1, c.EvictionsPerSecond, 0, "%g", v)
		assert.Equal(t, 1, c.EvictionBurst, "%g", v)
	}

	// Not leading: nothing to do, nothing to panic about.
	c.ConfigChanged()
	c.NamespaceChanged("app")
	assert.True(t, c.NeedLeaderElection())
}

func TestBlockedByBudget(t *testing.T) {
	msg, ok := blockedByBudget(budgetRefusal())
	assert.True(t, ok)
	assert.Contains(t, msg, "disruption budget web")
	// API priority and fairness also answers 429, without the cause.
	_, ok = blockedByBudget(apierrors.NewTooManyRequests("slow down", 1))
	assert.False(t, ok)
	_, ok = blockedByBudget(apierrors.NewForbidden(corev1.Resource("pods"), "p", errors.New("RBAC")))
	assert.False(t, ok)
	_, ok = blockedByBudget(errors.New("plain"))
	assert.False(t, ok)

	// More than one budget selects the Pod: refused until the admin
	// fixes them.
	msg, ok = blockedByBudget(&apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 500,
		Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}})
	assert.True(t, ok)
	assert.Contains(t, msg, "more than one PodDisruptionBudget")
	_, ok = blockedByBudget(apierrors.NewInternalError(errors.New("etcd is sad")))
	assert.False(t, ok)
	// Older API servers: a 403 about the budget, without the cause.
	msg, ok = blockedByBudget(apierrors.NewForbidden(schema.GroupResource{Group: "policy", Resource: "poddisruptionbudget"}, "web", errors.New("pdb disruptions allowed is negative")))
	assert.True(t, ok)
	assert.Contains(t, msg, "web")
}

// A namespace's label change holds back the evictions of its own Pods
// only: namespaces that change all the time elsewhere (CI) hold nothing.
func TestANamespaceChangeHoldsItsOwnPodsOnly(t *testing.T) {
	b := start(t, quayOnly, &open{})
	b.c.NamespaceChanged("other")
	p := b.pod("app", "ReplicaSet", "quay.io/org/web:1", ReasonErrImagePull)
	require.Eventually(t, func() bool { return b.evictor.count(p.UID) == 1 }, eventually, tick, "not held by another namespace's change")
	b.c.NamespaceChanged("app")
	q := b.owned("app", "ReplicaSet", "api", "quay.io/org/api:1", ReasonErrImagePull)
	b.settle(2)
	assert.Zero(t, b.evictor.count(q.UID), "held by its own namespace's change")
	b.waitForRetry()
	b.clock.Step(b.c.Settle)
	require.Eventually(t, func() bool { return b.evictor.count(q.UID) == 1 }, eventually, tick)
}

// deleting is Namespaces whose read of the labels takes until the Pod
// named has gone from the cache: the Pod goes while it is decided on.
type deleting struct {
	b    *bed
	name string
}

func (d deleting) NamespaceLabels(ctx context.Context, ns string) (map[string]string, error) {
	_ = d.b.cs.CoreV1().Pods(ns).Delete(ctx, d.name, metav1.DeleteOptions{})
	for {
		if _, exists, _ := d.b.c.current().store.GetByKey(ns + "/" + d.name); !exists {
			return map[string]string{}, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// A Pod that goes while it is decided on gets no Event, and nothing of it
// is remembered for the rest of the term.
func TestAPodGoneDuringTheDecisionIsLeft(t *testing.T) {
	b := start(t, quayOnly, &open{})
	b.c.Namespaces = deleting{b: b, name: "p1"}
	p := b.pod("app", "", "quay.io/org/web:1", ReasonErrImagePull)
	require.Equal(t, "p1", p.Name)
	b.settle(0)
	assert.Empty(t, b.events.of(p.UID))
	term := b.c.current()
	term.mu.Lock()
	defer term.mu.Unlock()
	assert.Empty(t, term.acted, "what is remembered of a Pod goes with it")
}
