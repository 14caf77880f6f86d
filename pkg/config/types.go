package config

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIVersion and Kind identify the config format.
const (
	APIVersion = "regcred.io/v1alpha1"
	Kind       = "RegistryConfig"
)

// Config is the whole registry config.
type Config struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Registries []Registry `json:"registries"`
}

// Registry is one container registry and how regcred serves its credentials.
type Registry struct {
	// Name is unique, a DNS label; it names the pull secrets regcred makes.
	Name string       `json:"name"`
	Type RegistryType `json:"type"`
	URL  string       `json:"url"`
	// Default marks the registry the command line acts on when none is named.
	Default bool `json:"default,omitempty"`

	// Username and Password serve every type but ecr.
	Username *ValueSource `json:"username,omitempty"`
	Password *ValueSource `json:"password,omitempty"`
	// ECR serves the ecr type only.
	ECR *ECR `json:"ecr,omitempty"`

	Connection ConnectionMode `json:"connection,omitempty"`
	// CACert is the PEM CA bundle that secure-with-ca verifies against.
	CACert *ValueSource `json:"caCert,omitempty"`

	Clusters   ClusterPolicy    `json:"clusters,omitempty"`
	PullSecret PullSecretPolicy `json:"pullSecret,omitempty"`
	// NamespaceSelector limits the namespaces whose Pods get this
	// registry's credentials; nil means every namespace.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// PlainHTTP reports whether the registry's URL is written http://.
func (r *Registry) PlainHTTP() bool { return strings.HasPrefix(strings.TrimSpace(r.URL), "http://") }

// SourceField is one value source of a registry, by its field path.
type SourceField struct {
	Path   string
	Source *ValueSource
	// Secret says whether the value is a credential (never inline in a
	// ConfigMap) rather than an identifier or a certificate.
	Secret bool
}

// Sources returns the registry's value sources that are set.
func (r *Registry) Sources() []SourceField {
	all := []SourceField{
		{Path: "username", Source: r.Username},
		{Path: "password", Source: r.Password, Secret: true},
		{Path: "caCert", Source: r.CACert},
	}
	if r.ECR != nil {
		all = append(all,
			SourceField{Path: "ecr.accessKeyID", Source: r.ECR.AccessKeyID, Secret: true},
			SourceField{Path: "ecr.secretAccessKey", Source: r.ECR.SecretAccessKey, Secret: true})
	}
	out := all[:0]
	for _, f := range all {
		if f.Source != nil {
			out = append(out, f)
		}
	}
	return out
}

// ECR holds the credentials of an AWS ECR registry.
type ECR struct {
	Auth            ECRAuth      `json:"auth"`
	AccessKeyID     *ValueSource `json:"accessKeyID,omitempty"`
	SecretAccessKey *ValueSource `json:"secretAccessKey,omitempty"`
}

// ValueSource is a value written inline or a reference to a key of a Secret
// in regcred's own namespace. Exactly one is set.
type ValueSource struct {
	Value        *string       `json:"value,omitempty"`
	SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
}

// SecretKeyRef names a key of a Secret in regcred's namespace.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// ClusterPolicy says which clusters get this registry's credentials.
type ClusterPolicy struct {
	Mode  ClusterMode `json:"mode,omitempty"`
	Names []string    `json:"names,omitempty"`
}

// InjectsInto reports whether the policy injects credentials in the named cluster.
func (p ClusterPolicy) InjectsInto(cluster string) bool {
	listed := false
	for _, n := range p.Names {
		if n == cluster {
			listed = true
			break
		}
	}
	if p.Mode == InjectOnly {
		return listed
	}
	return !listed
}

// PullSecretPolicy says which credentials are injected.
type PullSecretPolicy struct {
	Mode PullSecretMode `json:"mode,omitempty"`
	// Name is the existing Secret injected in image-pull-secret mode.
	Name string `json:"name,omitempty"`
}

// RegistryType is the kind of registry, which decides its URL forms and
// credentials. The types regcred knows are described in package
// registrytype, one file each.
type RegistryType string

// ECRAuth is how regcred authenticates to AWS for an ECR registry.
type ECRAuth string

// The ECR auth types.
const (
	// ECRIAMRole uses regcred's own AWS identity (the SDK's default chain).
	ECRIAMRole ECRAuth = "iam-role"
	// ECRAccessKey uses the access key in the config.
	ECRAccessKey ECRAuth = "access-key"
)

// ECRAuths lists every ECR auth type.
var ECRAuths = []ECRAuth{ECRIAMRole, ECRAccessKey}

// ParseECRAuth returns the ECR auth type named s.
func ParseECRAuth(s string) (ECRAuth, error) { return parseEnum(s, ECRAuths) }

// ConnectionMode says how regcred's own connections to a registry are secured.
type ConnectionMode string

// The connection modes.
const (
	Secure       ConnectionMode = "secure"
	SecureWithCA ConnectionMode = "secure-with-ca"
	Insecure     ConnectionMode = "insecure"
)

// ConnectionModes lists every connection mode.
var ConnectionModes = []ConnectionMode{Secure, SecureWithCA, Insecure}

// ParseConnectionMode returns the connection mode named s.
func ParseConnectionMode(s string) (ConnectionMode, error) { return parseEnum(s, ConnectionModes) }

// ClusterMode is the kind of per-cluster injection policy.
type ClusterMode string

// The cluster modes.
const (
	InjectEverywhereExcept ClusterMode = "inject-everywhere-except"
	InjectOnly             ClusterMode = "inject-only"
)

// ClusterModes lists every cluster mode.
var ClusterModes = []ClusterMode{InjectEverywhereExcept, InjectOnly}

// ParseClusterMode returns the cluster mode named s.
func ParseClusterMode(s string) (ClusterMode, error) { return parseEnum(s, ClusterModes) }

// PullSecretMode is where injected credentials come from.
type PullSecretMode string

// The pull-secret modes.
const (
	// RegistryCredentials: regcred makes and keeps the pull secret itself.
	RegistryCredentials PullSecretMode = "registry-credentials" //nolint:gosec // a mode name, not a credential
	// ImagePullSecret: regcred injects the name of a Secret the admin made.
	ImagePullSecret PullSecretMode = "image-pull-secret" //nolint:gosec // a mode name, not a credential
)

// PullSecretModes lists every pull-secret mode.
var PullSecretModes = []PullSecretMode{RegistryCredentials, ImagePullSecret}

// ParsePullSecretMode returns the pull-secret mode named s.
func ParsePullSecretMode(s string) (PullSecretMode, error) { return parseEnum(s, PullSecretModes) }

func parseEnum[T ~string](s string, values []T) (T, error) {
	for _, v := range values {
		if string(v) == s {
			return v, nil
		}
	}
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
}
