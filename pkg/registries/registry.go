package registries

import (
	"context"
	"fmt"
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
	// nil in image-pull-secret mode when the config gives none, and when
	// the config was compiled without reading its Secrets (Unresolved).
	Provider credentials.Provider
	// Unresolved lists the fields whose secretKeyRefs were not read (an
	// offline check).
	Unresolved []string

	// static holds the rendered pull secret of credentials that never
	// expire, so that admissions do not render it again.
	static *pullsecret.Want
	// rendered holds the pull secret of the latest token.
	rendered atomic.Pointer[renderedWant]
}

// Manages reports whether regcred makes and keeps the registry's pull
// secrets in this cluster.
func (r *Registry) Manages() bool { return r.Injects && r.Mode == config.RegistryCredentials }

// Serves reports whether a namespace with these labels matches the
// registry's namespace selector.
func (r *Registry) Serves(namespaceLabels map[string]string) bool {
	return r.Namespaces == nil || r.Namespaces.Matches(labels.Set(namespaceLabels))
}

// Want returns the pull secret the registry needs now.
func (r *Registry) Want(ctx context.Context) (*pullsecret.Want, error) {
	if r.static != nil {
		return r.static, nil
	}
	if r.Provider == nil {
		return nil, fmt.Errorf("registry %q has no credentials", r.Name)
	}
	cred, err := r.Provider.Credential(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", r.Name, err)
	}
	// A token serves many admissions: render it once.
	if last := r.rendered.Load(); last != nil && last.cred == cred {
		return last.want, nil
	}
	w, err := r.render(cred)
	if err != nil {
		return nil, err
	}
	r.rendered.Store(&renderedWant{cred: cred, want: w})
	return w, nil
}

// renderedWant is the pull secret last rendered for a token.
type renderedWant struct {
	cred credentials.Credential
	want *pullsecret.Want
}

func (r *Registry) render(cred credentials.Credential) (*pullsecret.Want, error) {
	data, err := pullsecret.Render(r.Location, cred)
	if err != nil {
		return nil, fmt.Errorf("registry %q: rendering pull secret: %w", r.Name, err)
	}
	return &pullsecret.Want{Name: r.SecretName, Registry: r.Name, Data: data, ExpiresAt: cred.ExpiresAt}, nil
}

// LoginHost is the host regcred's login check talks to.
func (r *Registry) LoginHost() string { return r.Type.Login(r.Location) }
