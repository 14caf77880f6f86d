package recovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/registries"
)

// Namespaces tells what the plan needs of a namespace: its labels.
type Namespaces interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// EventRecorder records an Event (events.k8s.io).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Recorder counts what recovery does.
type Recorder interface {
	RecoveryEviction(result EvictionResult)
	RecoveryEvent(reason string)
}

// EvictionResult is the outcome of an eviction.
type EvictionResult string

// The eviction results.
const (
	// Evicted: the API server evicted the Pod.
	Evicted EvictionResult = "evicted"
	// Blocked: a PodDisruptionBudget forbids it now; tried again later.
	Blocked EvictionResult = "blocked"
	// Failed: any other error; tried again later.
	Failed EvictionResult = "failed"
)

// The Event reasons, on the Pod.
const (
	// EventEvicted: the Pod was evicted so that its controller makes it
	// again with the pull secret.
	EventEvicted = "EvictedForPullSecret"
	// EventMissing: a Pod nothing recreates lacks a pull secret.
	EventMissing = "PullSecretMissing"
	// EventBlocked: a PodDisruptionBudget forbids the eviction for now.
	EventBlocked = "EvictionBlocked"
)

// Controller finds Pods whose image pull failed for lack of a pull secret
// that regcred would give them now (their registry was configured, or its
// policy changed, after they were admitted; or they were admitted while
// regcred was down), and evicts those a controller recreates, so that the
// new Pod is admitted with the secret. imagePullSecrets cannot be changed
// on an existing Pod: a bare Pod only gets an Event. It runs on the leader,
// and acts on a Pod at most once (per leadership term for the Event of a
// bare Pod); it never acts on a Pod that carries the secret.
type Controller struct {
	Registries func() *registries.Set
	// HasConfig reports whether a good config was ever loaded.
	HasConfig  func() bool
	Namespaces Namespaces
	Exclusions plan.Exclusions
	// Informer makes the cache of Pods for one term of leadership
	// (NewPodInformer): only the leader holds one.
	Informer func() cache.SharedIndexInformer
	Evictor  Evictor
	Events   EventRecorder
	Metrics  Recorder
	// EvictionsPerSecond and EvictionBurst bound the evictions (default 1
	// and 2).
	EvictionsPerSecond float64
	EvictionBurst      int
	// RetryBase and RetryMax bound the exponential backoff of an eviction
	// a PodDisruptionBudget refused or that failed (default 5s and 5m).
	RetryBase, RetryMax time.Duration
	// Settle is how long after a config change the Pods are looked at, so
	// that every replica serves the new config by the time the
	// replacement Pods are admitted (default 2s).
	Settle time.Duration
	// Workers decide and evict in parallel (default 2).
	Workers int

	// limiter paces evictions; nil means one from EvictionsPerSecond.
	limiter waiter
	// clock times retries and settling; nil means the real one.
	clock clock.WithTicker

	mu   sync.Mutex
	term *term
}

// waiter paces evictions (a rate.Limiter).
type waiter interface {
	Wait(ctx context.Context) error
}

// term is what the controller holds while it leads.
type term struct {
	store cache.Store
	queue workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// acted says what was done to each Pod, by UID; an entry goes when
	// its Pod does.
	acted map[types.UID]*acted
}

type acted struct {
	// evicted: the eviction succeeded. told: the Event of a Pod nothing
	// recreates was recorded. blockedTold: the Event of a refused
	// eviction was.
	evicted, told, blockedTold bool
}

// NeedLeaderElection is true: only the leader evicts.
func (c *Controller) NeedLeaderElection() bool { return true }

// ConfigChanged looks again, after Settle, at every Pod whose pull failed.
// Called when not leading, it does nothing: a new leader looks at every Pod
// when it starts.
func (c *Controller) ConfigChanged() {
	t := c.current()
	if t == nil {
		return
	}
	c.enqueueFailing(t, "", c.Settle)
}

// NamespaceChanged looks again at the Pods of a namespace whose labels
// changed.
func (c *Controller) NamespaceChanged(namespace string) {
	t := c.current()
	if t == nil {
		return
	}
	c.enqueueFailing(t, namespace, 0)
}

func (c *Controller) current() *term {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.term
}

// enqueueFailing queues the Pods (of namespace, or all) whose pull failed.
func (c *Controller) enqueueFailing(t *term, namespace string, after time.Duration) {
	for _, obj := range t.store.List() {
		p, ok := obj.(*Pod)
		if !ok || !candidate(p) || namespace != "" && p.Namespace != namespace {
			continue
		}
		t.queue.AddAfter(key(p), after)
	}
}

// candidate tells whether a Pod may need recovery: one of its pulls
// failed, and it is not on its way out.
func candidate(p *Pod) bool { return len(p.Failing) > 0 && p.DeletionTimestamp == nil }

func key(p *Pod) string { return p.Namespace + "/" + p.Name }

// Start runs until ctx ends (the leadership with it). It can be started
// again for a later term.
func (c *Controller) Start(ctx context.Context) error {
	c.defaults()
	log := logr.FromContextOrDiscard(ctx).WithName("recovery")
	ctx = logr.NewContext(ctx, log)
	limiter := c.limiter
	if limiter == nil {
		limiter = rate.NewLimiter(rate.Limit(c.EvictionsPerSecond), c.EvictionBurst)
	}
	inf := c.Informer()
	t := &term{
		store: inf.GetStore(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](c.RetryBase, c.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "recovery", Clock: c.clock}),
		acted: map[types.UID]*acted{},
	}
	if _, err := inf.AddEventHandler(t.handler()); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// At the end of the term: stop the informer and the workers, and wait
	// for them.
	defer wg.Wait()
	defer t.queue.ShutDown()
	defer cancel()
	wg.Go(func() { inf.RunWithContext(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil // ctx ended
	}
	c.mu.Lock()
	c.term = t
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.term = nil
		c.mu.Unlock()
	}()
	log.Info("Watching for Pods whose image pull failed for lack of a pull secret", "pods", len(t.store.ListKeys()))
	for range c.Workers {
		wg.Go(func() { c.work(ctx, t, limiter) })
	}
	<-ctx.Done()
	return nil
}

func (c *Controller) defaults() {
	if c.EvictionsPerSecond <= 0 {
		c.EvictionsPerSecond = 1
	}
	if c.EvictionBurst <= 0 {
		c.EvictionBurst = max(1, int(2*c.EvictionsPerSecond))
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = max(c.RetryBase, 5*time.Minute)
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
}

// handler queues the Pods whose pull failed, and forgets what was done to
// a Pod that is gone.
func (t *term) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*Pod); ok && candidate(p) {
				t.queue.Add(key(p))
			}
		},
		// Only a change of what the decision reads: the kubelet flips a
		// waiting reason between ErrImagePull and ImagePullBackOff at each
		// try, which must not cut short the backoff of a refused eviction.
		UpdateFunc: func(oldObj, obj any) {
			old, _ := oldObj.(*Pod)
			if p, ok := obj.(*Pod); ok && candidate(p) && (old == nil || !candidate(old) || !sameInputs(old, p)) {
				t.queue.Add(key(p))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*Pod); ok {
				t.mu.Lock()
				delete(t.acted, p.UID)
				t.mu.Unlock()
			}
		},
	}
}

func (c *Controller) work(ctx context.Context, t *term, limiter waiter) {
	log := logr.FromContextOrDiscard(ctx)
	for {
		k, shutdown := t.queue.Get()
		if shutdown {
			return
		}
		err := c.recover(ctx, t, k, limiter)
		switch {
		case err == nil:
			t.queue.Forget(k)
		case ctx.Err() != nil:
		default:
			if !errors.Is(err, errBlocked) {
				log.Error(err, "Cannot evict Pod to recover its pull secret; trying again later", "pod", k)
			}
			t.queue.AddRateLimited(k)
		}
		t.queue.Done(k)
	}
}

// errBlocked is a retry after a PodDisruptionBudget refused an eviction.
var errBlocked = errors.New("eviction blocked by a PodDisruptionBudget")

// recover decides about one Pod, and evicts it or tells about it. An error
// asks for a retry with backoff.
func (c *Controller) recover(ctx context.Context, t *term, k string, limiter waiter) error {
	obj, exists, err := t.store.GetByKey(k)
	if err != nil || !exists {
		return nil
	}
	p, ok := obj.(*Pod)
	if !ok || !candidate(p) || !c.HasConfig() {
		return nil
	}
	pod, failing := p.planPod()
	lacks := plan.Lacking(c.Registries(), pod, failing, c.namespace(ctx, p.Namespace), c.Exclusions)
	if len(lacks) == 0 {
		return nil
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("pod", k, "uid", p.UID)
	why := c.why(p, lacks)
	a := t.actedOn(p.UID)
	owner := p.Recreator()
	if owner == nil {
		if t.mark(func() bool { was := a.told; a.told = true; return !was }) {
			log.Info("Pod lacks a pull secret and nothing recreates it: left alone", "why", why)
			c.event(p, nil, "Warning", EventMissing, "Recover",
				"%s; imagePullSecrets cannot be changed on an existing Pod and no controller will recreate this one: delete it and create it again to get the secret", why)
		}
		return nil
	}
	if t.mark(func() bool { return a.evicted }) {
		return nil
	}
	if err := limiter.Wait(ctx); err != nil {
		return err
	}
	err = c.Evictor.Evict(ctx, p.Namespace, p.Name, p.UID)
	if err == nil {
		t.mark(func() bool { a.evicted = true; return true })
		c.Metrics.RecoveryEviction(Evicted)
		log.Info("Evicted Pod: its controller makes it again with the pull secret", "owner", ownerString(owner), "why", why)
		c.event(p, owner, "Normal", EventEvicted, "Evict",
			"%s; evicted so that %s makes it again with the secret", why, ownerString(owner))
		return nil
	}
	if gone(err) {
		return nil
	}
	if budget, blocked := blockedByBudget(err); blocked {
		c.Metrics.RecoveryEviction(Blocked)
		log.V(1).Info("Eviction refused by a PodDisruptionBudget; trying again later", "budget", budget)
		if t.mark(func() bool { was := a.blockedTold; a.blockedTold = true; return !was }) {
			c.event(p, owner, "Warning", EventBlocked, "Evict",
				"%s; cannot evict it now, a PodDisruptionBudget forbids it (%s): trying again later", why, budget)
		}
		return errBlocked
	}
	c.Metrics.RecoveryEviction(Failed)
	return err
}

// actedOn returns what was done to the Pod with uid.
func (t *term) actedOn(uid types.UID) *acted {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.acted[uid]
	if a == nil {
		a = &acted{}
		t.acted[uid] = a
	}
	return a
}

// mark runs f under the term's lock and returns its result.
func (t *term) mark(f func() bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return f()
}

// namespace reads what the plan needs of the namespace.
func (c *Controller) namespace(ctx context.Context, name string) plan.Namespace {
	ns := plan.Namespace{Name: name}
	if c.Exclusions[name] {
		return ns
	}
	labels, err := c.Namespaces.NamespaceLabels(ctx, name)
	if err != nil {
		ns.LabelsUnknown = true
	}
	ns.Labels = labels
	return ns
}

// why says, for a person, which images failed and which pull secret of
// which registry the Pod lacks for them. It names no credential.
func (c *Controller) why(p *Pod, lacks []plan.Lack) string {
	s := ""
	for i, l := range lacks {
		if i > 0 {
			s += "; "
		}
		f := p.failureOf(l.Image)
		s += fmt.Sprintf("image %q of container %q failed to pull (%s) and registry %q serves it, but the Pod lacks its pull secret %q",
			l.Image, f.Container, f.Reason, l.Registry.Name, l.Secret)
	}
	return s
}

// maxNote bounds an Event's note: the API server refuses more than 1 kB.
const maxNote = 1000

// event records an Event on the Pod, related to its owner if any.
func (c *Controller) event(p *Pod, owner *metav1.OwnerReference, eventtype, reason, action, note string, args ...any) {
	var related runtime.Object
	if owner != nil {
		related = &corev1.ObjectReference{APIVersion: owner.APIVersion, Kind: owner.Kind, Namespace: p.Namespace, Name: owner.Name, UID: owner.UID}
	}
	regarding := &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
	msg := fmt.Sprintf(note, args...)
	if len(msg) > maxNote {
		msg = msg[:maxNote-3] + "..."
	}
	c.Events.Eventf(regarding, related, eventtype, reason, action, "%s", msg)
	c.Metrics.RecoveryEvent(reason)
}

// gone tells whether the Pod evicted is no longer there: deleted, or made
// again under its name with another UID.
func gone(err error) bool { return apierrors.IsNotFound(err) || apierrors.IsConflict(err) }
