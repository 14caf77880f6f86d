package app

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/pkg/registries"
)

// newRecovery wires the opt-in recovery of Pods stuck for lack of a pull
// secret: a leader's worker, told of config changes and of namespaces
// whose labels changed.
func (a *App) newRecovery(restConfig *rest.Config) error {
	if !a.opts.Recovery {
		return nil
	}
	// Protobuf: the Pod list is the largest thing regcred reads.
	cfg := rest.CopyConfig(restConfig)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c := &recovery.Controller{
		Registries:         a.loader.Current,
		HasConfig:          a.loader.HasConfig,
		Namespaces:         a.shared.namespaces,
		Exclusions:         a.opts.Exclusions(),
		Informer:           func() cache.SharedIndexInformer { return recovery.NewPodInformer(cs) },
		Evictor:            recovery.APIEvictor{Client: cs},
		Events:             a.mgr.GetEventRecorder("regcred"),
		Metrics:            a.metrics,
		EvictionsPerSecond: a.opts.RecoveryEvictionsPerSecond,
	}
	a.leader.add(c)
	a.loader.OnChange(func(*registries.Set) { c.ConfigChanged() })
	a.namespaces.OnChange(c.NamespaceChanged)
	return nil
}
