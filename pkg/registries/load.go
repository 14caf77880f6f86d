package registries

import (
	"context"
	"errors"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/registrytype"
)

// Options tune Load and Build.
type Options struct {
	// Types are the registry types known; nil means the built-in ones
	// without an ECR token minter (an ECR registry then has no provider).
	Types *registrytype.Types
	// ClusterName is this cluster's name, for the per-cluster policy.
	ClusterName string
	// StoredIn says whether the config came from a ConfigMap or a Secret.
	StoredIn config.StoredIn
	// Secrets resolves secretKeyRefs. Nil leaves them unread (an offline
	// check): the registries that need them then have no provider, and
	// list the fields in Unresolved.
	Secrets config.SecretReader
	// Version is the config object's resourceVersion, for the record.
	Version string
}

// Load parses, validates and compiles a config: what regcred runs on
// every config change, and what `regcred validate` runs. Its error is
// config.Problems, every problem at once; none quotes a credential.
func Load(ctx context.Context, data []byte, opts Options) (*Set, error) {
	cfg, err := config.Parse(data)
	if cfg == nil {
		return nil, err
	}
	return build(ctx, cfg, opts, config.ProblemsOf(err))
}

// Build validates and compiles a parsed config, as Load does.
func Build(ctx context.Context, cfg *config.Config, opts Options) (*Set, error) {
	return build(ctx, cfg, opts, nil)
}

func build(ctx context.Context, cfg *config.Config, opts Options, ps config.Problems) (*Set, error) {
	types := opts.Types
	if types == nil {
		types = registrytype.Builtin(registrytype.Deps{})
	}
	kinds := make([]*registrytype.Type, len(cfg.Registries))
	for i := range cfg.Registries {
		r := &cfg.Registries[i]
		if kinds[i] = types.Lookup(r, cfg.Reporter(&ps, i)); kinds[i] != nil {
			kinds[i].Default(r)
		}
	}
	ps = append(ps, cfg.Validate(opts.StoredIn)...)
	s := Empty()
	s.Version, s.Loaded = opts.Version, time.Now()
	for i := range cfg.Registries {
		c := &cfg.Registries[i]
		loc, err := image.ParseLocation(c.URL)
		if kinds[i] == nil {
			continue
		}
		var l *image.Location
		if err == nil {
			l = &loc
		}
		kinds[i].Validate(c, l, cfg.Reporter(&ps, i))
	}
	// Only registries without problems so far are compiled: their
	// credentials are resolved and checked too, so that every problem
	// is listed at once.
	flawed := map[int]bool{}
	for _, p := range ps {
		if p.Index != nil {
			flawed[*p.Index] = true
		}
	}
	for i := range cfg.Registries {
		if flawed[i] || kinds[i] == nil {
			continue
		}
		c := &cfg.Registries[i]
		loc, _ := image.ParseLocation(c.URL)
		before := len(ps)
		if r := compile(ctx, c, kinds[i], loc, opts, cfg.Reporter(&ps, i)); len(ps) == before {
			s.add(r)
		}
	}
	if len(ps) > 0 {
		ps.Sort()
		return nil, ps
	}
	return s, nil
}

// compile builds one valid registry, resolving its credentials and
// building its provider; problems go to rep.
func compile(ctx context.Context, c *config.Registry, t *registrytype.Type, loc image.Location, opts Options, rep *config.Reporter) *Registry {
	r := &Registry{
		Name:       c.Name,
		Type:       t,
		Location:   loc,
		URL:        c.URL,
		PlainHTTP:  c.PlainHTTP(),
		Default:    c.Default,
		Connection: c.Connection,
		Injects:    c.Clusters.InjectsInto(opts.ClusterName),
		Mode:       c.PullSecret.Mode,
		SecretName: config.SecretNamePrefix + c.Name,
	}
	if r.Mode == config.ImagePullSecret {
		r.SecretName = c.PullSecret.Name
	}
	if c.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector)
		if err != nil { // config.Validate has checked it
			rep.Fail("namespaceSelector", err.Error())
			return r
		}
		r.Namespaces = sel
	}
	resolved := config.Resolve(ctx, c, opts.Secrets, rep)
	r.Unresolved = resolved.Unresolved
	if ca, ok := resolved.Values["caCert"]; ok {
		certs, err := ParseCACert([]byte(ca))
		if err != nil {
			rep.Fail("caCert", err.Error())
		}
		r.CACert, r.CACerts = []byte(ca), certs
	}
	hasCreds := c.Username != nil || c.Password != nil || c.ECR != nil
	if r.Mode == config.ImagePullSecret && !hasCreds || !resolved.Complete() {
		return r
	}
	// A provider built without a credential that failed to resolve would
	// only report that credential again, in other words.
	if slices.ContainsFunc(resolved.Failed, func(f string) bool { return f != "caCert" }) {
		return r
	}
	spec := credentials.Spec{Registry: c.Name, Location: loc, Values: resolved.Values}
	if c.ECR != nil {
		spec.Auth = string(c.ECR.Auth)
	}
	p, err := t.Provider(spec)
	if err != nil {
		var fe *credentials.FieldError
		if errors.As(err, &fe) {
			rep.Fail(fe.Field, fe.Err.Error())
		} else {
			rep.Fail("", err.Error())
		}
		return r
	}
	r.Provider = p
	if static, ok := p.(credentials.Static); ok {
		w, err := r.renderBoth(credentials.Credential(static))
		if err != nil {
			rep.Fail("", err.Error())
			return r
		}
		r.static = w
	}
	return r
}

// Referenced returns the names of the Secrets a config refers to, as far
// as it parses: the Secrets whose changes may change what it loads to.
func Referenced(data []byte) []string {
	cfg, _ := config.Parse(data)
	if cfg == nil {
		return nil
	}
	return cfg.SecretNames()
}
