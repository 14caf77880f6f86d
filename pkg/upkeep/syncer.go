package upkeep

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

// Index tells where pull secrets live (package secretstore).
type Index interface {
	// InShard returns the entries of one of secretstore.ShardNames.
	InShard(ctx context.Context, shard string) ([]secretstore.Entry, error)
	InNamespace(ctx context.Context, namespace string) ([]secretstore.Entry, error)
	Lookup(ctx context.Context, namespace, registry string, exact bool) (secretstore.Entry, bool)
}

// Syncer keeps every pull secret the index knows in step with the config.
// It runs on the leader: a credential change or a refreshed token rewrites
// them, a registry no longer wanted in a namespace has its secret deleted,
// and a namespace that is gone has its entries forgotten. Its writes are
// rate-limited on the client, so that a change across thousands of
// namespaces leaves room for admissions in the API server's priority and
// fairness.
type Syncer struct {
	Registries func() *registries.Set
	// HasConfig reports whether a good config was ever loaded (before
	// that, nothing is deleted).
	HasConfig  func() bool
	Index      Index
	Store      Store
	Namespaces Namespaces
	Exclusions plan.Exclusions
	Metrics    Recorder
	// Resync is how often every pull secret is written again whatever the
	// index says, so that one changed while no replica heard of it is
	// restored (default 1h).
	Resync time.Duration
	// WriteQPS and WriteBurst bound the syncer's writes (default 20 and 40).
	WriteQPS   float64
	WriteBurst int
	// Workers write in parallel (default: WriteQPS/4, at least 4).
	Workers int

	// limiter paces the writes; nil means one from WriteQPS and WriteBurst.
	limiter waiter

	mu    sync.Mutex
	queue workqueue.TypedInterface[syncKey]
	// sweeps asks the sweeper for a sweep; sweepForce makes it write
	// every pull secret again.
	sweeps     chan struct{}
	sweepForce bool
}

// waiter paces writes (a rate.Limiter).
type waiter interface {
	Wait(ctx context.Context) error
}

type syncKey struct {
	namespace, registry string
	exact               bool
	// force writes again whatever the index says.
	force bool
}

// NeedLeaderElection is true: one replica syncs.
func (s *Syncer) NeedLeaderElection() bool { return true }

// ConfigChanged asks for every pull secret to be checked against the
// current config. Called when not leading, it does nothing: a new leader
// checks everything when it starts.
func (s *Syncer) ConfigChanged() { s.requestSweep(false) }

// NamespaceChanged asks for a namespace's pull secrets to be checked (its
// labels changed, or it is gone).
func (s *Syncer) NamespaceChanged(namespace string) {
	q := s.current()
	if q == nil {
		return
	}
	entries, err := s.Index.InNamespace(context.Background(), namespace)
	if err != nil {
		return
	}
	for _, e := range entries {
		q.Add(syncKey{namespace: e.Namespace, registry: e.Registry, exact: e.Exact})
	}
}

func (s *Syncer) current() workqueue.TypedInterface[syncKey] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue
}

// requestSweep asks for every pull secret to be checked (force: written
// again); a request made during a sweep makes another after it.
func (s *Syncer) requestSweep(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue == nil {
		return
	}
	s.sweepForce = s.sweepForce || force
	select {
	case s.sweeps <- struct{}{}:
	default:
	}
}

// sweeper runs the sweeps asked for on sweeps (its term's) until ctx
// ends.
func (s *Syncer) sweeper(ctx context.Context, q workqueue.TypedInterface[syncKey], sweeps <-chan struct{}) {
	log := logr.FromContextOrDiscard(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweeps:
		}
		s.mu.Lock()
		force := s.sweepForce
		s.sweepForce = false
		s.mu.Unlock()
		start := time.Now()
		n, err := s.sweep(ctx, q, force)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error(err, "Cannot read the index of pull secrets; the next sweep tries again", "checked", n)
		default:
			log.Info("Every pull secret handed over to be checked against the config", "count", n, "rewriteAll", force, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}

// sweep hands every entry of the index to the workers, a shard at a time
// (the index entries of the secrets rewritten one after the other then go
// into their shard together: secretstore.Store's batches), with only a
// few waiting in the queue at once: what a sweep holds does not grow with
// the number of namespaces.
func (s *Syncer) sweep(ctx context.Context, q workqueue.TypedInterface[syncKey], force bool) (int, error) {
	n := 0
	for _, shard := range secretstore.ShardNames() {
		entries, err := s.Index.InShard(ctx, shard)
		if err != nil {
			return n, err
		}
		for _, e := range entries {
			for q.Len() >= 2*s.Workers {
				select {
				case <-ctx.Done():
					return n, ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
			q.Add(syncKey{namespace: e.Namespace, registry: e.Registry, exact: e.Exact, force: force})
			n++
		}
	}
	return n, nil
}

// Start syncs until ctx ends (the leadership with it). It can be started
// again for a later term.
func (s *Syncer) Start(ctx context.Context) error {
	if s.Resync == 0 {
		s.Resync = time.Hour
	}
	if s.WriteQPS == 0 {
		s.WriteQPS, s.WriteBurst = 20, 40
	}
	if s.Workers == 0 {
		// Enough writes in flight to reach WriteQPS while each takes up to
		// a quarter of a second.
		s.Workers = max(4, int(s.WriteQPS/4))
	}
	log := logr.FromContextOrDiscard(ctx).WithName("syncer")
	ctx = logr.NewContext(ctx, log)
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[syncKey]{Name: "pullsecret_sync"})
	sweeps := make(chan struct{}, 1)
	s.mu.Lock()
	s.queue, s.sweeps, s.sweepForce = q, sweeps, false
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.queue = nil
		s.mu.Unlock()
		q.ShutDown()
	}()
	limiter := s.limiter
	if limiter == nil {
		limiter = rate.NewLimiter(rate.Limit(s.WriteQPS), s.WriteBurst)
	}
	var wg sync.WaitGroup
	for range s.Workers {
		wg.Go(func() { s.work(ctx, q, limiter) })
	}
	// A term's sweeper ends with it: the next term's requests are its own.
	wg.Go(func() { s.sweeper(ctx, q, sweeps) })
	// A new leader checks everything: the config may have changed while
	// no replica led.
	s.requestSweep(false)
	t := time.NewTimer(time.Until(nextResync(time.Now(), s.Resync)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.ShutDown()
			wg.Wait()
			s.flush(log)
			return nil
		case <-t.C:
			log.V(1).Info("Resync: writing every pull secret again")
			s.requestSweep(true)
			t.Reset(time.Until(nextResync(time.Now(), s.Resync)))
		}
	}
}

// nextResync is when the next resync is due after now: at the clock's
// multiples of every, whichever replica leads then. Counted from each
// term's start instead, leaders that change more often than every would
// put it off for ever.
func nextResync(now time.Time, every time.Duration) time.Time {
	return now.Truncate(every).Add(every)
}

func (s *Syncer) work(ctx context.Context, q workqueue.TypedInterface[syncKey], limiter waiter) {
	log := logr.FromContextOrDiscard(ctx)
	for {
		k, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := s.sync(ctx, k, limiter); err != nil && ctx.Err() == nil {
			log.Error(err, "Cannot bring pull secret up to date; the next resync tries again", "namespace", k.namespace, "registry", k.registry)
		}
		q.Done(k)
	}
}

// flush writes what the store keeps for a batch, as the term ends.
func (s *Syncer) flush(log logr.Logger) {
	f, ok := s.Store.(interface{ Flush(context.Context) error })
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		log.Error(err, "Cannot record the last rewritten pull secrets in the index; the next leader rewrites them")
	}
}

// sync brings one pull secret in line with the config, or deletes it.
func (s *Syncer) sync(ctx context.Context, k syncKey, limiter waiter) error {
	if !s.HasConfig() {
		return nil
	}
	e, known := s.Index.Lookup(ctx, k.namespace, k.registry, k.exact)
	if !known {
		return nil
	}
	d, err := decide(ctx, s.Registries(), s.Namespaces, s.Exclusions, k.namespace, k.registry)
	if err != nil {
		return err
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", k.namespace, "registry", k.registry)
	// Only writes wait for the write budget: checking a secret that is as
	// it should be costs no API call.
	switch {
	case d.gone:
		if err := limiter.Wait(ctx); err != nil {
			return err
		}
		return s.Store.Forget(ctx, e)
	case !d.wanted || k.exact && d.registry.ExactSecretName() == "":
		if err := limiter.Wait(ctx); err != nil {
			return err
		}
		err := s.Store.Delete(ctx, e, secretName(k))
		if errors.Is(err, secretstore.ErrLeftInPlace) {
			log.Info("Pull secret left in place and forgotten: the API server's policy refuses its delete (its labels were removed, or its namespace is excluded from regcred)")
			return nil
		}
		if err != nil {
			return err
		}
		log.Info("Deleted pull secret: its registry no longer serves this namespace")
		s.Metrics.SecretDeleted(k.registry)
		return nil
	}
	want, err := d.registry.Want(ctx, registries.Need{Exact: k.exact, Hosts: e.Hosts})
	if err != nil {
		return err
	}
	if !k.force && e.Satisfies(want) {
		return nil
	}
	if err := limiter.Wait(ctx); err != nil {
		return err
	}
	var out secretstore.Outcome
	if k.force {
		out, err = s.Store.Restore(ctx, k.namespace, want)
	} else {
		out, err = s.Store.Apply(ctx, k.namespace, want, false)
	}
	if errors.Is(err, secretstore.ErrNotManaged) || isTerminating(err) {
		log.Info("Pull secret cannot be written there any more; forgotten", "reason", err.Error())
		return s.Store.Forget(ctx, e)
	}
	if err != nil {
		return err
	}
	if out != secretstore.Unchanged {
		log.V(1).Info("Pull secret brought up to date", "outcome", out)
	}
	s.Metrics.SecretEnsured(k.registry, out)
	return nil
}

// secretName is the name of a pull secret regcred made.
func secretName(k syncKey) string {
	name := config.SecretNamePrefix + k.registry
	if k.exact {
		name += pullsecret.ExactSuffix
	}
	return name
}
