package app

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/metrics"
	"github.com/regcred/regcred/pkg/nscache"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/webhookcert"
)

// App is one regcred replica.
type App struct {
	opts Options
	deps Deps

	mgr manager.Manager
	// meta is the replica's metadata-only client (namespaces, the
	// presence of admins' pull secrets).
	meta       metadata.Interface
	namespaces *nscache.Cache
	metrics    *metrics.Metrics
	loader     *configwatch.Loader
	shared     *shared
	leader     *leaderGroup
	tls        *webhookcert.Keeper // nil unless --tls-secret
}

// New builds a replica from validated options. It wires, in order: the
// manager (caches, webhook server, probes), the config loader, the upkeep
// of pull secrets, the recovery of Pods (opt-in), what nodes must trust
// (opt-in), the webhook, and the probes.
func New(opts Options, restConfig *rest.Config, deps Deps) (*App, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if deps.Metrics == nil {
		deps.Metrics = prometheus.NewRegistry()
	}
	restConfig = rest.CopyConfig(restConfig)
	restConfig.QPS, restConfig.Burst = float32(opts.KubeAPIQPS), opts.KubeAPIBurst
	a := &App{opts: opts, deps: deps, metrics: metrics.New(deps.Metrics, deps.Version)}
	for _, step := range []struct {
		name string
		run  func(*rest.Config) error
	}{
		{"manager", a.newManager},
		{"tls", a.newTLS},
		{"config", a.newConfig},
		{"upkeep", a.newUpkeep},
		{"recovery", a.newRecovery},
		{"node trust", a.newNodeTrust},
		{"webhook", a.newWebhook},
		{"probes", a.newProbes},
	} {
		if err := step.run(restConfig); err != nil {
			return nil, fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return a, nil
}

// Start runs the replica until ctx ends. Once it has stopped, the index
// entries still waiting for a batch are written: a replica that rewrote a
// pull secret just before it stopped (a rolling upgrade) leaves the index
// as its Secrets are, leader or not.
func (a *App) Start(ctx context.Context) error {
	return runThenFlush(ctx, a.mgr.Start, a.shared.store.Flush)
}

// runThenFlush runs run until it returns, then flush, within flushTime
// and whatever ctx says; it returns run's error.
func runThenFlush(ctx context.Context, run, flush func(context.Context) error) error {
	err := run(ctx)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTime)
	defer cancel()
	if ferr := flush(fctx); ferr != nil {
		logr.FromContextOrDiscard(ctx).Error(ferr, "Cannot record the last rewritten pull secrets in the index; the leader's next resync rewrites them")
	}
	return err
}

// flushTime bounds the writes of the index at stop.
const flushTime = 10 * time.Second

// ConfigStatus returns the outcome of the config loads so far.
func (a *App) ConfigStatus() configwatch.Status { return a.loader.Status() }

// Registries returns the registry set now serving.
func (a *App) Registries() *registries.Set { return a.loader.Current() }

// Elected is closed when this replica first becomes the leader.
func (a *App) Elected() <-chan struct{} { return a.leader.Elected() }

// run adds background workers to the manager, which starts them with the
// caches: on every replica, or on the leader only, as each one says
// (manager.LeaderElectionRunnable).
func (a *App) run(workers ...manager.Runnable) error {
	for _, w := range workers {
		if err := a.mgr.Add(w); err != nil {
			return err
		}
	}
	return nil
}
