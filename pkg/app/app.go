package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	admissionhandler "github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/metrics"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretsync"
	"github.com/regcred/regcred/pkg/status"
)

// App is one regcred replica.
type App struct {
	mgr    manager.Manager
	loader *configwatch.Loader
}

// sharedMetrics registers regcred's metrics with the process-wide
// registry once, so that a process (a test) may build several Apps.
var sharedMetrics = sync.OnceValue(func() *metrics.Metrics { return metrics.New(ctrlmetrics.Registry) })

// New builds a replica from validated options.
func New(opts Options, restConfig *rest.Config) (*App, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := manager.New(restConfig, manager.Options{
		Scheme: scheme,
		Cache: cache.Options{
			// Nothing regcred does reads managedFields; they are most of a
			// small object's size, and every cache read would copy them.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				// Secrets: every one in regcred's namespace (the config may
				// refer to them), elsewhere only those regcred manages. They are
				// only read, never modified in place, so no deep copies.
				&corev1.Secret{}: {
					Namespaces: map[string]cache.Config{
						opts.Namespace:      {},
						cache.AllNamespaces: {LabelSelector: pullsecret.ManagedSelector()},
					},
					UnsafeDisableDeepCopy: ptr.To(true),
				},
				&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{opts.Namespace: {}}},
			}},
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		Controller:                    ctrlconfig.Controller{SkipNameValidation: ptr.To(opts.SeveralInProcess)},
		HealthProbeBindAddress:        opts.ProbeAddr,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionID:              opts.LeaderElectID,
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(opts.ShutdownTimeout),
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:     opts.WebhookHost,
			Port:     opts.WebhookPort,
			CertDir:  opts.CertDir,
			CertName: opts.CertName,
			KeyName:  opts.KeyName,
			// HTTP/2 off: it is not needed and has had denial-of-service flaws.
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	m := sharedMetrics()

	loader := &configwatch.Loader{
		Source:  opts.source(),
		Reader:  mgr.GetCache(),
		Build:   registries.Options{ClusterName: opts.ClusterName, Tokens: ecr.NewMinter(opts.ECR).Provider},
		Metrics: m,
		Events:  mgr.GetEventRecorder("regcred"),
	}
	if err := loader.SetupWithManager(mgr); err != nil {
		return nil, err
	}

	metaClient, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	presence := pullsecret.NewPresence(metaClient)
	ensurer := &pullsecret.Ensurer{Cache: mgr.GetCache(), API: mgr.GetClient()}
	retrier := secretsync.NewRetrier(loader.Current, ensurer, m, 8)
	// Admissions read namespace labels on every replica. Registering the
	// informer now starts it with the cache (and readiness waits for it),
	// instead of on the first admission of a replica that does not lead.
	if _, err := mgr.GetCache().GetInformer(context.Background(), namespaceMeta()); err != nil {
		return nil, fmt.Errorf("namespace cache: %w", err)
	}
	namespaces := namespaceLabels{cache: mgr.GetCache(), api: mgr.GetAPIReader()}
	reconciler := &secretsync.Reconciler{
		Namespaces: namespaces,
		Registries: loader.Current,
		HasConfig:  loader.HasConfig,
		Cache:      mgr.GetCache(),
		Ensurer:    ensurer,
		Metrics:    m,
		Resync:     opts.Resync,
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	refresher := secretsync.NewRefresher(loader.Current, func() { reconciler.ConfigChanged(loader.Current()) }, m)
	reporter := (&status.Reporter{
		Client:          mgr.GetClient(),
		Namespace:       opts.Namespace,
		Name:            opts.StatusConfigMap,
		Cluster:         opts.ClusterName,
		Source:          opts.source().String(),
		Registries:      loader.Current,
		Config:          loader.Status,
		CheckInterval:   opts.CheckInterval,
		RefreshInterval: opts.StatusRefresh,
		Metrics:         m,
	}).Init()
	for _, r := range []manager.Runnable{presence, retrier, refresher, reporter} {
		if err := mgr.Add(r); err != nil {
			return nil, err
		}
	}
	loader.OnChange(func(set *registries.Set) {
		presence.Track(imagePullSecretNames(set))
		reconciler.ConfigChanged(set)
		refresher.Wake()
		reporter.Wake()
	})
	loader.OnReject(reporter.Wake)

	hook := &admission.Webhook{Handler: &admissionhandler.Handler{
		Registries:     loader.Current,
		Secrets:        ensurer,
		Presence:       presence,
		Namespaces:     namespaces,
		Retry:          retrier.Retry,
		SkipNamespaces: map[string]bool{metav1.NamespaceSystem: true, opts.Namespace: true},
		Metrics:        m,
	}}
	mgr.GetWebhookServer().Register(WebhookPath, hook)

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	// Ready once the webhook serves, the caches are synced and the config
	// has been read (good or not: a replica without a good config still
	// admits every Pod, unchanged, with a warning in its log).
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("caches not synced yet")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("config", func(*http.Request) error {
		if !loader.Status().Attempted {
			return errors.New("config not read yet")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return &App{mgr: mgr, loader: loader}, nil
}

// Start runs the replica until ctx ends.
func (a *App) Start(ctx context.Context) error { return a.mgr.Start(ctx) }

// ConfigStatus returns the outcome of the config loads so far.
func (a *App) ConfigStatus() configwatch.Status { return a.loader.Status() }

// Registries returns the registry set now serving.
func (a *App) Registries() *registries.Set { return a.loader.Current() }

// Elected is closed when this replica becomes the leader.
func (a *App) Elected() <-chan struct{} { return a.mgr.Elected() }

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
