package cli

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// kubeFlags are kubectl's flags for reaching a cluster, with kubectl's
// names and meanings: --kubeconfig (else $KUBECONFIG, else
// ~/.kube/config), --context, --cluster, --user, -n/--namespace and
// --request-timeout.
type kubeFlags struct {
	rules     *clientcmd.ClientConfigLoadingRules
	overrides clientcmd.ConfigOverrides
}

func (k *kubeFlags) bind(fs *pflag.FlagSet) {
	k.rules = clientcmd.NewDefaultClientConfigLoadingRules()
	fs.StringVar(&k.rules.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "Path to the kubeconfig file to use for CLI requests.")
	names := clientcmd.RecommendedConfigOverrideFlags("")
	names.CurrentContext.BindStringFlag(fs, &k.overrides.CurrentContext)
	names.ContextOverrideFlags.ClusterName.BindStringFlag(fs, &k.overrides.Context.Cluster)
	names.ContextOverrideFlags.AuthInfoName.BindStringFlag(fs, &k.overrides.Context.AuthInfo)
	names.ContextOverrideFlags.Namespace.BindStringFlag(fs, &k.overrides.Context.Namespace)
	names.Timeout.BindStringFlag(fs, &k.overrides.Timeout)
}

func (k *kubeFlags) clientConfig() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(k.rules, &k.overrides)
}

// namespace is -n, else the kubeconfig context's namespace, else default;
// explicit reports whether -n said so.
func (k *kubeFlags) namespace() (ns string, explicit bool, err error) {
	return k.clientConfig().Namespace()
}

// restConfig returns the cluster's client configuration.
func (k *kubeFlags) restConfig() (*rest.Config, error) {
	cfg, err := k.clientConfig().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.UserAgent = "regcred/" + Version
	return cfg, nil
}

// client returns a client of the cluster.
func (k *kubeFlags) client() (client.Reader, error) {
	cfg, err := k.restConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{})
}
