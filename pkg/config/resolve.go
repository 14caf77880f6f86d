package config

import (
	"context"
	"errors"
	"sort"
)

// SecretReader reads one key of a Secret in regcred's own namespace.
type SecretReader interface {
	ReadSecretKey(ctx context.Context, name, key string) ([]byte, error)
}

// ErrSecretNotFound and ErrKeyNotFound are what a SecretReader returns for a
// reference that does not resolve.
var (
	ErrSecretNotFound = errors.New("secret not found")
	ErrKeyNotFound    = errors.New("key not found in secret")
)

// Values are a registry's resolved values, by field path ("username",
// "password", "caCert", "ecr.accessKeyID", "ecr.secretAccessKey"). They
// hold credentials: never log or print them.
type Values map[string]string

// Resolved is the outcome of Resolve.
type Resolved struct {
	Values Values
	// Unresolved lists the fields whose secretKeyRefs were not read (no
	// reader was given: an offline check).
	Unresolved []string
	// Failed lists the fields whose secretKeyRefs were read without a
	// usable value; each is reported.
	Failed []string
}

// Complete reports whether every set field was resolved.
func (r Resolved) Complete() bool { return len(r.Unresolved) == 0 }

// Resolve reads every value a registry's sources give. With a nil reader,
// secretKeyRefs are left unread and listed in Unresolved. A Secret key
// that is missing, empty or only whitespace is a problem, and its field
// is listed in Failed. Problems name the field and the Secret, never a
// value.
func Resolve(ctx context.Context, r *Registry, secrets SecretReader, rep *Reporter) Resolved {
	out := Resolved{Values: Values{}}
	for _, f := range r.Sources() {
		s := f.Source
		switch {
		case s.Value != nil:
			out.Values[f.Path] = *s.Value
		case s.SecretKeyRef == nil:
			// Validate reports it.
		case secrets == nil:
			out.Unresolved = append(out.Unresolved, f.Path)
		default:
			b, err := secrets.ReadSecretKey(ctx, s.SecretKeyRef.Name, s.SecretKeyRef.Key)
			problem := ""
			switch {
			case err != nil:
				problem = err.Error()
			case len(b) == 0:
				problem = "is empty"
			case blank(string(b)):
				problem = "holds only whitespace"
			default:
				out.Values[f.Path] = string(b)
				continue
			}
			rep.Failf(f.Path, "secretKeyRef %s/%s: %s", s.SecretKeyRef.Name, s.SecretKeyRef.Key, problem)
			out.Failed = append(out.Failed, f.Path)
		}
	}
	return out
}

// SecretNames returns the names of the Secrets the config refers to, sorted.
func (c *Config) SecretNames() []string {
	set := map[string]bool{}
	for i := range c.Registries {
		for _, f := range c.Registries[i].Sources() {
			if f.Source.SecretKeyRef != nil {
				set[f.Source.SecretKeyRef.Name] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultRegistry returns the registry marked default when exactly one
// is, else nil.
func (c *Config) DefaultRegistry() *Registry {
	var d *Registry
	for i := range c.Registries {
		if c.Registries[i].Default {
			if d != nil {
				return nil
			}
			d = &c.Registries[i]
		}
	}
	return d
}

// Default fills in the defaults of the optional fields every type shares.
func (c *Config) Default() {
	for i := range c.Registries {
		r := &c.Registries[i]
		if r.Connection == "" {
			r.Connection = Secure
		}
		if r.Clusters.Mode == "" {
			r.Clusters.Mode = InjectEverywhereExcept
		}
		if r.PullSecret.Mode == "" {
			r.PullSecret.Mode = RegistryCredentials
		}
	}
}
