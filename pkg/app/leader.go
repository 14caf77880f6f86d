package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// leaderGroup runs the leader's workers while this replica holds the
// lease, stops them when it loses it, and campaigns again: losing the
// lease (the API server down for longer than the lease) never stops the
// process, and so never stops admissions.
type leaderGroup struct {
	// lock is nil without leader election: the workers then always run.
	lock    resourcelock.Interface
	workers []interface{ Start(context.Context) error }
	// Timings of the lease (client-go's defaults are 15s, 10s, 2s).
	leaseDuration, renewDeadline, retryPeriod time.Duration

	elected     chan struct{}
	electedOnce sync.Once
}

func newLeaderGroup(restConfig *rest.Config, opts Options, identity string) (*leaderGroup, error) {
	g := &leaderGroup{elected: make(chan struct{}), leaseDuration: 15 * time.Second, renewDeadline: 10 * time.Second, retryPeriod: 2 * time.Second}
	if !opts.LeaderElect {
		return g, nil
	}
	cfg := rest.CopyConfig(restConfig)
	cfg.UserAgent = rest.DefaultKubernetesUserAgent() + "/leader-election"
	coordination, err := coordinationv1.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	g.lock, err = resourcelock.New(resourcelock.LeasesResourceLock, opts.Namespace, opts.LeaderElectID,
		core, coordination, resourcelock.ResourceLockConfig{Identity: identity})
	return g, err
}

// add registers a worker to run while leading.
func (g *leaderGroup) add(w interface{ Start(context.Context) error }) {
	g.workers = append(g.workers, w)
}

// Elected is closed when this replica first becomes the leader.
func (g *leaderGroup) Elected() <-chan struct{} { return g.elected }

// NeedLeaderElection is false: the group runs on every replica and elects
// itself.
func (g *leaderGroup) NeedLeaderElection() bool { return false }

// Start campaigns, leads and campaigns again until ctx ends. A term's
// workers have all stopped before the lease is given up, and before
// Start returns: the next leader never works beside them.
func (g *leaderGroup) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("leader")
	if g.lock == nil {
		g.lead(ctx)
		return nil
	}
	for ctx.Err() == nil {
		// client-go starts the term's workers in a goroutine of its own,
		// and would give the lease up (ReleaseOnCancel) as soon as the
		// term ends, with them still running: regcred gives it up itself,
		// once they have stopped.
		var started atomic.Bool
		led := make(chan struct{})
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:          g.lock,
			LeaseDuration: g.leaseDuration,
			RenewDeadline: g.renewDeadline,
			RetryPeriod:   g.retryPeriod,
			Name:          g.lock.Describe(),
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					defer close(led)
					started.Store(true)
					// Run cancels the term before it returns: a term that
					// ended before this goroutine began has nothing to run.
					if ctx.Err() != nil {
						return
					}
					log.Info("Leading: keeping pull secrets up to date")
					g.lead(ctx)
				},
				OnStoppedLeading: func() {
					log.Info("No longer leading; admissions go on, and this replica campaigns again")
				},
			},
		})
		if err != nil {
			return err
		}
		le.Run(ctx)
		if started.Load() {
			<-led
		}
		if started.Load() || le.IsLeader() {
			g.release(log)
		}
		select {
		case <-ctx.Done():
		case <-time.After(g.retryPeriod):
		}
	}
	return nil
}

// release gives the lease up, if this replica still holds it, as
// client-go does: the next replica then leads after one second, not after
// the lease's duration.
func (g *leaderGroup) release(log logr.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), g.renewDeadline)
	defer cancel()
	rec, _, err := g.lock.Get(ctx)
	if err != nil || rec.HolderIdentity != g.lock.Identity() {
		return // gone, or someone else's by now
	}
	now := metav1.NewTime(time.Now())
	if err := g.lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: rec.LeaderTransitions, LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now,
	}); err != nil {
		log.Error(err, "Cannot give the lease up; the next leader waits for it to expire")
	}
}

// lead runs every worker until ctx ends (the term with it).
func (g *leaderGroup) lead(ctx context.Context) {
	g.electedOnce.Do(func() { close(g.elected) })
	log := logr.FromContextOrDiscard(ctx)
	var wg sync.WaitGroup
	for _, w := range g.workers {
		wg.Go(func() {
			if err := w.Start(ctx); err != nil && ctx.Err() == nil {
				log.Error(err, "A leader's worker stopped")
			}
		})
	}
	wg.Wait()
}

// randomSuffix tells apart two replicas on one host (tests).
func randomSuffix() []byte {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return []byte(hex.EncodeToString(b))
}
