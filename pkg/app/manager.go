package app

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
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
		},
		&corev1.ConfigMap{}: {
			Namespaces:            map[string]cache.Config{opts.Namespace: {}},
			UnsafeDisableDeepCopy: ptr.To(true),
		},
	}
	// Of namespaces, what the plan reads: their name and labels. A cluster
	// of many namespaces, often annotated at length, costs that only.
	byObject[namespaceMeta()] = cache.ByObject{Transform: namespaceNameAndLabels}
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
	return nil
}

// namespaceNameAndLabels keeps of a namespace's metadata what regcred
// reads: its name and labels (and its resource version).
func namespaceNameAndLabels(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: m.Name, Labels: m.Labels, ResourceVersion: m.ResourceVersion, DeletionTimestamp: m.DeletionTimestamp,
		},
	}, nil
}
