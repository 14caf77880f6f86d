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
	All(ctx context.Context) ([]secretstore.Entry, error)
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
	// Workers write in parallel (default 4).
	Workers int

	// limiter paces the writes; nil means one from WriteQPS and WriteBurst.
	limiter waiter

	mu    sync.Mutex
	queue workqueue.TypedInterface[syncKey]
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
func (s *Syncer) ConfigChanged() { s.enqueueAll(context.Background(), false) }

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

func (s *Syncer) enqueueAll(ctx context.Context, force bool) int {
	q := s.current()
	if q == nil {
		return 0
	}
	entries, err := s.Index.All(ctx)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Cannot read the index of pull secrets")
		return 0
	}
	for _, e := range entries {
		q.Add(syncKey{namespace: e.Namespace, registry: e.Registry, exact: e.Exact, force: force})
	}
	return len(entries)
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
		s.Workers = 4
	}
	log := logr.FromContextOrDiscard(ctx).WithName("syncer")
	ctx = logr.NewContext(ctx, log)
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[syncKey]{Name: "pullsecret_sync"})
	s.mu.Lock()
	s.queue = q
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
	// A new leader checks everything: the config may have changed while
	// no replica led.
	log.Info("Checking every pull secret against the config", "count", s.enqueueAll(ctx, false))
	t := time.NewTicker(s.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.ShutDown()
			wg.Wait()
			return nil
		case <-t.C:
			log.V(1).Info("Resync: writing every pull secret again", "count", s.enqueueAll(ctx, true))
		}
	}
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
	if err := limiter.Wait(ctx); err != nil {
		return err
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", k.namespace, "registry", k.registry)
	switch {
	case d.gone:
		return s.Store.Forget(ctx, e)
	case !d.wanted || k.exact && d.registry.ExactSecretName() == "":
		if err := s.Store.Delete(ctx, e, secretName(k)); err != nil {
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
	var out secretstore.Outcome
	switch {
	case k.force:
		out, err = s.Store.Restore(ctx, k.namespace, want)
	case e.Satisfies(want):
		return nil
	default:
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
