package config

import (
	"context"
	"errors"
	"fmt"
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

// Credentials are a registry's resolved credential values. They are secret:
// never log or print them.
type Credentials struct {
	Username        string
	Password        string
	AccessKeyID     string
	SecretAccessKey string
	CACert          []byte
}

// Resolve reads every value a registry's credentials refer to. Errors name
// the registry, the field and the Secret, never a value.
func Resolve(ctx context.Context, r *Registry, secrets SecretReader) (Credentials, error) {
	var c Credentials
	var errs []error
	read := func(field string, s *ValueSource, dst *string) {
		b, err := resolveSource(ctx, s, secrets)
		if err != nil {
			errs = append(errs, &FieldError{Registry: fmt.Sprintf("registry %q", r.Name), Field: field, Message: err.Error()})
			return
		}
		*dst = string(b)
	}
	read("username", r.Username, &c.Username)
	read("password", r.Password, &c.Password)
	if r.ECR != nil {
		read("ecr.accessKeyID", r.ECR.AccessKeyID, &c.AccessKeyID)
		read("ecr.secretAccessKey", r.ECR.SecretAccessKey, &c.SecretAccessKey)
	}
	var ca string
	read("caCert", r.CACert, &ca)
	if ca != "" {
		c.CACert = []byte(ca)
	}
	return c, errors.Join(errs...)
}

func resolveSource(ctx context.Context, s *ValueSource, secrets SecretReader) ([]byte, error) {
	switch {
	case s == nil:
		return nil, nil
	case s.Value != nil:
		return []byte(*s.Value), nil
	case s.SecretKeyRef == nil:
		return nil, errors.New("set value or secretKeyRef")
	case secrets == nil:
		return nil, fmt.Errorf("secretKeyRef %s/%s: no Secrets can be read here", s.SecretKeyRef.Name, s.SecretKeyRef.Key)
	}
	b, err := secrets.ReadSecretKey(ctx, s.SecretKeyRef.Name, s.SecretKeyRef.Key)
	if err != nil {
		return nil, fmt.Errorf("secretKeyRef %s/%s: %w", s.SecretKeyRef.Name, s.SecretKeyRef.Key, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("secretKeyRef %s/%s: is empty", s.SecretKeyRef.Name, s.SecretKeyRef.Key)
	}
	return b, nil
}

// SecretNames returns the names of the Secrets the config refers to, sorted.
func (c *Config) SecretNames() []string {
	set := map[string]bool{}
	for i := range c.Registries {
		r := &c.Registries[i]
		srcs := []*ValueSource{r.Username, r.Password, r.CACert}
		if r.ECR != nil {
			srcs = append(srcs, r.ECR.AccessKeyID, r.ECR.SecretAccessKey)
		}
		for _, s := range srcs {
			if s != nil && s.SecretKeyRef != nil {
				set[s.SecretKeyRef.Name] = true
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

// DefaultRegistry returns the registry marked default, or nil.
func (c *Config) DefaultRegistry() *Registry {
	for i := range c.Registries {
		if c.Registries[i].Default {
			return &c.Registries[i]
		}
	}
	return nil
}
