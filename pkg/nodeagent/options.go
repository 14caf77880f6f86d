package nodeagent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Options configure the node agent.
type Options struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster or $KUBECONFIG.
	Kubeconfig string
	// Namespace and ConfigMap name the ConfigMap the leader publishes.
	Namespace, ConfigMap string
	// NodeName is the node the agent runs on, whose annotation it keeps.
	NodeName string
	// CertsDir is containerd's registry config directory (config_path) as
	// the agent's container mounts it.
	CertsDir string
	// Resync is how often the files are checked even when nothing was
	// published (someone changed or deleted one).
	Resync time.Duration
	// MetricsAddr and ProbeAddr are where metrics, and /healthz and
	// /readyz, are served; "0" disables either.
	MetricsAddr, ProbeAddr string
}

// DefaultOptions returns the options' defaults.
func DefaultOptions() Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "regcred"
	}
	return Options{
		Namespace:   ns,
		ConfigMap:   "regcred-node-trust",
		NodeName:    os.Getenv("NODE_NAME"),
		CertsDir:    "/etc/containerd/certs.d",
		Resync:      time.Minute,
		MetricsAddr: ":8080",
		ProbeAddr:   ":8081",
	}
}

// BindFlags registers the options as flags of fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file (default: in-cluster config or $KUBECONFIG).")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "regcred's namespace, where the leader publishes what nodes must trust (default: $POD_NAMESPACE, else regcred).")
	fs.StringVar(&o.ConfigMap, "configmap", o.ConfigMap, "The ConfigMap the leader publishes (regcred serve --node-trust-configmap); the only object the agent reads.")
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "The node the agent runs on, whose annotation nodetrust.regcred.io/applied it keeps (default: $NODE_NAME).")
	fs.StringVar(&o.CertsDir, "certs-dir", o.CertsDir, "containerd's registry config directory (its config_path) as mounted in the agent's container.")
	fs.DurationVar(&o.Resync, "resync", o.Resync, "How often the files are checked against what is published even when it did not change.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of the /healthz and /readyz probes; 0 disables them.")
}

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %v", o.Namespace, msgs))
	}
	if msgs := validation.IsDNS1123Subdomain(o.ConfigMap); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--configmap %q: %v", o.ConfigMap, msgs))
	}
	if o.NodeName == "" {
		errs = append(errs, errors.New("--node-name (or $NODE_NAME) is required: the node the agent runs on"))
	} else if msgs := validation.IsDNS1123Subdomain(o.NodeName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--node-name %q: %v", o.NodeName, msgs))
	}
	if !filepath.IsAbs(o.CertsDir) {
		errs = append(errs, fmt.Errorf("--certs-dir %q: must be an absolute path", o.CertsDir))
	}
	if o.Resync < time.Second {
		errs = append(errs, fmt.Errorf("--resync %s: must be at least 1s", o.Resync))
	}
	return errors.Join(errs...)
}
