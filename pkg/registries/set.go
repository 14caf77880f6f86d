package registries

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/pullsecret"
)

// Registry is one configured registry, ready to serve.
type Registry struct {
	Name     string
	Type     config.RegistryType
	Location image.Location
	Default  bool
	// URL is the registry address as configured.
	URL string
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
	// nil in image-pull-secret mode when the config gives none.
	Provider credentials.Provider

	// static holds the rendered pull secret of credentials that never
	// expire, so that admissions do not render it again.
	static *pullsecret.Want
	// rendered holds the pull secret of the latest token.
	rendered atomic.Pointer[renderedWant]
}

// Manages reports whether regcred makes and keeps the registry's pull
// secrets in this cluster.
func (r *Registry) Manages() bool { return r.Injects && r.Mode == config.RegistryCredentials }

// Serves reports whether a namespace with these labels gets the registry's
// credentials.
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

// Set is an immutable, compiled config.
type Set struct {
	// Registries are in config order, the default one first.
	Registries []*Registry
	// Version identifies the config object's version (its resourceVersion).
	Version string
	// Loaded is when the set was built.
	Loaded time.Time

	byName  map[string]*Registry
	matcher *image.Matcher[*Registry]
}

// Options tune Build.
type Options struct {
	// ClusterName is this cluster's name, for the per-cluster policy.
	ClusterName string
	// StoredIn says whether the config came from a ConfigMap or a Secret.
	StoredIn config.StoredIn
	// Secrets resolves secretKeyRefs.
	Secrets config.SecretReader
	// Tokens builds the providers of token registry types (ECR).
	Tokens credentials.TokenProviderFunc
	// SkipCredentials builds a set that can match images and apply
	// policies but holds no credentials (offline tools).
	SkipCredentials bool
	// Version is the config object's resourceVersion, for the record.
	Version string
}

// Empty returns a set with no registries.
func Empty() *Set {
	return &Set{byName: map[string]*Registry{}, matcher: image.NewMatcher[*Registry]()}
}

// Build validates cfg, resolves its references and builds the set. It
// returns every problem at once; none quotes a credential.
func Build(ctx context.Context, cfg *config.Config, opts Options) (*Set, error) {
	if err := cfg.Validate(opts.StoredIn); err != nil {
		return nil, err
	}
	s := Empty()
	s.Version, s.Loaded = opts.Version, time.Now()
	var errs []error
	for i := range cfg.Registries {
		r, err := build(ctx, &cfg.Registries[i], opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byName[r.Name] = r
		s.matcher.Add(r.Location, r)
		if r.Default {
			s.Registries = append([]*Registry{r}, s.Registries...)
		} else {
			s.Registries = append(s.Registries, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func build(ctx context.Context, c *config.Registry, opts Options) (*Registry, error) {
	loc, err := image.ParseLocation(c.URL)
	if err != nil { // Validate has checked it already.
		return nil, fmt.Errorf("registry %q: url: %w", c.Name, err)
	}
	var creds config.Credentials
	if !opts.SkipCredentials {
		if creds, err = config.Resolve(ctx, c, opts.Secrets); err != nil {
			return nil, err
		}
	}
	r := &Registry{
		Name:       c.Name,
		Type:       c.Type,
		Location:   loc,
		URL:        c.URL,
		Default:    c.Default,
		Connection: c.Connection,
		CACert:     creds.CACert,
		Injects:    c.Clusters.InjectsInto(opts.ClusterName),
		Mode:       c.PullSecret.Mode,
		SecretName: config.SecretNamePrefix + c.Name,
	}
	if r.Mode == config.ImagePullSecret {
		r.SecretName = c.PullSecret.Name
	}
	if c.NamespaceSelector != nil {
		if r.Namespaces, err = metav1.LabelSelectorAsSelector(c.NamespaceSelector); err != nil {
			return nil, fmt.Errorf("registry %q: namespaceSelector: %w", c.Name, err)
		}
	}
	hasCreds := c.Username != nil || c.Password != nil || c.ECR != nil
	if opts.SkipCredentials || (r.Mode == config.ImagePullSecret && !hasCreds) {
		return r, nil
	}
	r.Provider, err = credentials.New(c, creds, opts.Tokens)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", c.Name, err)
	}
	if static, ok := r.Provider.(credentials.Static); ok {
		if r.static, err = r.render(credentials.Credential(static)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Get returns the registry of that name, or nil.
func (s *Set) Get(name string) *Registry { return s.byName[name] }

// Match is the registry an image matched, or why none did.
type Match struct {
	// Registry is nil when the image matched none.
	Registry *Registry
	// Ref is the parsed image; zero when it did not parse.
	Ref image.Ref
	// Hint explains a miss the admin may not expect; empty otherwise.
	Hint string
}

// Match finds the registry serving an image.
func (s *Set) Match(img string) Match {
	ref, err := image.Parse(img)
	if err != nil {
		return Match{Hint: fmt.Sprintf("image %q is not a valid reference, so it matches no registry", img)}
	}
	if r, ok := s.matcher.Match(ref); ok {
		return Match{Registry: r, Ref: ref}
	}
	if r, ok := s.matcher.MatchFoldingCase(ref); ok {
		return Match{Ref: ref, Hint: fmt.Sprintf("image %q names registry host %q in another letter case than registry %q (%s); the kubelet matches credentials case-sensitively, so nothing was injected: write the host in lower case", img, ref.Host, r.Name, r.Location)}
	}
	return Match{Ref: ref}
}

// PlainHTTP reports whether the registry is configured as http://.
func (r *Registry) PlainHTTP() bool { return strings.HasPrefix(strings.TrimSpace(r.URL), "http://") }
