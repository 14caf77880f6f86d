package app

import (
	"k8s.io/client-go/rest"

	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/registries"
)

// newNodeTrust wires the opt-in publication of what nodes must trust: a
// leader's worker that keeps --node-trust-configmap in step with the
// config, for the node agents.
func (a *App) newNodeTrust(*rest.Config) error {
	if a.opts.NodeTrustConfigMap == "" {
		return nil
	}
	p := nodetrust.NewPublisher(&nodetrust.Publisher{
		Client:     a.mgr.GetClient(),
		Reader:     a.mgr.GetCache(),
		Namespace:  a.opts.Namespace,
		Name:       a.opts.NodeTrustConfigMap,
		Registries: a.loader.Current,
		HasConfig:  a.loader.HasConfig,
		Metrics:    a.metrics,
	})
	a.leader.add(p)
	a.loader.OnChange(func(*registries.Set) { p.Wake() })
	return nil
}
