package config

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/pullsecret"
)

// SecretNamePrefix starts the name of every pull secret regcred makes:
// "regcred-<registry name>".
const SecretNamePrefix = "regcred-"

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

// Validate checks what every registry has in common, whatever its type:
// the format, names, URLs, connection, value sources and policies. What a
// type requires of its URL and credentials is checked by the type (package
// registrytype). Every problem is returned, none quotes a credential.
func (c *Config) Validate(in StoredIn) Problems {
	var ps Problems
	if c.APIVersion != APIVersion {
		ps = append(ps, Problem{Field: "apiVersion", Message: "must be " + APIVersion})
	}
	if c.Kind != Kind {
		ps = append(ps, Problem{Field: "kind", Message: "must be " + Kind})
	}
	names := map[string]int{}
	for _, r := range c.Registries {
		names[r.Name]++
	}
	// The pull secrets regcred makes, and whose credentials they hold.
	made := map[string]string{}
	for _, r := range c.Registries {
		if r.Name != "" && (r.PullSecret.Mode == RegistryCredentials || r.PullSecret.Mode == "") {
			made[SecretNamePrefix+r.Name] = r.Name
			made[SecretNamePrefix+r.Name+pullsecret.ExactSuffix] = r.Name
		}
	}
	first := map[string]int{}
	locations := map[image.Location]string{}
	var defaults []string
	for i := range c.Registries {
		r := &c.Registries[i]
		rep := NewReporter(&ps, i, r.Name)
		rep.ambiguous = r.Name != "" && names[r.Name] > 1
		if prev, dup := first[r.Name]; dup && r.Name != "" {
			rep.Failf("name", "is also the name of registries[%d]; names must be unique", prev)
		} else {
			first[r.Name] = i
		}
		validateName(r, rep)
		if loc, ok := validateURL(r, rep); ok {
			if other, dup := locations[loc]; dup {
				rep.Failf("url", "%s is also the url of registry %q", loc, other)
			} else {
				locations[loc] = r.Name
			}
		}
		validateConnection(r, rep)
		validateSources(r, rep, in)
		validatePolicies(r, rep)
		if other, ok := made[r.PullSecret.Name]; ok && r.PullSecret.Mode == ImagePullSecret {
			rep.Failf("pullSecret.name", "%s is the pull secret regcred makes for registry %q, with its credentials: name the admin's own secret", r.PullSecret.Name, other)
		}
		if r.Default {
			defaults = append(defaults, r.Name)
		}
	}
	if len(defaults) > 1 {
		ps = append(ps, Problem{Field: "default", Message: fmt.Sprintf("at most one registry may be the default, not %s", strings.Join(quoteAll(defaults), ", "))})
	}
	return ps
}

func validateName(r *Registry, rep *Reporter) {
	switch {
	case r.Name == "":
		rep.Fail("name", "must not be empty")
	case len(validation.IsDNS1123Label(r.Name)) > 0:
		rep.Fail("name", "must be a DNS label (lower-case letters, digits and '-'): "+strings.Join(validation.IsDNS1123Label(r.Name), "; "))
	case len(r.Name) > validation.DNS1123LabelMaxLength-len(SecretNamePrefix):
		rep.Failf("name", "must be at most %d characters, to name its pull secrets %s<name>", validation.DNS1123LabelMaxLength-len(SecretNamePrefix), SecretNamePrefix)
	}
}

func validateURL(r *Registry, rep *Reporter) (image.Location, bool) {
	loc, err := image.ParseLocation(r.URL)
	if err != nil {
		rep.Fail("url", err.Error())
		return loc, false
	}
	if r.PlainHTTP() && r.Connection != Insecure {
		rep.Fail("url", "plain http:// needs connection: insecure")
	}
	return loc, true
}

func validateConnection(r *Registry, rep *Reporter) {
	if _, err := ParseConnectionMode(string(r.Connection)); err != nil {
		rep.Fail("connection", err.Error())
		return
	}
	switch {
	case r.Connection == SecureWithCA && r.CACert == nil:
		rep.Fail("caCert", "is required with connection: secure-with-ca")
	case r.Connection != SecureWithCA && r.CACert != nil:
		rep.Fail("caCert", "is used only with connection: secure-with-ca")
	}
}

// validateSources checks the form of every value source the registry has;
// which ones its type needs is the type's to check.
func validateSources(r *Registry, rep *Reporter, in StoredIn) {
	for _, f := range r.Sources() {
		rep.checkSource(f.Path, f.Source, f.Secret, in)
	}
	if r.ECR != nil {
		if _, err := ParseECRAuth(string(r.ECR.Auth)); err != nil {
			rep.Fail("ecr.auth", err.Error())
		}
	}
}

// checkSource checks a value source; secret says whether the value is a
// credential, which a ConfigMap must not hold inline. A value is used
// trimmed (a pasted token keeps its trailing newline), so one that is
// only whitespace is refused as an empty one is.
func (r *Reporter) checkSource(field string, s *ValueSource, secret bool, in StoredIn) {
	switch {
	case s.Value != nil && s.SecretKeyRef != nil:
		r.Fail(field, "set value or secretKeyRef, not both")
	case s.Value == nil && s.SecretKeyRef == nil:
		r.Fail(field, "set value or secretKeyRef")
	case s.Value != nil && secret && in == InConfigMap:
		r.Fail(field, "a credential must not be written inline in a ConfigMap: use secretKeyRef (or keep the config in a Secret)")
	case s.Value != nil && *s.Value == "":
		r.Fail(field+".value", "must not be empty")
	case s.Value != nil && blank(*s.Value):
		r.Fail(field+".value", "must not be only whitespace")
	case s.SecretKeyRef != nil:
		if msgs := validation.IsDNS1123Subdomain(s.SecretKeyRef.Name); len(msgs) > 0 {
			r.Fail(field+".secretKeyRef.name", "must be a Secret name: "+strings.Join(msgs, "; "))
		}
		if msgs := validation.IsConfigMapKey(s.SecretKeyRef.Key); len(msgs) > 0 {
			r.Fail(field+".secretKeyRef.key", "must be a Secret key: "+strings.Join(msgs, "; "))
		}
	}
}

func validatePolicies(r *Registry, rep *Reporter) {
	if _, err := ParseClusterMode(string(r.Clusters.Mode)); err != nil {
		rep.Fail("clusters.mode", err.Error())
	} else if r.Clusters.Mode == InjectOnly && len(r.Clusters.Names) == 0 {
		rep.Fail("clusters.names", "inject-only needs at least one cluster name (without one, this registry is injected nowhere)")
	}
	seen := map[string]bool{}
	for i, n := range r.Clusters.Names {
		field := fmt.Sprintf("clusters.names[%d]", i)
		switch {
		case strings.TrimSpace(n) == "":
			rep.Fail(field, "must not be empty")
		case seen[n]:
			rep.Failf(field, "%q is listed twice", n)
		}
		seen[n] = true
	}
	if r.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(r.NamespaceSelector); err != nil {
			rep.Fail("namespaceSelector", err.Error())
		}
	}
	if _, err := ParsePullSecretMode(string(r.PullSecret.Mode)); err != nil {
		rep.Fail("pullSecret.mode", err.Error())
		return
	}
	switch r.PullSecret.Mode {
	case ImagePullSecret:
		if r.PullSecret.Name == "" {
			rep.Fail("pullSecret.name", "is required with mode: image-pull-secret")
		} else if msgs := validation.IsDNS1123Subdomain(r.PullSecret.Name); len(msgs) > 0 {
			rep.Fail("pullSecret.name", "must be a Secret name: "+strings.Join(msgs, "; "))
		}
	case RegistryCredentials:
		if r.PullSecret.Name != "" {
			rep.Failf("pullSecret.name", "is used only with mode: image-pull-secret (in registry-credentials mode regcred names the secret %s%s)", SecretNamePrefix, r.Name)
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

// blank reports whether a value is empty once trimmed, as it is used: a
// credential (registrytype, the ECR minter, NormalizeServiceAccountKey)
// and a CA bundle alike.
func blank(v string) bool { return strings.TrimSpace(v) == "" }
