package app

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/plan"
)

// Options configure the webhook server.
type Options struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster or $KUBECONFIG.
	Kubeconfig string
	// Namespace is regcred's own namespace: its config, its leases, and a
	// namespace whose Pods it never touches.
	Namespace string
	// ClusterName is this cluster's name in the per-cluster policies.
	ClusterName string

	ConfigMap, ConfigSecret, ConfigKey string

	WebhookHost string
	WebhookPort int
	CertDir     string
	CertName    string
	KeyName     string

	// TLSSecret, when set, makes regcred keep its own TLS material in
	// that Secret of its namespace (instead of reading --cert-dir): a CA
	// and a serving certificate for TLSHosts, renewed before they expire,
	// the CA kept in the caBundle of MutatingWebhook and ValidatingWebhook.
	TLSSecret                          string
	TLSHosts                           []string
	MutatingWebhook, ValidatingWebhook string
	TLSCAValidity, TLSCertValidity     time.Duration
	TLSCAPropagation                   time.Duration

	MetricsAddr string
	ProbeAddr   string

	LeaderElect     bool
	LeaderElectID   string
	ShutdownTimeout time.Duration
	// Resync is how often every pull secret is written again, whatever
	// the index says.
	Resync time.Duration
	// KubeAPIQPS and KubeAPIBurst bound the client's requests; WriteQPS
	// bounds the upkeep's writes within them.
	KubeAPIQPS   float64
	KubeAPIBurst int
	WriteQPS     float64
	// LastGoodSecret is the Secret in regcred's namespace that keeps the
	// last good config across restarts.
	LastGoodSecret string
	// WarnMissingAdminSecrets follows the metadata of the admin's own pull
	// secrets (image-pull-secret mode) cluster-wide to warn when one is
	// missing; it needs list and watch on Secrets (opt-in).
	WarnMissingAdminSecrets bool

	// CheckInterval is how often each registry's credentials are checked
	// to log in; 0 disables the checks.
	CheckInterval time.Duration
	// StatusConfigMap names the ConfigMap in regcred's namespace that holds
	// the per-registry status.
	StatusConfigMap string

	// ExcludeNamespaces are namespaces regcred never serves, besides
	// kube-system and its own, whatever a request or a Secret says.
	ExcludeNamespaces []string

	// Recovery evicts Pods stuck in ImagePullBackOff for lack of a pull
	// secret regcred would give them now, so that their controller makes
	// them again with it; it needs list and watch on Pods and create on
	// pods/eviction cluster-wide (opt-in).
	Recovery bool
	// RecoveryEvictionsPerSecond paces those evictions.
	RecoveryEvictionsPerSecond float64

	// NodeTrustConfigMap, when set, makes the leader publish what nodes
	// must trust (hosts, modes, CA certificates; never a credential) in
	// that ConfigMap of regcred's namespace, for the node agents.
	NodeTrustConfigMap string

	// ECREndpoint overrides the ECR API endpoint.
	ECREndpoint string
	// ECRTokenBudget bounds how long an admission waits for a first token.
	ECRTokenBudget time.Duration
}

// DefaultOptions returns the options' defaults.
func DefaultOptions() Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "regcred"
	}
	return Options{ //nolint:gosec // names of Secrets and ConfigMaps, no credential
		Namespace:        ns,
		ConfigKey:        "config.yaml",
		WebhookPort:      9443,
		CertDir:          "/tmp/k8s-webhook-server/serving-certs",
		CertName:         "tls.crt",
		KeyName:          "tls.key",
		TLSCAValidity:    5 * 365 * 24 * time.Hour,
		TLSCertValidity:  90 * 24 * time.Hour,
		TLSCAPropagation: 2 * time.Minute,
		MetricsAddr:      ":8080",
		ProbeAddr:        ":8081",
		LeaderElect:      true,
		LeaderElectID:    "regcred",
		ShutdownTimeout:  30 * time.Second,
		Resync:           time.Hour,
		KubeAPIQPS:       50,
		KubeAPIBurst:     100,
		WriteQPS:         20,
		LastGoodSecret:   "regcred-last-good-config",
		ECRTokenBudget:   2 * time.Second,
		CheckInterval:    10 * time.Minute,
		StatusConfigMap:  "regcred-status",

		RecoveryEvictionsPerSecond: 1,
	}
}

// BindFlags registers the options as flags of fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file (default: in-cluster config or $KUBECONFIG).")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "regcred's own namespace (default: $POD_NAMESPACE, else regcred).")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "This cluster's name, as the registries' cluster policies list it.")
	fs.StringVar(&o.ConfigMap, "config-configmap", o.ConfigMap, "Name of the ConfigMap in regcred's namespace that holds the registry config.")
	fs.StringVar(&o.ConfigSecret, "config-secret", o.ConfigSecret, "Name of the Secret in regcred's namespace that holds the registry config (instead of a ConfigMap).")
	fs.StringVar(&o.ConfigKey, "config-key", o.ConfigKey, "Key of the ConfigMap or Secret that holds the registry config.")
	fs.StringVar(&o.WebhookHost, "webhook-host", o.WebhookHost, "Address the webhook server listens on (default: all).")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "Port the webhook server listens on.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory of the webhook's serving certificate; a rotated certificate is reloaded without a restart.")
	fs.StringVar(&o.CertName, "cert-name", o.CertName, "Serving certificate file in --cert-dir.")
	fs.StringVar(&o.KeyName, "key-name", o.KeyName, "Serving key file in --cert-dir.")
	fs.StringVar(&o.TLSSecret, "tls-secret", o.TLSSecret, "Keep the webhook's TLS material in this Secret of regcred's namespace (a CA and a serving certificate regcred makes and renews), instead of reading --cert-dir.")
	fs.Func("tls-hosts", "With --tls-secret: comma-separated DNS names and IPs of the serving certificate (the webhook Service's names; repeatable).", func(v string) error {
		o.TLSHosts = appendList(o.TLSHosts, v)
		return nil
	})
	fs.StringVar(&o.MutatingWebhook, "mutating-webhook-configuration", o.MutatingWebhook, "With --tls-secret: the MutatingWebhookConfiguration whose caBundle regcred keeps.")
	fs.StringVar(&o.ValidatingWebhook, "validating-webhook-configuration", o.ValidatingWebhook, "With --tls-secret: the ValidatingWebhookConfiguration whose caBundle regcred keeps.")
	fs.DurationVar(&o.TLSCAValidity, "tls-ca-validity", o.TLSCAValidity, "With --tls-secret: lifetime of a CA regcred makes; renewed after two thirds of it.")
	fs.DurationVar(&o.TLSCertValidity, "tls-cert-validity", o.TLSCertValidity, "With --tls-secret: lifetime of a serving certificate; renewed after two thirds of it.")
	fs.DurationVar(&o.TLSCAPropagation, "tls-ca-propagation", o.TLSCAPropagation, "With --tls-secret: how long a renewed CA is in the caBundle before the serving certificate moves to it.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address of the /healthz and /readyz probes; 0 disables them.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect one replica to keep pull secrets up to date (all replicas admit Pods).")
	fs.StringVar(&o.LeaderElectID, "leader-election-id", o.LeaderElectID, "Name of the leader-election Lease in regcred's namespace.")
	fs.DurationVar(&o.ShutdownTimeout, "graceful-shutdown-timeout", o.ShutdownTimeout, "How long to drain in-flight admissions on shutdown.")
	fs.DurationVar(&o.Resync, "resync-period", o.Resync, "How often the leader writes every pull secret again whatever its index says (a pull secret deleted or edited by hand is restored at once; this bounds the time when regcred did not hear of it).")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Requests per second regcred's client may make to the API server.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of requests above --kube-api-qps.")
	fs.Float64Var(&o.WriteQPS, "upkeep-write-qps", o.WriteQPS, "Writes per second of the leader's upkeep (a config change or token refresh across many namespaces), within --kube-api-qps.")
	fs.StringVar(&o.LastGoodSecret, "last-good-config-secret", o.LastGoodSecret, "Secret in regcred's namespace that keeps the last good config, served when a replica starts while the stored config is broken.")
	fs.BoolVar(&o.WarnMissingAdminSecrets, "warn-missing-admin-secrets", o.WarnMissingAdminSecrets, "Warn at admission when the admin's own pull secret (image-pull-secret mode) does not exist in the Pod's namespace. Needs list and watch on Secrets cluster-wide (metadata only).")
	fs.DurationVar(&o.CheckInterval, "check-interval", o.CheckInterval, "How often each registry's credentials are checked to log in (as docker login does); 0 disables the checks.")
	fs.StringVar(&o.StatusConfigMap, "status-configmap", o.StatusConfigMap, "ConfigMap in regcred's namespace where regcred reports each registry's status.")
	fs.BoolVar(&o.Recovery, "recovery", o.Recovery, "Evict Pods whose image pull failed for lack of a pull secret regcred would give them now (their registry was configured after they were created), so that their ReplicaSet, StatefulSet, DaemonSet or Job makes them again with it; other Pods get an Event. Needs list and watch on Pods and create on pods/eviction cluster-wide.")
	fs.Float64Var(&o.RecoveryEvictionsPerSecond, "recovery-evictions-per-second", o.RecoveryEvictionsPerSecond, "Evictions per second of --recovery, at most --kube-api-qps.")
	fs.StringVar(&o.NodeTrustConfigMap, "node-trust-configmap", o.NodeTrustConfigMap, "Publish what nodes must trust for the registries whose connection is secure-with-ca or insecure (per host: a CA, skipped verification or plain HTTP; never a credential) in this ConfigMap of regcred's namespace, which regcred node-agent reads on every node. Empty: nothing is published.")
	fs.StringVar(&o.ECREndpoint, "ecr-endpoint-url", o.ECREndpoint, "ECR API endpoint (default: the SDK's, which honours AWS_ENDPOINT_URL_ECR).")
	fs.DurationVar(&o.ECRTokenBudget, "ecr-token-budget", o.ECRTokenBudget, "How long an admission may wait for a first ECR token before the Pod is admitted with a warning.")
	fs.Func("exclude-namespaces", "Comma-separated namespaces regcred never serves nor writes to, besides kube-system and its own (repeatable).", func(v string) error {
		o.ExcludeNamespaces = appendList(o.ExcludeNamespaces, v)
		return nil
	})
}

// appendList appends the comma-separated items of v to list.
func appendList(list []string, v string) []string {
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			list = append(list, n)
		}
	}
	return list
}

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %v", o.Namespace, msgs))
	}
	switch {
	case o.ConfigMap == "" && o.ConfigSecret == "":
		errs = append(errs, errors.New("set --config-configmap or --config-secret"))
	case o.ConfigMap != "" && o.ConfigSecret != "":
		errs = append(errs, errors.New("set --config-configmap or --config-secret, not both"))
	}
	if o.ConfigKey == "" {
		errs = append(errs, errors.New("--config-key must not be empty"))
	}
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d: must be from 1 to 65535", o.WebhookPort))
	}
	for _, n := range o.ExcludeNamespaces {
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--exclude-namespaces %q: not a namespace name: %v", n, msgs))
		}
	}
	if o.ECRTokenBudget <= 0 || o.ECRTokenBudget > 8*time.Second {
		errs = append(errs, fmt.Errorf("--ecr-token-budget %s: must be more than 0 and at most 8s, under the webhook's timeout", o.ECRTokenBudget))
	}
	if msgs := validation.IsDNS1123Subdomain(o.StatusConfigMap); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--status-configmap %q: %v", o.StatusConfigMap, msgs))
	}
	if o.ConfigMap != "" && o.ConfigMap == o.StatusConfigMap {
		errs = append(errs, fmt.Errorf("--status-configmap %q: must not be the config's ConfigMap", o.StatusConfigMap))
	}
	if o.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("--check-interval %s: must not be negative", o.CheckInterval))
	}
	// A comparison with NaN is false, so the range checks below let it
	// through, and a rate limiter of NaN or +Inf never waits.
	for _, f := range []struct {
		flag  string
		value float64
	}{
		{"--kube-api-qps", o.KubeAPIQPS},
		{"--upkeep-write-qps", o.WriteQPS},
		{"--recovery-evictions-per-second", o.RecoveryEvictionsPerSecond},
	} {
		if math.IsNaN(f.value) || math.IsInf(f.value, 0) {
			errs = append(errs, fmt.Errorf("%s %g: must be a finite number", f.flag, f.value))
		}
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 || o.WriteQPS <= 0 || o.WriteQPS > o.KubeAPIQPS {
		errs = append(errs, fmt.Errorf("--kube-api-qps %g, --kube-api-burst %d, --upkeep-write-qps %g: must be positive, and the upkeep's at most the client's", o.KubeAPIQPS, o.KubeAPIBurst, o.WriteQPS))
	}
	if o.RecoveryEvictionsPerSecond <= 0 || o.RecoveryEvictionsPerSecond > o.KubeAPIQPS {
		errs = append(errs, fmt.Errorf("--recovery-evictions-per-second %g: must be more than 0 and at most --kube-api-qps (%g)", o.RecoveryEvictionsPerSecond, o.KubeAPIQPS))
	}
	if o.NodeTrustConfigMap != "" {
		if msgs := validation.IsDNS1123Subdomain(o.NodeTrustConfigMap); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--node-trust-configmap %q: %v", o.NodeTrustConfigMap, msgs))
		}
		if o.NodeTrustConfigMap == o.ConfigMap || o.NodeTrustConfigMap == o.StatusConfigMap {
			errs = append(errs, fmt.Errorf("--node-trust-configmap %q: must not be the config's or the status's ConfigMap", o.NodeTrustConfigMap))
		}
	}
	if msgs := validation.IsDNS1123Subdomain(o.LastGoodSecret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--last-good-config-secret %q: %v", o.LastGoodSecret, msgs))
	}
	if o.ConfigSecret != "" && o.ConfigSecret == o.LastGoodSecret {
		errs = append(errs, fmt.Errorf("--last-good-config-secret %q: must not be the config's Secret", o.LastGoodSecret))
	}
	errs = append(errs, o.validateTLS()...)
	if o.Resync < time.Minute {
		errs = append(errs, fmt.Errorf("--resync-period %s: must be at least 1m", o.Resync))
	}
	return errors.Join(errs...)
}

func (o *Options) validateTLS() []error {
	if !o.selfManagedTLS() {
		return nil
	}
	var errs []error
	if msgs := validation.IsDNS1123Subdomain(o.TLSSecret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--tls-secret %q: %v", o.TLSSecret, msgs))
	}
	// regcred replaces a Secret of this name that is not TLS material: it
	// must not be one that holds the config.
	if o.TLSSecret == o.ConfigSecret || o.TLSSecret == o.LastGoodSecret {
		errs = append(errs, fmt.Errorf("--tls-secret %q: must not be the config's Secret or the last good config's", o.TLSSecret))
	}
	if len(o.TLSHosts) == 0 {
		errs = append(errs, errors.New("--tls-secret needs --tls-hosts: the names the API server calls the webhook by"))
	}
	for _, h := range o.TLSHosts {
		if net.ParseIP(h) == nil && len(validation.IsDNS1123Subdomain(h)) > 0 {
			errs = append(errs, fmt.Errorf("--tls-hosts %q: neither a DNS name nor an IP", h))
		}
	}
	if o.TLSCertValidity < 30*time.Second || o.TLSCAValidity < o.TLSCertValidity || o.TLSCAValidity > 100*365*24*time.Hour {
		errs = append(errs, fmt.Errorf("--tls-cert-validity %s, --tls-ca-validity %s: the certificate's must be at least 30s, the CA's at least the certificate's and at most 100 years (876000h)", o.TLSCertValidity, o.TLSCAValidity))
	}
	if o.TLSCAPropagation < 0 || o.TLSCAPropagation > o.TLSCertValidity/10 {
		errs = append(errs, fmt.Errorf("--tls-ca-propagation %s: must be from 0 to a tenth of --tls-cert-validity", o.TLSCAPropagation))
	}
	return errs
}

// Source returns where the config is stored.
func (o *Options) Source() configwatch.Source {
	if o.ConfigSecret != "" {
		return configwatch.Source{Namespace: o.Namespace, StoredIn: config.InSecret, Name: o.ConfigSecret, Key: o.ConfigKey}
	}
	return configwatch.Source{Namespace: o.Namespace, StoredIn: config.InConfigMap, Name: o.ConfigMap, Key: o.ConfigKey}
}

// Exclusions are the namespaces regcred never serves: kube-system, its
// own, and the admin's.
func (o *Options) Exclusions() plan.Exclusions {
	ex := plan.Exclusions{metav1.NamespaceSystem: true, o.Namespace: true}
	for _, n := range o.ExcludeNamespaces {
		ex[n] = true
	}
	return ex
}
