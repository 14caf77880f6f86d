package upkeep

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"

	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

// Mender writes again, in the background, the pull secrets that an
// admission could not write and those that someone else deleted or
// changed. It runs on every replica: any replica admits, and any replica
// may be told of a change. Each write is decided again by the plan first.
type Mender struct {
	registries  func() *registries.Set
	store       Store
	index       Index
	namespaces  Namespaces
	exclusions  plan.Exclusions
	metrics     Recorder
	maxAttempts int
	// retryDelay and restoreDelay are how long a key asked for waits
	// before its first try (failures wait the queue's backoff).
	retryDelay, restoreDelay time.Duration
	queue                    workqueue.TypedRateLimitingInterface[mendKey]

	// waiting are the keys queued and not taken yet, handed over to the
	// sweeps when the mender stops; each with, for a registry whose
	// credential depends on the image host (a glob ECR registry), the hosts
	// admissions asked for and the secret does not serve yet (the index
	// knows only those written). stopped is set once they are handed over:
	// a key asked for after is handed over at once.
	mu      sync.Mutex
	waiting map[mendKey][]string
	stopped bool
}

// MendOptions tune a Mender.
type MendOptions struct {
	// MaxAttempts bounds the tries of one pull secret, the first included
	// (default 8).
	MaxAttempts int
	// BaseDelay and MaxDelay bound the exponential backoff between tries
	// (default 1s and 2m).
	BaseDelay, MaxDelay time.Duration
	// RestoreDelay is how long after a change by someone else the secret
	// is written again, so that a delete has ended (default 1s).
	RestoreDelay time.Duration
}

// NewMender returns a Mender.
func NewMender(set func() *registries.Set, store Store, index Index, ns Namespaces, ex plan.Exclusions, metrics Recorder, o MendOptions) *Mender {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay == 0 {
		o.BaseDelay, o.MaxDelay = time.Second, 2*time.Minute
	}
	if o.RestoreDelay == 0 {
		o.RestoreDelay = time.Second
	}
	return &Mender{
		registries:  set,
		store:       store,
		index:       index,
		namespaces:  ns,
		exclusions:  ex,
		metrics:     metrics,
		maxAttempts: o.MaxAttempts,
		retryDelay:  o.BaseDelay,
		// A restore waits at least as long as a retry's first try.
		restoreDelay: max(o.BaseDelay, o.RestoreDelay),
		waiting:      map[mendKey][]string{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter(
				workqueue.NewTypedItemExponentialFailureRateLimiter[mendKey](o.BaseDelay, o.MaxDelay),
				restoreDelay(o.RestoreDelay)),
			workqueue.TypedRateLimitingQueueConfig[mendKey]{Name: "pullsecret_mend"}),
	}
}

type mendKey struct {
	namespace, registry string
	// exact is set for the registry's exact variant.
	exact bool
	// restore writes whatever the index says (someone else changed it).
	restore bool
	// raced writes whatever the index says too: this replica's rewrite
	// raced with another's, whose Secret write may have landed first
	// (RetryEntry).
	raced bool
}

func (k mendKey) entry() secretstore.Entry {
	return secretstore.Entry{Namespace: k.namespace, Registry: k.registry, Exact: k.exact}
}

// restoreDelay holds restores back a fixed time, retries not at all.
type restoreDelay time.Duration

func (d restoreDelay) When(k mendKey) time.Duration {
	if k.restore {
		return time.Duration(d)
	}
	return 0
}
func (restoreDelay) Forget(mendKey)          {}
func (restoreDelay) NumRequeues(mendKey) int { return 0 }

// Retry queues a pull secret an admission could not write, with the
// image hosts it must serve (for a registry whose credential depends on
// the host; nil for others).
func (m *Mender) Retry(namespace, secret string, hosts []string) {
	m.add(namespace, secret, false, hosts)
}

// RetryEntry queues the pull secret of an index entry, to be written
// again whatever the index says, serving the entry's hosts: one whose
// rewrite raced with another replica's (secretstore.Store's Raced).
func (m *Mender) RetryEntry(e secretstore.Entry) {
	m.enqueue(mendKey{namespace: e.Namespace, registry: e.Registry, exact: e.Exact, raced: true}, e.Hosts)
}

// Restore queues a pull secret someone else deleted or changed.
func (m *Mender) Restore(namespace, secret string) { m.add(namespace, secret, true, nil) }

func (m *Mender) add(namespace, secret string, restore bool, hosts []string) {
	registry, exact, ok := registries.ParseSecretName(secret)
	if !ok {
		return
	}
	m.enqueue(mendKey{namespace: namespace, registry: registry, exact: exact, restore: restore}, hosts)
}

// enqueue queues k, to serve hosts besides. Once the mender has stopped
// (the webhook drains its last admissions after), k is handed over to the
// leader's sweeps at once instead: a restore is the hourly resync's.
func (m *Mender) enqueue(k mendKey, hosts []string) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		if !k.restore {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			m.handOver(ctx, k, hosts)
		}
		return
	}
	// Noted waiting with the stop's check: the stop's hand-over sees k, or
	// k sees the stop.
	_, queued := m.waiting[k]
	m.waitLocked(k, hosts)
	m.mu.Unlock()
	if queued {
		// Waiting already (its first delay, or the backoff after a
		// failure): an admission asking again does not bring it forward.
		return
	}
	// Not AddRateLimited: a key asked for is no failure of the mender's,
	// and each admission asking for it would use up its attempts.
	if k.restore {
		m.queue.AddAfter(k, m.restoreDelay)
	} else {
		m.queue.AddAfter(k, m.retryDelay)
	}
}

// waitLocked notes that k is queued, to serve hosts besides those noted;
// m.mu is held.
func (m *Mender) waitLocked(k mendKey, hosts []string) {
	m.waiting[k] = pullsecret.UnionHosts(m.waiting[k], hosts)
}

// take notes that k is taken from the queue, and returns the hosts it
// must serve.
func (m *Mender) take(k mendKey) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	hosts := m.waiting[k]
	delete(m.waiting, k)
	return hosts
}

// NeedLeaderElection is false: every replica mends what it was told of.
func (m *Mender) NeedLeaderElection() bool { return false }

// Start processes the queue until ctx ends. What is still queued then
// (a retry waiting for its backoff, a write an admission asked for just
// before) is handed over to the leader's sweeps.
func (m *Mender) Start(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		m.queue.ShutDown()
	}()
	log := logr.FromContextOrDiscard(ctx).WithName("mender")
	for {
		k, shutdown := m.queue.Get()
		if shutdown {
			m.handOverWaiting(ctx)
			return nil
		}
		if ctx.Err() != nil {
			m.queue.Done(k) // stopping: handed over below
			continue
		}
		// Taken, as its hosts are: an admission that asks for k again
		// meanwhile queues it again.
		hosts := m.take(k)
		err := m.process(ctx, k, hosts)
		if err != nil {
			// Also when the stop cut the try short: it may have been the
			// last one.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			m.handOver(hctx, k, hosts)
			cancel()
		}
		switch {
		case err == nil:
			m.queue.Forget(k)
		case m.queue.NumRequeues(k)+1 >= m.maxAttempts: // the failures before this one, and this one
			log.Error(err, "Giving up on pull secret; the leader's next sweep or the next admission will try again", "namespace", k.namespace, "registry", k.registry)
			m.queue.Forget(k)
		default:
			m.mu.Lock()
			m.waitLocked(k, hosts)
			m.mu.Unlock()
			m.queue.AddRateLimited(k)
		}
		m.queue.Done(k)
	}
}

// handOverWaiting hands the keys still queued over to the sweeps, within
// 10 s of the stop: the queue is this replica's memory, which ends now.
// A restore is left to the hourly resync, which rewrites every secret.
func (m *Mender) handOverWaiting(ctx context.Context) {
	m.mu.Lock()
	m.stopped = true
	waiting := m.waiting
	m.waiting = map[mendKey][]string{}
	m.mu.Unlock()
	maps.DeleteFunc(waiting, func(k mendKey, _ []string) bool { return k.restore })
	if len(waiting) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for k, hosts := range waiting {
		m.handOver(ctx, k, hosts)
	}
	logr.FromContextOrDiscard(ctx).WithName("mender").Info("Pull secrets not written yet handed over to the leader's sweeps", "count", len(waiting))
}

// handOver records in the index, when a pull secret cannot be written,
// that it should exist and serve hosts besides those the index knows
// (Store.Pending keeps those): the queue is this replica's memory only,
// and the leader's sweeps walk the index, so the secret is written in the
// end whether this mender gives up or its replica stops. A restore's or a
// raced rewrite's entry is recorded pending even if it serves the hosts:
// what the index says of that secret is known not to hold, and admissions
// would trust it.
func (m *Mender) handOver(ctx context.Context, k mendKey, hosts []string) {
	e := k.entry()
	e.Hosts = hosts
	pending := m.store.Pending
	if k.restore || k.raced {
		pending = m.store.Stale
	}
	if err := pending(ctx, e); err != nil && ctx.Err() == nil {
		logr.FromContextOrDiscard(ctx).WithName("mender").Error(err, "Cannot hand pull secret over to the leader's sweeps; retrying it here", "namespace", k.namespace, "registry", k.registry)
	}
}

// process writes k's pull secret, serving hosts besides those its index
// entry records.
func (m *Mender) process(ctx context.Context, k mendKey, hosts []string) error {
	d, err := decide(ctx, m.registries(), m.namespaces, m.exclusions, k.namespace, k.registry)
	switch {
	case err != nil:
		return err
	case d.gone:
		return m.store.Forget(ctx, k.entry())
	case !d.wanted:
		return nil // the upkeep deletes what is no longer wanted
	}
	// The store writes the secret serving every host its index records
	// besides hosts; a registry whose credential depends on the host needs
	// them to render a secret at all (a restore carries none).
	if d.registry.PerHost() {
		if e, ok := m.index.Lookup(ctx, k.namespace, k.registry, k.exact); ok {
			hosts = pullsecret.UnionHosts(hosts, e.Hosts)
		}
	}
	want, err := d.registry.Want(ctx, registries.Need{Exact: k.exact, Hosts: hosts})
	if err != nil {
		return err
	}
	if k.restore || k.raced {
		out, err := m.store.Restore(ctx, k.namespace, want)
		if err := m.unwritable(ctx, k, err); err != nil {
			return err
		}
		switch {
		case err != nil:
		case k.restore:
			logr.FromContextOrDiscard(ctx).Info("Pull secret restored after a change by someone else", "namespace", k.namespace, "registry", k.registry, "outcome", out)
			m.metrics.SecretRestored(k.registry)
		default:
			logr.FromContextOrDiscard(ctx).V(1).Info("Pull secret written again after another replica's write raced with this one's", "namespace", k.namespace, "registry", k.registry, "outcome", out)
			m.metrics.SecretEnsured(k.registry, out)
		}
		return nil
	}
	out, err := m.store.Apply(ctx, k.namespace, want, false)
	if err := m.unwritable(ctx, k, err); err != nil {
		return fmt.Errorf("writing pull secret: %w", err)
	}
	if err == nil {
		m.metrics.SecretEnsured(k.registry, out)
	}
	return nil
}

// unwritable returns err, unless it says the secret cannot be written
// there at all: the namespace is being deleted, or a Secret of that name
// is not regcred's. Then the index forgets it and there is nothing to
// retry.
func (m *Mender) unwritable(ctx context.Context, k mendKey, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, secretstore.ErrNotManaged), isTerminating(err), apierrors.IsNotFound(err):
		return m.store.Forget(ctx, k.entry())
	}
	return err
}

// isTerminating reports whether a write failed because its namespace is
// being deleted.
func isTerminating(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "being terminated") ||
		apierrors.HasStatusCause(err, "NamespaceTerminating")
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
