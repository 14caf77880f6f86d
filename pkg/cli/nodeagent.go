package cli

import (
	"flag"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/nodeagent"
)

func newNodeAgent() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node-agent [flags]",
		Short: "Make this node's container runtime trust the registries the config declares (run by the chart's DaemonSet)",
		Long: `Make this node's container runtime trust the registries that regcred's
config declares with connection secure-with-ca (their CA) or insecure
(skipped verification, or plain HTTP for an http:// URL).

The agent reads only the ConfigMap that regcred's leader publishes
(regcred serve --node-trust-configmap: hosts, modes and CA certificates,
never a credential) and writes, per registry host, containerd's
<certs-dir>/<host>/hosts.toml and the CA it names. It never touches a file
it did not write, removes what it wrote when the registry goes, and reports
what it applied in the annotation nodetrust.regcred.io/applied of its own
Node and in its metrics. containerd reads hosts.toml at every pull: nothing
restarts.

The chart runs it on every node with nodeTrust.enabled.`,
		Example: `  # As the chart's DaemonSet runs it (NODE_NAME and POD_NAMESPACE from the Pod)
  regcred node-agent --namespace=regcred --configmap=regcred-node-trust --certs-dir=/host/etc/containerd/certs.d`,
		Args: noArgs,
	}
	opts := nodeagent.DefaultOptions()
	zapOpts := &zap.Options{}
	goFlags := flag.NewFlagSet("node-agent", flag.ContinueOnError)
	opts.BindFlags(goFlags)
	zapOpts.BindFlags(goFlags)
	cmd.Flags().AddGoFlagSet(goFlags)
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := opts.Validate(); err != nil {
			return usageError{err}
		}
		log := capVerbosity(zap.New(zap.UseFlagOptions(zapOpts), zap.WriteTo(cmd.ErrOrStderr())), MaxVerbosity)
		ctrl.SetLogger(log)
		klog.SetLogger(log)
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = opts.Kubeconfig
		restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return fmt.Errorf("loading kubeconfig: %w", err)
		}
		restConfig.UserAgent = "regcred-node-agent/" + Version
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		log.Info("Starting regcred's node agent", "version", Version, "node", opts.NodeName, "configMap", opts.Namespace+"/"+opts.ConfigMap, "certsDir", opts.CertsDir)
		return nodeagent.Run(ctrl.LoggerInto(cmd.Context(), log), opts, restConfig, reg)
	})
	return cmd
}
