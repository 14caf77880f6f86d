package recovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	// GaveUp: not evicted, nor will it be by this leader: its
	// controller made it after regcred evicted one of its Pods for
	// lacking the same pull secret, and the webhook did not give it
	// either (see EventGaveUp).
	GaveUp EvictionResult = "gave-up"
)

// Controller finds Pods whose image pull failed for lack of a pull secret
// that regcred would give them now (their registry was configured, or its
// policy changed, after they were admitted; or they were admitted while
// regcred was down), and evicts those a controller recreates, so that the
// new Pod is admitted with the secret. imagePullSecrets cannot be changed
// on an existing Pod: a bare Pod only gets an Event. It runs on the leader,
// and acts on a Pod at most once (per leadership term for the Event of a
// bare Pod); it never acts on a Pod that carries the secret. It does not
// evict a Pod that its controller made within ReplacementWindow of
// evicting another of its Pods for lacking the same pull secret: the
// webhook did not give it the secret, and would not give it to the next
// one either (per leadership term).
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
	// EvictionsPerSecond and EvictionBurst bound the evictions (default 1,
	// and 1: evictions evenly spaced, no more than EvictionsPerSecond in
	// any second; a larger burst lets burst+rate-1 through in one).
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
	// ReplacementWindow is how long, after it evicted a controller's Pod
	// for lacking a pull secret or after that Pod went, regcred takes the
	// Pods the controller makes for replacements of it: one that lacks
	// the same secret is not evicted (default 10m). It must cover the time
	// a controller takes to make the replacement: a ReplicaSet makes it at
	// once, a StatefulSet or DaemonSet once the evicted Pod is gone (the
	// window starts again then), a Job after its backoff for failed Pods,
	// at most 6 minutes. It is also how long regcred remembers a
	// controller after its last eviction.
	ReplacementWindow time.Duration

	// limiter paces evictions; nil means one from EvictionsPerSecond.
	limiter waiter
	// clock times retries and settling; nil means the real one.
	clock clock.WithTicker

	mu   sync.Mutex
	term *term
	// settled is when the last config change has had Settle to reach
	// every replica; nsSettled, the last label change of a namespace.
	settled   time.Time
	nsSettled map[string]time.Time
}

// waiter paces evictions (a rate.Limiter).
type waiter interface {
	Wait(ctx context.Context) error
}

// term is what the controller holds while it leads.
type term struct {
	// store is indexed by namespace.
	store cache.Indexer
	queue workqueue.TypedRateLimitingInterface[string]

	// clock times what is remembered of owners; window is
	// ReplacementWindow.
	clock  clock.PassiveClock
	window time.Duration

	mu sync.Mutex
	// acted says what was done to each Pod, by UID; an entry goes when
	// its Pod does.
	acted map[types.UID]*acted
	// owners are the controllers whose Pods were evicted, by UID, and
	// made marks the Pods they made since without such a secret
	// (owners.go); an owner goes after its window, a mark with its Pod.
	owners    map[types.UID]*owner
	made      map[types.UID]made
	nextSweep time.Time
}

type acted struct {
	// evicted: the eviction succeeded. told: the Event of a Pod nothing
	// recreates was recorded. blockedTold: the Event of a refused
	// eviction was. gaveUp: the Pod is a replacement that lacks the
	// secret again, not to be evicted.
	evicted, told, blockedTold, gaveUp bool
}

// NeedLeaderElection is true: only the leader evicts.
func (c *Controller) NeedLeaderElection() bool { return true }

// ConfigChanged looks again, after Settle, at every Pod whose pull failed.
// Called when not leading, it only holds evictions back until then: a new
// leader looks at every Pod when it starts.
func (c *Controller) ConfigChanged() {
	t := c.changed("")
	if t == nil {
		return
	}
	c.enqueueFailing(t, "", c.settle())
}

// NamespaceChanged looks again, after Settle, at the Pods of a namespace
// whose labels changed: the other replicas' caches of namespaces may not
// have the change yet.
func (c *Controller) NamespaceChanged(namespace string) {
	t := c.changed(namespace)
	if t == nil {
		return
	}
	c.enqueueFailing(t, namespace, c.settle())
}

// changed notes a change of the config (namespace "") or of a namespace's
// labels, after which no Pod it concerns is evicted until Settle has
// passed, and returns the current term.
func (c *Controller) changed(namespace string) *term {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	at := now.Add(c.settle())
	if namespace == "" {
		c.settled = at
		return c.term
	}
	if c.nsSettled == nil {
		c.nsSettled = map[string]time.Time{}
	}
	maps.DeleteFunc(c.nsSettled, func(_ string, t time.Time) bool { return !t.After(now) })
	c.nsSettled[namespace] = at
	return c.term
}

// untilSettled returns how long the evictions of a namespace's Pods wait
// still for the last change of the config or of the namespace's labels to
// reach every replica: a Pod whose pull fails just after such a change
// (its event comes at once) waits as the Pods queued by the change do.
func (c *Controller) untilSettled(namespace string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := c.settled
	if t := c.nsSettled[namespace]; t.After(at) {
		at = t
	}
	return at.Sub(c.now())
}

// settle is Settle, or its default. Settle is read, never defaulted in
// place: changes are noted before Start and while it runs.
func (c *Controller) settle() time.Duration {
	if c.Settle <= 0 {
		return 2 * time.Second
	}
	return c.Settle
}

func (c *Controller) now() time.Time {
	if c.clock != nil {
		return c.clock.Now()
	}
	return time.Now()
}

func (c *Controller) current() *term {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.term
}

// enqueueFailing queues the Pods (of namespace, or all) whose pull failed.
func (c *Controller) enqueueFailing(t *term, namespace string, after time.Duration) {
	var objs []any
	if namespace == "" {
		objs = t.store.List()
	} else {
		objs, _ = t.store.ByIndex(cache.NamespaceIndex, namespace)
	}
	for _, obj := range objs {
		p, ok := obj.(*Pod)
		if !ok || !candidate(p) {
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
	var clk clock.PassiveClock = clock.RealClock{}
	if c.clock != nil {
		clk = c.clock
	}
	inf := c.Informer()
	t := &term{
		store: inf.GetIndexer(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](c.RetryBase, c.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "recovery", Clock: c.clock}),
		clock:  clk,
		window: c.ReplacementWindow,
		acted:  map[types.UID]*acted{},
		owners: map[types.UID]*owner{},
		made:   map[types.UID]made{},
	}
	reg, err := inf.AddEventHandler(t.handler())
	if err != nil {
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
	// Until the handler has seen every Pod the cache starts with: one it
	// saw only after evicting another of its controller's Pods would be
	// taken for a replacement.
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
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
	// Not more than 0 includes NaN, which a comparison never catches.
	if !(c.EvictionsPerSecond > 0) || math.IsInf(c.EvictionsPerSecond, 0) {
		c.EvictionsPerSecond = 1
	}
	if c.EvictionBurst <= 0 {
		c.EvictionBurst = 1
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = max(c.RetryBase, 5*time.Minute)
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.ReplacementWindow <= 0 {
		c.ReplacementWindow = 10 * time.Minute
	}
}

// handler queues the Pods whose pull failed, marks the Pods made by a
// controller whose Pods were evicted, and forgets what was done to a Pod
// that is gone.
func (t *term) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			p, ok := obj.(*Pod)
			if !ok {
				return
			}
			t.added(p)
			if candidate(p) {
				t.queue.Add(key(p))
			}
		},
		// Only a change of what the decision reads: the kubelet flips a
		// waiting reason between ErrImagePull and ImagePullBackOff at each
		// try, which must not cut short the backoff of a refused eviction.
		UpdateFunc: func(oldObj, obj any) {
			old, _ := oldObj.(*Pod)
			p, ok := obj.(*Pod)
			if !ok {
				return
			}
			// A StatefulSet's Pod made again under the same name, when
			// the cache missed the deletion in between.
			if old != nil && old.UID != p.UID {
				t.removed(old)
				t.added(p)
			}
			if candidate(p) && (old == nil || !candidate(old) || !sameInputs(old, p)) {
				t.queue.Add(key(p))
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*Pod); ok {
				t.removed(p)
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
		case errors.Is(err, errSettling), ctx.Err() != nil:
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

// errSettling says the Pod is queued again for when a change has settled:
// its backoff, if any, stays as it is.
var errSettling = errors.New("waiting for a change to reach every replica")

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
	if wait := c.untilSettled(p.Namespace); wait > 0 {
		t.queue.AddAfter(k, wait)
		return errSettling
	}
	ns := c.namespace(ctx, p.Namespace)
	if ns.LabelsUnknown {
		// Whether the namespace opted out, or a registry's selector takes
		// it in, is unknown: never evict on that.
		return fmt.Errorf("reading the labels of namespace %s", p.Namespace)
	}
	pod, failing := p.planPod()
	lacks := plan.Lacking(c.Registries(), pod, failing, ns, c.Exclusions)
	if len(lacks) == 0 {
		return nil
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("pod", k, "uid", p.UID)
	why := c.why(p, lacks)
	a := t.actedOn(k, p.UID)
	if a == nil {
		return nil // gone while it was decided on
	}
	owner := p.Recreator()
	if owner == nil {
		if t.mark(func() bool { was := a.told; a.told = true; return !was }) {
			log.Info("Pod lacks a pull secret and nothing recreates it: left alone", "why", why)
			c.event(p, nil, "Warning", EventMissing, "Recover",
				"%s; imagePullSecrets cannot be changed on an existing Pod and no controller will recreate this one: delete it and create it again to get the secret", why)
		}
		return nil
	}
	if t.mark(func() bool { return a.evicted || a.gaveUp }) {
		return nil
	}
	if again := t.madeSince(p, lacks); len(again) > 0 {
		t.mark(func() bool { a.gaveUp = true; return true })
		c.Metrics.RecoveryEviction(GaveUp)
		log.Info("Pod made after its controller's Pods were evicted for a pull secret lacks it too: not evicted",
			"owner", ownerString(owner), "secrets", again, "why", why)
		c.event(p, owner, "Warning", EventGaveUp, "Recover", "%s; %s", gaveUpNote(p, owner, again), why)
		return nil
	}
	if err := limiter.Wait(ctx); err != nil {
		return err
	}
	secrets := secretsOf(lacks)
	t.evicting(owner, p.UID, secrets)
	err = c.Evictor.Evict(ctx, p.Namespace, p.Name, p.UID)
	t.evicted(owner, p.UID, secrets, err == nil)
	if err == nil {
		t.mark(func() bool { a.evicted = true; return true })
		c.Metrics.RecoveryEviction(Evicted)
		log.Info("Evicted Pod: its controller makes it again with the pull secret", "owner", ownerString(owner), "why", why)
		c.event(p, owner, "Normal", EventEvicted, "Evict",
			"%s; evicted so that %s makes it again with the secret", why, ownerString(owner))
		return nil
	}
	if t.gone(err, k, p.UID) {
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
	if ctx.Err() != nil {
		return err // the term ended: the next leader decides again
	}
	c.Metrics.RecoveryEviction(Failed)
	return err
}

// actedOn returns what was done to the Pod of key k with uid; nil if the
// cache no longer holds it. The informer removes a Pod from the cache
// before its delete handler takes the term's lock to forget it: an entry
// made here, under that lock, for a Pod the cache holds, is forgotten
// with it.
func (t *term) actedOn(k string, uid types.UID) *acted {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.acted[uid]
	if a == nil {
		if !t.holds(k, uid) {
			return nil
		}
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

// gone tells whether an eviction's error says the Pod of key k and uid is
// no longer there: deleted, or made again under its name with another UID.
// A conflict says so when it is the eviction's UID precondition failing,
// or when the cache no longer holds that Pod: the API server also answers
// one when its own retries of a Pod that keeps changing run out, and that
// Pod is tried again.
func (t *term) gone(err error, k string, uid types.UID) bool {
	switch {
	case apierrors.IsNotFound(err):
		return true
	case apierrors.IsConflict(err):
		return otherUID(err) || !t.holds(k, uid)
	}
	return false
}

// otherUID tells whether a conflict is the eviction's UID precondition
// failing: a Pod of the same name, made again, that the cache may not
// hold yet. The API server words it two ways: the eviction's own check
// (rest.BeforeDelete), and the storage's.
func otherUID(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "the UID in the precondition") || strings.Contains(msg, "Precondition failed: UID")
}

// holds reports whether the cache still holds the Pod of key k with uid.
func (t *term) holds(k string, uid types.UID) bool {
	obj, exists, err := t.store.GetByKey(k)
	if err != nil || !exists {
		return false
	}
	p, ok := obj.(*Pod)
	return ok && p.UID == uid
}
