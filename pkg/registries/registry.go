package registries

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registrytype"
)

// Registry is one configured registry, compiled and ready to serve.
type Registry struct {
	Name     string
	Type     *registrytype.Type
	Location image.Location
	Default  bool
	// URL is the registry address as configured.
	URL string
	// PlainHTTP is set for an http:// URL.
	PlainHTTP bool
	// Connection and CACert govern regcred's own connections to the registry.
	Connection config.ConnectionMode
	CACert     []byte
	// CACerts are CACert's certificates (DER), as ParseCACert read them.
	CACerts [][]byte
	// Injects says whether this cluster's policy injects the registry's
	// credentials at all.
	Injects bool
	// Namespaces selects the namespaces (by label) whose Pods get the
	// registry's credentials; nil means every namespace.
	Namespaces labels.Selector
	// Mode is where the injected credentials come from.
	Mode config.PullSecretMode
	// SecretName is the pull secret injected into matching Pods.
	SecretName string
	// Provider supplies the credentials of a registry-credentials registry;
	// nil in image-pull-secret mode when the config gives none, when the
	// config was compiled without reading its Secrets (Unresolved), and
	// for an ECR registry compiled without a token minter (Options.Types).
	Provider credentials.Provider
	// Unresolved lists the fields whose secretKeyRefs were not read (an
	// offline check).
	Unresolved []string

	// static holds the rendered pull secrets (main, exact) of credentials
	// that never expire, so that admissions do not render them again.
	static [2]*pullsecret.Want
	// rendered holds the pull secrets of the latest token.
	rendered atomic.Pointer[renderedWant]
}

// ExactSecretName names the registry's second pull secret, for Pods that
// pull the repository named exactly like its path prefix; empty for a
// registry without a prefix (its one secret serves everything).
func (r *Registry) ExactSecretName() string {
	if r.Location.Prefix == "" || r.Mode != config.RegistryCredentials {
		return ""
	}
	return r.SecretName + pullsecret.ExactSuffix
}

// SecretFor returns the pull secret that serves ref: the exact variant for
// the repository named like the prefix, else the registry's secret.
func (r *Registry) SecretFor(ref image.Ref) string {
	if exact := r.ExactSecretName(); exact != "" && ref.Path == r.Location.Prefix {
		return exact
	}
	return r.SecretName
}

// Manages reports whether regcred makes and keeps the registry's pull
// secrets in this cluster.
func (r *Registry) Manages() bool { return r.Injects && r.Mode == config.RegistryCredentials }

// Serves reports whether a namespace with these labels matches the
// registry's namespace selector.
func (r *Registry) Serves(namespaceLabels map[string]string) bool {
	return r.Namespaces == nil || r.Namespaces.Matches(labels.Set(namespaceLabels))
}

// Need says which pull secret of a registry is wanted.
type Need struct {
	// Exact asks for the exact variant.
	Exact bool
	// Hosts are the image hosts the secret must serve, for a registry
	// whose credential depends on the host (a glob ECR registry: a token
	// per region); others serve every host they match.
	Hosts []string
}

// Want returns the pull secret the registry needs now.
func (r *Registry) Want(ctx context.Context, need Need) (*pullsecret.Want, error) {
	i := variant(need.Exact)
	if r.static[i] != nil {
		return r.static[i], nil
	}
	if r.Provider == nil {
		return nil, fmt.Errorf("registry %q has no credentials", r.Name)
	}
	if ph, ok := r.Provider.(credentials.PerHost); ok {
		return r.wantPerHost(ctx, ph, need)
	}
	cred, err := r.Provider.Credential(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", r.Name, err)
	}
	// A token serves many admissions: render it once.
	if last := r.rendered.Load(); last != nil && last.cred == cred {
		return last.want[i], nil
	}
	wants, err := r.renderBoth(cred)
	if err != nil {
		return nil, err
	}
	r.rendered.Store(&renderedWant{cred: cred, want: wants})
	return wants[i], nil
}

// wantPerHost renders the pull secret of a registry with a credential per
// host pattern: one entry per pattern the hosts need.
func (r *Registry) wantPerHost(ctx context.Context, ph credentials.PerHost, need Need) (*pullsecret.Want, error) {
	if len(need.Hosts) == 0 {
		// A secret without hosts would hold no credential at all.
		return nil, fmt.Errorf("registry %q: no image host to mint a token for", r.Name)
	}
	type part struct {
		host string
		p    credentials.Provider
	}
	byPattern := map[string]part{}
	for _, h := range need.Hosts {
		pattern, p, err := ph.ForHost(h)
		if err != nil {
			return nil, fmt.Errorf("registry %q: image host %q: %w", r.Name, h, err)
		}
		if _, seen := byPattern[pattern]; !seen {
			byPattern[pattern] = part{host: h, p: p}
		}
	}
	patterns := slices.Sorted(maps.Keys(byPattern))
	w := &pullsecret.Want{Name: r.SecretName, Registry: r.Name, Source: r.Location.String()}
	if need.Exact {
		w.Name = r.ExactSecretName()
	}
	entries := make([]pullsecret.Entry, 0, len(patterns))
	for _, pattern := range patterns {
		pt := byPattern[pattern]
		cred, err := pt.p.Credential(ctx)
		if err != nil {
			return nil, fmt.Errorf("registry %q: %w", r.Name, err)
		}
		if !cred.ExpiresAt.IsZero() && (w.ExpiresAt.IsZero() || cred.ExpiresAt.Before(w.ExpiresAt)) {
			w.ExpiresAt = cred.ExpiresAt
		}
		loc := image.Location{Host: pattern, Prefix: r.Location.Prefix}
		entries = append(entries, pullsecret.Entry{Keys: pullsecret.AuthKeys(loc, need.Exact), Credential: cred})
		w.Hosts = append(w.Hosts, pt.host)
	}
	data, err := pullsecret.Render(entries...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: rendering pull secret: %w", r.Name, err)
	}
	w.Data = data
	w.Widen = func(ctx context.Context, hosts []string) (*pullsecret.Want, error) {
		return r.wantPerHost(ctx, ph, Need{Exact: need.Exact, Hosts: pullsecret.UnionHosts(need.Hosts, hosts)})
	}
	w.HostPattern = func(host string) string {
		if pattern, err := ph.PatternOf(host); err == nil {
			return pattern
		}
		return host
	}
	return w, nil
}

// PerHost reports whether the registry's credential depends on the image
// host (a glob ECR registry: a token per region).
func (r *Registry) PerHost() bool {
	_, ok := r.Provider.(credentials.PerHost)
	return ok
}

// TokenSources returns the registry's sources of expiring tokens, for the
// refresher: its provider's, or a glob registry's per region.
func (r *Registry) TokenSources() []credentials.Expiring {
	switch p := r.Provider.(type) {
	case credentials.PerHost:
		return p.Sources()
	case credentials.Expiring:
		return []credentials.Expiring{p}
	}
	return nil
}

func variant(exact bool) int {
	if exact {
		return 1
	}
	return 0
}

// renderedWant is the pull secrets last rendered for a token.
type renderedWant struct {
	cred credentials.Credential
	want [2]*pullsecret.Want
}

// renderBoth renders the main pull secret and, for a registry with a path
// prefix, the exact variant.
func (r *Registry) renderBoth(cred credentials.Credential) ([2]*pullsecret.Want, error) {
	var out [2]*pullsecret.Want
	for i, exact := range []bool{false, true} {
		name := r.SecretName
		if exact {
			if name = r.ExactSecretName(); name == "" {
				out[i] = out[0] // no prefix: one secret serves all
				continue
			}
		}
		data, err := pullsecret.Render(pullsecret.Entry{Keys: pullsecret.AuthKeys(r.Location, exact), Credential: cred})
		if err != nil {
			return out, fmt.Errorf("registry %q: rendering pull secret: %w", r.Name, err)
		}
		out[i] = &pullsecret.Want{Name: name, Registry: r.Name, Data: data, ExpiresAt: cred.ExpiresAt, Source: r.Location.String()}
	}
	return out, nil
}

// LoginHost is the host regcred's login check talks to.
func (r *Registry) LoginHost() string { return r.Type.Login(r.Location) }

// ParseSecretName reads the name of a pull secret regcred makes:
// "regcred-<registry>", or "regcred-<registry>.exact" for the exact variant.
func ParseSecretName(name string) (registry string, exact, ok bool) {
	rest, ok := strings.CutPrefix(name, config.SecretNamePrefix)
	if !ok || rest == "" {
		return "", false, false
	}
	registry, exact = strings.CutSuffix(rest, pullsecret.ExactSuffix)
	return registry, exact, registry != ""
}
