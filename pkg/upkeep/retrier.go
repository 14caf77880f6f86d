package upkeep

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
)

// Ensurer makes sure a pull secret is in place in a namespace.
type Ensurer interface {
	Ensure(ctx context.Context, namespace string, w *pullsecret.Want, dryRun bool) (pullsecret.Outcome, error)
}

// Retrier creates, in the background, the pull secrets that admissions
// could not create. It runs on every replica, since any replica admits.
type Retrier struct {
	registries  func() *registries.Set
	ensurer     Ensurer
	metrics     Recorder
	maxAttempts int
	queue       workqueue.TypedRateLimitingInterface[retryKey]
}

// RetryOptions tune a Retrier.
type RetryOptions struct {
	// MaxAttempts bounds the tries of one pull secret, the first included
	// (default 8).
	MaxAttempts int
	// BaseDelay and MaxDelay bound the exponential backoff between tries
	// (default 1s and 2m).
	BaseDelay, MaxDelay time.Duration
}

// NewRetrier returns a Retrier.
func NewRetrier(set func() *registries.Set, ensurer Ensurer, metrics Recorder, o RetryOptions) *Retrier {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 8
	}
	if o.BaseDelay == 0 {
		o.BaseDelay, o.MaxDelay = time.Second, 2*time.Minute
	}
	return &Retrier{
		registries:  set,
		ensurer:     ensurer,
		metrics:     metrics,
		maxAttempts: o.MaxAttempts,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[retryKey](o.BaseDelay, o.MaxDelay),
			workqueue.TypedRateLimitingQueueConfig[retryKey]{Name: "pullsecret_retry"}),
	}
}

type retryKey struct{ namespace, registry string }

// Retry queues the registry's pull secret in namespace.
func (r *Retrier) Retry(namespace, registry string) {
	r.queue.AddRateLimited(retryKey{namespace, registry})
}

// NeedLeaderElection is false: every replica retries its own admissions.
func (r *Retrier) NeedLeaderElection() bool { return false }

// Start processes the queue until ctx ends.
func (r *Retrier) Start(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	log := logr.FromContextOrDiscard(ctx).WithName("retrier")
	for {
		k, shutdown := r.queue.Get()
		if shutdown {
			return nil
		}
		err := r.process(ctx, k)
		switch {
		case err == nil:
			r.queue.Forget(k)
		case r.queue.NumRequeues(k) >= r.maxAttempts:
			log.Error(err, "Giving up on pull secret; the next admission will try again", "namespace", k.namespace, "registry", k.registry)
			r.queue.Forget(k)
		default:
			r.queue.AddRateLimited(k)
		}
		r.queue.Done(k)
	}
}

func (r *Retrier) process(ctx context.Context, k retryKey) error {
	reg := r.registries().Get(k.registry)
	if reg == nil || !reg.Manages() {
		return nil
	}
	want, err := reg.Want(ctx)
	if err != nil {
		return err
	}
	out, err := r.ensurer.Ensure(ctx, k.namespace, want, false)
	if apierrors.IsNotFound(err) {
		return nil // the namespace is gone
	}
	if err != nil {
		return fmt.Errorf("retrying pull secret: %w", err)
	}
	r.metrics.SecretEnsured(k.registry, out)
	return nil
}
