package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	admissionhandler "github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
	"github.com/regcred/regcred/pkg/status"
	"github.com/regcred/regcred/pkg/upkeep"
)

// newConfig wires the config loader: it watches the config object and the
// Secrets it refers to, on every replica.
func (a *App) newConfig(*rest.Config) error {
	ecrOpts := a.deps.ECR
	ecrOpts.Endpoint, ecrOpts.Budget = a.opts.ECREndpoint, a.opts.ECRTokenBudget
	a.loader = &configwatch.Loader{
		Source: a.opts.source(),
		Reader: a.mgr.GetCache(),
		Build: registries.Options{
			Types:       registrytype.Builtin(registrytype.Deps{ECR: ecr.NewMinter(ecrOpts)}),
			ClusterName: a.opts.ClusterName,
		},
		Metrics: a.metrics,
		Events:  a.mgr.GetEventRecorder("regcred"),
	}
	return a.loader.SetupWithManager(a.mgr)
}

// shared is what the webhook shares with the upkeep workers.
type shared struct {
	namespaces namespaceLabels
	ensurer    *pullsecret.Ensurer
	presence   *pullsecret.Presence
	retrier    *upkeep.Retrier
}

// newUpkeep wires the workers that keep pull secrets in step with the
// config (the leader's), retry failed creations and report status.
func (a *App) newUpkeep(restConfig *rest.Config) error {
	metaClient, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	u := &shared{
		presence: pullsecret.NewPresence(metaClient),
		ensurer:  &pullsecret.Ensurer{Cache: a.mgr.GetCache(), API: a.mgr.GetClient()},
	}
	u.retrier = upkeep.NewRetrier(a.loader.Current, u.ensurer, a.metrics, upkeep.RetryOptions{})
	// Admissions read namespace labels on every replica. Registering the
	// informer now starts it with the cache (and readiness waits for it),
	// instead of on the first admission of a replica that does not lead.
	if _, err := a.mgr.GetCache().GetInformer(context.Background(), namespaceMeta()); err != nil {
		return fmt.Errorf("namespace cache: %w", err)
	}
	u.namespaces = namespaceLabels{cache: a.mgr.GetCache(), api: a.mgr.GetAPIReader()}
	reconciler := &upkeep.Reconciler{
		Namespaces: u.namespaces,
		Exclusions: a.opts.exclusions(),
		Registries: a.loader.Current,
		HasConfig:  a.loader.HasConfig,
		Cache:      a.mgr.GetCache(),
		Ensurer:    u.ensurer,
		Metrics:    a.metrics,
		Resync:     a.opts.Resync,
	}
	if err := reconciler.SetupWithManager(a.mgr); err != nil {
		return err
	}
	refresher := upkeep.NewTokenRefresher(a.loader.Current, func() { reconciler.ConfigChanged(a.loader.Current()) }, a.metrics)
	reporter := status.NewReporter(&status.Reporter{
		Client:          a.mgr.GetClient(),
		Namespace:       a.opts.Namespace,
		Name:            a.opts.StatusConfigMap,
		Cluster:         a.opts.ClusterName,
		Source:          a.opts.source().String(),
		Registries:      a.loader.Current,
		Config:          a.loader.Status,
		CheckInterval:   a.opts.CheckInterval,
		RefreshInterval: a.deps.StatusRefresh,
		Metrics:         a.metrics,
	})
	if err := a.run(u.presence, u.retrier, refresher, reporter); err != nil {
		return err
	}
	if a.opts.MetricsAddr != "0" && a.opts.MetricsAddr != "" {
		if err := a.run(newMetricsServer(a.opts.MetricsAddr, a.deps.Metrics)); err != nil {
			return err
		}
	}
	a.loader.OnChange(func(set *registries.Set) {
		u.presence.Track(imagePullSecretNames(set))
		reconciler.ConfigChanged(set)
		refresher.Wake()
		reporter.Wake()
	})
	a.loader.OnReject(reporter.Wake)
	a.shared = u
	return nil
}

// newWebhook registers the Pod admission handler.
func (a *App) newWebhook(*rest.Config) error {
	u := a.shared
	hook := &admission.Webhook{Handler: &admissionhandler.Handler{
		Registries: a.loader.Current,
		Secrets:    u.ensurer,
		Presence:   u.presence,
		Namespaces: u.namespaces,
		Retry:      u.retrier.Retry,
		Exclusions: a.opts.exclusions(),
		Metrics:    a.metrics,
	}}
	a.mgr.GetWebhookServer().Register(WebhookPath, hook)
	return nil
}

// newProbes adds the health and readiness checks. A replica is ready once
// the webhook serves, the caches are synced and the config has been read
// (good or not: a replica without a good config still admits every Pod,
// unchanged, with a warning in its log).
func (a *App) newProbes(*rest.Config) error {
	if err := a.mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := a.mgr.AddReadyzCheck("webhook", a.mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := a.mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !a.mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("caches not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	return a.mgr.AddReadyzCheck("config", func(*http.Request) error {
		if !a.loader.Status().Attempted {
			return errors.New("config not read yet")
		}
		return nil
	})
}

func imagePullSecretNames(set *registries.Set) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range set.Registries {
		if r.Mode == config.ImagePullSecret && r.Injects && !seen[r.SecretName] {
			seen[r.SecretName] = true
			names = append(names, r.SecretName)
		}
	}
	return names
}
