package app

import (
	corev1 "k8s.io/api/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/regcred/regcred/pkg/nscache"
)

// newManager builds the manager: the caches regcred reads, the webhook
// server, the metrics endpoint, the probes and leader election.
func (a *App) newManager(restConfig *rest.Config) error {
	opts := a.opts
	// client-go's scheme, filled as the process starts and only read
	// here: building a copy of its every API group raised a replica's peak
	// RSS by about 2.5 MiB (make bench-admission).
	scheme := clientgoscheme.Scheme
	byObject := map[client.Object]cache.ByObject{
		// Secrets and ConfigMaps of regcred's own namespace only: the
		// config, the Secrets it refers to, the last good config, the
		// index of pull secrets. regcred reads no Secret elsewhere.
		// They are only read, never modified in place: no deep copies.
		&corev1.Secret{}: {
			Namespaces:            map[string]cache.Config{opts.Namespace: {}},
			UnsafeDisableDeepCopy: ptr.To(true),
			Transform:             transformSecret,
		},
		&corev1.ConfigMap{}: {
			Namespaces:            map[string]cache.Config{opts.Namespace: {}},
			UnsafeDisableDeepCopy: ptr.To(true),
		},
	}
	opts.tlsCache(byObject)
	mgr, err := manager.New(restConfig, manager.Options{
		Scheme: scheme,
		Cache: cache.Options{
			// Nothing regcred does reads managedFields; they are most of a
			// small object's size, and every cache read would copy them.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         byObject,
		},
		// regcred serves its metrics itself (metricsServer), with
		// controller-runtime's and client-go's.
		Metrics: metricsserver.Options{BindAddress: "0"},
		// Controller names are unique per process only to keep their metrics
		// apart; a process running several replicas (tests) shares them.
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		HealthProbeBindAddress: opts.ProbeAddr,
		// Leader election is regcred's own (leaderGroup): the manager's
		// would stop the process when the lease is lost.
		LeaderElection:          false,
		GracefulShutdownTimeout: ptr.To(opts.ShutdownTimeout),
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:     opts.WebhookHost,
			Port:     opts.WebhookPort,
			CertDir:  opts.CertDir,
			CertName: opts.CertName,
			KeyName:  opts.KeyName,
			TLSOpts:  a.tlsOptions(),
		}),
	})
	if err != nil {
		return err
	}
	a.mgr = mgr
	// Of namespaces, what the plan reads: their name and labels, in a cache
	// of its own (package nscache) a tenth the size of an informer's.
	if a.meta, err = metadata.NewForConfig(restConfig); err != nil {
		return err
	}
	a.namespaces = nscache.New(nscache.ListWatch(a.meta))
	return mgr.Add(a.namespaces)
}

// helmRelease is the type of the Secrets Helm records each revision of a
// release in: the whole rendered chart, gzipped (tens of KiB each, ten
// revisions by default), in regcred's namespace when it is installed with
// Helm.
const helmRelease corev1.SecretType = "helm.sh/release.v1"

// transformSecret is what the cache keeps of a Secret in regcred's
// namespace: no managedFields, and no data of a Helm release record,
// which nothing regcred reads can be.
func transformSecret(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	if s, ok := obj.(*corev1.Secret); ok && s.Type == helmRelease {
		s.Data = nil
	}
	return obj, err
}
