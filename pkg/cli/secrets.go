package cli

import (
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
)

// clusterSecrets resolves secretKeyRefs from a cluster, as the webhook does.
func clusterSecrets(kubeconfig, namespace string) (config.SecretReader, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	return configwatch.SecretReader{Reader: c, Namespace: namespace}, nil
}
