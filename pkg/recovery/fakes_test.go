package recovery

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
)

// Fakes for the controller's unit tests: its Pods come from a fake
// clientset through the real informer and transform; evictions, Events,
// metrics and pacing are recorded.

const (
	quayOnly = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: quay, type: quay, url: quay.io, username: {value: u}, password: {value: p}}
`
	quayAndHub = quayOnly + `- {name: hub, type: docker, url: docker.io/myorg, username: {value: u}, password: {value: p}}
`
)

func load(t *testing.T, yaml string) *registries.Set {
	t.Helper()
	set, err := registries.Load(t.Context(), []byte(yaml), registries.Options{ClusterName: "test", StoredIn: config.InSecret,
		Types: registrytype.Builtin(registrytype.Deps{})})
	require.NoError(t, err)
	return set
}

type evictor struct {
	mu    sync.Mutex
	calls []types.UID
	// fail answers an eviction; nil evicts.
	fail func(uid types.UID) error
}

func (e *evictor) Evict(_ context.Context, _, _ string, uid types.UID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, uid)
	if e.fail != nil {
		return e.fail(uid)
	}
	return nil
}

func (e *evictor) count(uid types.UID) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if c == uid {
			n++
		}
	}
	return n
}

func (e *evictor) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

// budgetRefusal is what the API server answers when a PodDisruptionBudget
// forbids an eviction.
func budgetRefusal() error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget web needs 1 healthy pods and has 1 currently",
	})
	return err
}

type event struct {
	regarding, related *corev1.ObjectReference
	eventtype, reason  string
	note               string
}

type events struct {
	mu  sync.Mutex
	all []event
}

func (e *events) Eventf(regarding, related runtime.Object, eventtype, reason, _, note string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := event{regarding: regarding.(*corev1.ObjectReference), eventtype: eventtype, reason: reason, note: fmt.Sprintf(note, args...)}
	if related != nil {
		ev.related = related.(*corev1.ObjectReference)
	}
	e.all = append(e.all, ev)
}

func (e *events) of(uid types.UID) []event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []event
	for _, ev := range e.all {
		if ev.regarding.UID == uid {
			out = append(out, ev)
		}
	}
	return out
}

type counts struct {
	mu        sync.Mutex
	evictions map[EvictionResult]int
	events    map[string]int
}

func (c *counts) RecoveryEviction(r EvictionResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evictions[r]++
}

func (c *counts) RecoveryEvent(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[reason]++
}

func (c *counts) eviction(r EvictionResult) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evictions[r]
}

// gate paces evictions by hand: each Wait takes a token the test gives.
type gate struct {
	tokens  chan struct{}
	waiting atomic.Int32
}

func (g *gate) Wait(ctx context.Context) error {
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-g.tokens:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// open lets every eviction through.
type open struct{ waits atomic.Int32 }

func (o *open) Wait(context.Context) error { o.waits.Add(1); return nil }

// namespaceLabels are the labels of the namespaces that exist.
type namespaceLabels struct {
	mu     sync.Mutex
	labels map[string]map[string]string
}

func (n *namespaceLabels) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.labels[name]
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	return l, nil
}

func (n *namespaceLabels) set(name string, labels map[string]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.labels[name] = labels
}

// bed is a controller leading, over a fake clientset.
type bed struct {
	t       *testing.T
	cs      *fake.Clientset
	c       *Controller
	set     atomic.Pointer[registries.Set]
	evictor *evictor
	events  *events
	counts  *counts
	clock   *clocktesting.FakeClock
	uids    atomic.Int32
	// namespaces are the labels the controller reads.
	namespaces *namespaceLabels
}

// start starts a controller with the config yaml; limiter paces it.
func start(t *testing.T, yaml string, limiter waiter) *bed {
	t.Helper()
	b := &bed{t: t, cs: fake.NewClientset(), evictor: &evictor{}, events: &events{},
		counts: &counts{evictions: map[EvictionResult]int{}, events: map[string]int{}}, clock: clocktesting.NewFakeClock(time.Now())}
	b.set.Store(load(t, yaml))
	b.namespaces = &namespaceLabels{labels: map[string]map[string]string{
		"app": {"kubernetes.io/metadata.name": "app"}, "quiet": {plan.LabelInject: "false"},
	}}
	b.c = &Controller{
		Registries: b.set.Load,
		HasConfig:  func() bool { return true },
		Namespaces: b.namespaces,
		Exclusions: plan.Exclusions{"kube-system": true, "regcred": true},
		Informer:   func() cache.SharedIndexInformer { return NewPodInformer(b.cs) },
		Evictor:    b.evictor,
		Events:     b.events,
		Metrics:    b.counts,
		RetryBase:  5 * time.Second,
		RetryMax:   time.Minute,
		Settle:     2 * time.Second,
		limiter:    limiter,
		clock:      b.clock,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.c.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		require.Nil(t, b.c.current(), "a term ends with the leadership")
	})
	require.Eventually(t, func() bool { return b.c.current() != nil }, 10*time.Second, time.Millisecond, "the controller did not start")
	return b
}

// pod creates a Pod running image, owned by a controller of kind (apps or
// batch) unless kind is empty, with pullSecrets; failing is the waiting
// reason of its container, "" for none.
func (b *bed) pod(ns, kind, image, failing string, pullSecrets ...string) *corev1.Pod {
	b.t.Helper()
	return b.owned(ns, kind, "owner", image, failing, pullSecrets...)
}

// owned creates a Pod as pod does, of the controller named owner (its UID
// is owner-uid).
func (b *bed) owned(ns, kind, owner, image, failing string, pullSecrets ...string) *corev1.Pod {
	b.t.Helper()
	p, err := b.cs.CoreV1().Pods(ns).Create(b.t.Context(), b.podObject(ns, kind, owner, image, failing, pullSecrets...), metav1.CreateOptions{})
	require.NoError(b.t, err)
	return p
}

// podObject returns the Pod that owned creates, with the next name and
// UID.
func (b *bed) podObject(ns, kind, owner, image, failing string, pullSecrets ...string) *corev1.Pod {
	n := b.uids.Add(1)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%d", n))},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
	if kind != "" {
		group := "apps/v1"
		if kind == "Job" {
			group = "batch/v1"
		}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: group, Kind: kind, Name: owner, UID: types.UID(owner + "-uid"), Controller: ptr.To(true)}}
	}
	for _, s := range pullSecrets {
		p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	if failing != "" {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: failing}}}}
	}
	return p
}

// remove deletes the Pod, as the eviction does, and waits until the
// controller's cache no longer holds it.
func (b *bed) remove(p *corev1.Pod) {
	b.t.Helper()
	require.NoError(b.t, b.cs.CoreV1().Pods(p.Namespace).Delete(b.t.Context(), p.Name, metav1.DeleteOptions{}))
	require.Eventually(b.t, func() bool {
		_, exists, _ := b.c.current().store.GetByKey(p.Namespace + "/" + p.Name)
		return !exists
	}, 10*time.Second, time.Millisecond)
}

// replace deletes old and creates r, as a controller does when its Pod is
// evicted, and waits until the controller's cache holds r. It is called
// from a worker, where the test's require must not be.
func (b *bed) replace(old, r *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.cs.CoreV1().Pods(old.Namespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if _, err := b.cs.CoreV1().Pods(r.Namespace).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		return err
	}
	// The old Pod has the same key: wait for the new one's UID.
	for {
		if obj, exists, _ := b.c.current().store.GetByKey(key(View(r))); exists && obj.(*Pod).UID == r.UID {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cache did not get Pod %s: %w", r.Name, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// setReason sets the waiting reason of the Pod's container, as the
// kubelet does at each pull.
func (b *bed) setReason(p *corev1.Pod, reason string) {
	b.t.Helper()
	p = p.DeepCopy()
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
	_, err := b.cs.CoreV1().Pods(p.Namespace).UpdateStatus(b.t.Context(), p, metav1.UpdateOptions{})
	require.NoError(b.t, err)
}

// settle waits until the controller has had every chance to act on what
// it was told: the cache holds the Pods and nothing is queued or being
// worked on.
func (b *bed) settle(pods int) {
	b.t.Helper()
	t := b.c.current()
	require.Eventually(b.t, func() bool {
		return len(t.store.ListKeys()) == pods && t.queue.Len() == 0
	}, 10*time.Second, time.Millisecond)
	// A worker may hold an item it took; let it finish.
	time.Sleep(50 * time.Millisecond)
}

// evictedOnceSettled checks that p, queued after a change, is evicted
// once Settle has passed since the change and not a moment before.
func (b *bed) evictedOnceSettled(p *corev1.Pod) {
	b.t.Helper()
	b.waitForRetry()
	b.clock.Step(b.c.Settle - time.Millisecond)
	b.settle(len(b.c.current().store.ListKeys()))
	require.Zero(b.t, b.evictor.count(p.UID), "not before the change settles")
	b.clock.Step(time.Millisecond)
	require.Eventually(b.t, func() bool { return b.evictor.count(p.UID) == 1 }, 10*time.Second, time.Millisecond)
}

// waitForRetry waits until the queue holds a retry for later, so that a
// step of the fake clock reaches it.
func (b *bed) waitForRetry() {
	b.t.Helper()
	require.Eventually(b.t, func() bool { return b.clock.Waiters() >= 2 }, 10*time.Second, time.Millisecond,
		"no retry waits (the queue's heartbeat and a retry's timer)")
}
