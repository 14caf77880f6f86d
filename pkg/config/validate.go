package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/regcred/regcred/pkg/image"
)

// SecretNamePrefix starts the name of every pull secret regcred makes:
// "regcred-<registry name>".
const SecretNamePrefix = "regcred-"

// JSONKeyUser and JSONKeyBase64User are the user names Google registries
// accept with a service-account key.
const (
	JSONKeyUser       = "_json_key"
	JSONKeyBase64User = "_json_key_base64"
)

// StoredIn says where a config is stored, which decides whether it may hold
// credentials inline.
type StoredIn string

// The places a config is stored.
const (
	// InConfigMap: credentials must be Secret references.
	InConfigMap StoredIn = "ConfigMap"
	// InSecret: credentials may be inline.
	InSecret StoredIn = "Secret"
)

// FieldError is one problem of a config: the registry, the field, what is wrong.
type FieldError struct {
	// Registry is `registry "name"`, or `registries[i]` when it has no usable name.
	Registry string
	Field    string
	Message  string
}

func (e *FieldError) Error() string {
	switch {
	case e.Registry == "":
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	case e.Field == "":
		return fmt.Sprintf("%s: %s", e.Registry, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Registry, e.Field, e.Message)
}

// Validate checks the whole config and returns every problem it finds,
// joined, or nil. No message contains a credential.
func (c *Config) Validate(in StoredIn) error {
	var errs []error
	if c.APIVersion != APIVersion {
		errs = append(errs, &FieldError{Field: "apiVersion", Message: fmt.Sprintf("must be %s", APIVersion)})
	}
	if c.Kind != Kind {
		errs = append(errs, &FieldError{Field: "kind", Message: fmt.Sprintf("must be %s", Kind)})
	}
	names := map[string]int{}
	locations := map[image.Location]string{}
	var defaults []string
	for i := range c.Registries {
		r := &c.Registries[i]
		v := &registryValidator{label: registryLabel(i, r.Name), in: in}
		if prev, dup := names[r.Name]; dup && r.Name != "" {
			v.fail("name", fmt.Sprintf("is also the name of registries[%d]; names must be unique", prev))
		}
		names[r.Name] = i
		v.validate(r)
		if v.loc != nil {
			if other, dup := locations[*v.loc]; dup {
				v.fail("url", fmt.Sprintf("%s is also the url of registry %q", v.loc, other))
			} else {
				locations[*v.loc] = r.Name
			}
		}
		if r.Default {
			defaults = append(defaults, r.Name)
		}
		errs = append(errs, v.errs...)
	}
	if len(defaults) > 1 {
		errs = append(errs, &FieldError{Field: "default", Message: fmt.Sprintf("at most one registry may be the default, not %s", strings.Join(quoteAll(defaults), ", "))})
	}
	return errors.Join(errs...)
}

type registryValidator struct {
	label string
	in    StoredIn
	errs  []error
	loc   *image.Location
}

func (v *registryValidator) fail(field, msg string) {
	v.errs = append(v.errs, &FieldError{Registry: v.label, Field: field, Message: msg})
}

func (v *registryValidator) validate(r *Registry) {
	if r.Name == "" {
		v.fail("name", "must not be empty")
	} else if msgs := validation.IsDNS1123Label(r.Name); len(msgs) > 0 {
		v.fail("name", "must be a DNS label (lower-case letters, digits and '-'): "+strings.Join(msgs, "; "))
	} else if max := validation.DNS1123LabelMaxLength - len(SecretNamePrefix); len(r.Name) > max {
		v.fail("name", fmt.Sprintf("must be at most %d characters, to name its pull secrets %s<name>", max, SecretNamePrefix))
	}
	if _, err := ParseRegistryType(string(r.Type)); err != nil {
		v.fail("type", err.Error())
	} else {
		v.validateURL(r)
	}
	v.validateConnection(r)
	v.validateCredentials(r)
	v.validatePolicies(r)
}

var (
	ecrHost         = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z]{2}(-[a-z]+)+-[0-9]+\.amazonaws\.com(\.cn)?$`)
	ecrDualStack    = regexp.MustCompile(`^[0-9]{12}\.dkr-ecr(-fips)?\.[a-z]{2}(-[a-z]+)+-[0-9]+\.on\.aws$`)
	azureHost       = regexp.MustCompile(`^[a-z0-9]{5,50}\.azurecr\.(io|cn|us)$`)
	artifactHost    = regexp.MustCompile(`^[a-z0-9-]+-docker\.pkg\.dev$`)
	gcrHost         = regexp.MustCompile(`^([a-z]+\.)?gcr\.io$`)
	expectedURLForm = map[RegistryType]string{
		TypeECR:              "https://<12-digit account>.dkr.ecr.<region>.amazonaws.com (or .amazonaws.com.cn, dkr.ecr-fips, or the dual-stack <account>.dkr-ecr.<region>.on.aws)",
		TypeDocker:           "docker.io, optionally with an organisation path (docker.io/myorg)",
		TypeAzure:            "<registry>.azurecr.io",
		TypeArtifactRegistry: "<region>-docker.pkg.dev, optionally with /<project>[/<repository>]",
		TypeGCR:              "gcr.io or a regional <region>.gcr.io",
		TypeQuay:             "quay.io (for a self-hosted Quay, use type other)",
	}
)

// HostMatchesType reports whether a registry host has the form its type
// requires. Type other accepts any host.
func HostMatchesType(t RegistryType, loc image.Location) bool {
	h := loc.Host
	switch t {
	case TypeECR:
		return ecrHost.MatchString(h) || ecrDualStack.MatchString(h)
	case TypeDocker:
		return h == image.DockerHub
	case TypeAzure:
		return azureHost.MatchString(h)
	case TypeArtifactRegistry:
		return artifactHost.MatchString(h)
	case TypeGCR:
		return gcrHost.MatchString(h)
	case TypeQuay:
		return h == "quay.io"
	}
	return true
}

func (v *registryValidator) validateURL(r *Registry) {
	loc, err := image.ParseLocation(r.URL)
	if err != nil {
		v.fail("url", err.Error())
		return
	}
	if !HostMatchesType(r.Type, loc) {
		v.fail("url", fmt.Sprintf("%q is not a %s registry address: must be %s", r.URL, r.Type, expectedURLForm[r.Type]))
		return
	}
	if strings.HasPrefix(strings.TrimSpace(r.URL), "http://") {
		if r.Type != TypeOther {
			v.fail("url", fmt.Sprintf("a %s registry is served over https", r.Type))
		} else if r.Connection != Insecure {
			v.fail("url", "plain http:// needs connection: insecure")
		}
	}
	v.loc = &loc
}

func (v *registryValidator) validateConnection(r *Registry) {
	if _, err := ParseConnectionMode(string(r.Connection)); err != nil {
		v.fail("connection", err.Error())
		return
	}
	switch {
	case r.Connection == SecureWithCA && r.CACert == nil:
		v.fail("caCert", "is required with connection: secure-with-ca")
	case r.Connection != SecureWithCA && r.CACert != nil:
		v.fail("caCert", "is used only with connection: secure-with-ca")
	case r.CACert != nil:
		// A CA certificate is public: it may be inline in a ConfigMap.
		v.source("caCert", r.CACert, false)
	}
}

func (v *registryValidator) validateCredentials(r *Registry) {
	required := r.PullSecret.Mode != ImagePullSecret
	if r.Type == TypeECR {
		if r.Username != nil {
			v.fail("username", "is not used by an ecr registry (its user is AWS): use ecr.auth")
		}
		if r.Password != nil {
			v.fail("password", "is not used by an ecr registry (its password is a token regcred mints): use ecr.auth")
		}
		v.validateECR(r.ECR, required)
		return
	}
	if r.ECR != nil {
		v.fail("ecr", fmt.Sprintf("is used only by type ecr, not %s", r.Type))
	}
	switch {
	case r.Username == nil && required:
		v.fail("username", "is required")
	case r.Username != nil:
		v.source("username", r.Username, false)
		if (r.Type == TypeGCR || r.Type == TypeArtifactRegistry) && r.Username.Value != nil &&
			*r.Username.Value != JSONKeyUser && *r.Username.Value != JSONKeyBase64User {
			v.fail("username", fmt.Sprintf("must be %s or %s for a service-account key", JSONKeyUser, JSONKeyBase64User))
		}
	}
	switch {
	case r.Password == nil && required:
		v.fail("password", "is required")
	case r.Password != nil:
		v.source("password", r.Password, true)
	}
}

func (v *registryValidator) validateECR(e *ECR, required bool) {
	if e == nil {
		if required {
			v.fail("ecr", "is required: set ecr.auth to iam-role or access-key")
		}
		return
	}
	if _, err := ParseECRAuth(string(e.Auth)); err != nil {
		v.fail("ecr.auth", err.Error())
		return
	}
	switch e.Auth {
	case ECRAccessKey:
		if e.AccessKeyID == nil {
			v.fail("ecr.accessKeyID", "is required with auth: access-key")
		} else {
			v.source("ecr.accessKeyID", e.AccessKeyID, true)
		}
		if e.SecretAccessKey == nil {
			v.fail("ecr.secretAccessKey", "is required with auth: access-key")
		} else {
			v.source("ecr.secretAccessKey", e.SecretAccessKey, true)
		}
	case ECRIAMRole:
		if e.AccessKeyID != nil || e.SecretAccessKey != nil {
			v.fail("ecr", "auth: iam-role uses regcred's own AWS identity; remove accessKeyID and secretAccessKey or use auth: access-key")
		}
	}
}

// source checks a value source; secret says whether the value is a
// credential, which a ConfigMap must not hold inline.
func (v *registryValidator) source(field string, s *ValueSource, secret bool) {
	switch {
	case s.Value != nil && s.SecretKeyRef != nil:
		v.fail(field, "set value or secretKeyRef, not both")
	case s.Value == nil && s.SecretKeyRef == nil:
		v.fail(field, "set value or secretKeyRef")
	case s.Value != nil && secret && v.in == InConfigMap:
		v.fail(field, "a credential must not be written inline in a ConfigMap: use secretKeyRef (or keep the config in a Secret)")
	case s.Value != nil && *s.Value == "":
		v.fail(field+".value", "must not be empty")
	case s.SecretKeyRef != nil:
		if msgs := validation.IsDNS1123Subdomain(s.SecretKeyRef.Name); len(msgs) > 0 {
			v.fail(field+".secretKeyRef.name", "must be a Secret name: "+strings.Join(msgs, "; "))
		}
		if msgs := validation.IsConfigMapKey(s.SecretKeyRef.Key); len(msgs) > 0 {
			v.fail(field+".secretKeyRef.key", "must be a Secret key: "+strings.Join(msgs, "; "))
		}
	}
}

func (v *registryValidator) validatePolicies(r *Registry) {
	if _, err := ParseClusterMode(string(r.Clusters.Mode)); err != nil {
		v.fail("clusters.mode", err.Error())
	} else if r.Clusters.Mode == InjectOnly && len(r.Clusters.Names) == 0 {
		v.fail("clusters.names", "inject-only needs at least one cluster name (without one, this registry is injected nowhere)")
	}
	seen := map[string]bool{}
	for i, n := range r.Clusters.Names {
		field := fmt.Sprintf("clusters.names[%d]", i)
		switch {
		case strings.TrimSpace(n) == "":
			v.fail(field, "must not be empty")
		case seen[n]:
			v.fail(field, fmt.Sprintf("%q is listed twice", n))
		}
		seen[n] = true
	}
	if r.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(r.NamespaceSelector); err != nil {
			v.fail("namespaceSelector", err.Error())
		}
	}
	if _, err := ParsePullSecretMode(string(r.PullSecret.Mode)); err != nil {
		v.fail("pullSecret.mode", err.Error())
		return
	}
	switch r.PullSecret.Mode {
	case ImagePullSecret:
		if r.PullSecret.Name == "" {
			v.fail("pullSecret.name", "is required with mode: image-pull-secret")
		} else if msgs := validation.IsDNS1123Subdomain(r.PullSecret.Name); len(msgs) > 0 {
			v.fail("pullSecret.name", "must be a Secret name: "+strings.Join(msgs, "; "))
		}
	case RegistryCredentials:
		if r.PullSecret.Name != "" {
			v.fail("pullSecret.name", fmt.Sprintf("is used only with mode: image-pull-secret (in registry-credentials mode regcred names the secret %s%s)", SecretNamePrefix, r.Name))
		}
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}
