package registrytype

import (
	"fmt"
	"slices"
	"strings"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

// CredentialKind says which credential fields a type takes.
type CredentialKind int

// The kinds of credentials.
const (
	// UsernamePassword: username and password (or token), as docker login
	// takes them.
	UsernamePassword CredentialKind = iota
	// ECRToken: the ecr block (auth iam-role, or access-key with a key);
	// the pull secret holds tokens regcred mints.
	ECRToken
)

// Type is one kind of registry.
type Type struct {
	// Name is the config's `type`.
	Name config.RegistryType
	// Description says in a few words what the type is, for docs.
	Description string
	// URLForm says which URLs the type accepts, for messages and docs.
	URLForm string
	// Host reports whether a registry host (lower case, with its port if
	// any) has the type's form; nil accepts any host.
	Host func(host string) bool
	// PlainHTTP allows an http:// URL (with connection: insecure).
	PlainHTTP bool
	// Credentials says which credential fields the type takes.
	Credentials CredentialKind
	// DefaultUsername is the username when the config gives none.
	DefaultUsername string
	// Usernames, when set, are the only usernames the type accepts.
	Usernames []string
	// NewProvider builds the provider of a compiled registry's credential;
	// nil means the username and password as they are (trimmed). It may
	// return no provider and no error: the program builds none.
	NewProvider func(spec credentials.Spec) (credentials.Provider, error)
	// LoginHost is the host a login check talks to; nil means the
	// registry's own.
	LoginHost func(loc image.Location) string
}

// Default fills in the type's defaults. In image-pull-secret mode, where
// credentials are optional, the username is defaulted only when a
// password is given: a registry without credentials stays without.
func (t *Type) Default(r *config.Registry) {
	if r.PullSecret.Mode == config.ImagePullSecret && r.Password == nil {
		return
	}
	if t.DefaultUsername != "" && r.Username == nil && t.Credentials == UsernamePassword {
		u := t.DefaultUsername
		r.Username = &config.ValueSource{Value: &u}
	}
}

// Validate checks what the type requires of a registry: its URL's form
// and its credential fields. loc is the parsed URL, nil if it did not
// parse (config.Validate reported it).
func (t *Type) Validate(r *config.Registry, loc *image.Location, rep *config.Reporter) {
	if loc != nil {
		if t.Host != nil && !t.Host(loc.Host) {
			rep.Failf("url", "%q is not %s registry address: must be %s", r.URL, t.article(), t.URLForm)
		} else if r.PlainHTTP() && !t.PlainHTTP {
			rep.Failf("url", "%s registry is served over https", capitalize(t.article()))
		}
	}
	required := r.PullSecret.Mode != config.ImagePullSecret
	switch t.Credentials {
	case UsernamePassword:
		if r.ECR != nil {
			rep.Failf("ecr", "is used only by type ecr, not %s", t.Name)
		}
		if r.Username == nil && required {
			rep.Fail("username", "is required")
		}
		if r.Password == nil && required {
			rep.Fail("password", "is required")
		}
		// Optional, credentials are a pair: half of one would only fail
		// the login checks, without naming what is missing.
		if !required && r.Username == nil && r.Password != nil {
			rep.Fail("username", "is required with password")
		}
		if !required && r.Password == nil && r.Username != nil {
			rep.Fail("password", "is required with username")
		}
		// A username from a Secret is checked once read (usernameError).
		if r.Username != nil && r.Username.Value != nil {
			if err := t.usernameError(*r.Username.Value); err != nil {
				rep.Fail("username", err.Error())
			}
		}
	case ECRToken:
		validateECR(r, rep, required)
	}
}

// usernameError says why a username, as used (trimmed), is not one the
// type allows; nil if it is, or if the type allows any.
func (t *Type) usernameError(username string) error {
	if len(t.Usernames) == 0 || slices.Contains(t.Usernames, strings.TrimSpace(username)) {
		return nil
	}
	return fmt.Errorf("must be %s for %s registry", strings.Join(t.Usernames, " or "), t.article())
}

// Provider builds the provider of a compiled registry's credential; nil
// (without an error) when this program builds none for the type (an ECR
// registry without a token minter).
func (t *Type) Provider(spec credentials.Spec) (credentials.Provider, error) {
	if t.NewProvider != nil {
		return t.NewProvider(spec)
	}
	return credentials.Static{
		Username: strings.TrimSpace(spec.Values["username"]),
		Password: strings.TrimSpace(spec.Values["password"]),
	}, nil
}

// Login returns the host a login check talks to.
func (t *Type) Login(loc image.Location) string {
	if t.LoginHost != nil {
		return t.LoginHost(loc)
	}
	return loc.Host
}

// Types are the registry types a build of regcred knows.
type Types struct {
	list []*Type
}

// NewTypes registers types, in the order they are listed in docs.
func NewTypes(types ...*Type) (*Types, error) {
	seen := map[config.RegistryType]bool{}
	for _, t := range types {
		if t.Name == "" || seen[t.Name] {
			return nil, fmt.Errorf("registry type %q: registered twice or without a name", t.Name)
		}
		seen[t.Name] = true
	}
	return &Types{list: types}, nil
}

// Get returns the type of that name, or nil.
func (ts *Types) Get(name config.RegistryType) *Type {
	for _, t := range ts.list {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Names lists the types' names.
func (ts *Types) Names() []string {
	out := make([]string, len(ts.list))
	for i, t := range ts.list {
		out[i] = string(t.Name)
	}
	return out
}

// All returns the types, in order.
func (ts *Types) All() []*Type { return slices.Clone(ts.list) }

// Lookup returns the registry's type, reporting an unknown one.
func (ts *Types) Lookup(r *config.Registry, rep *config.Reporter) *Type {
	if r.Type == "" {
		rep.Fail("type", "is required: one of "+strings.Join(ts.Names(), ", "))
		return nil
	}
	t := ts.Get(r.Type)
	if t == nil {
		rep.Failf("type", "%q is not one of %s", r.Type, strings.Join(ts.Names(), ", "))
	}
	return t
}

// globOr accepts the hosts match accepts, and globs whose * stand for what
// match allows there (*.gcr.io, *.azurecr.io).
func globOr(match func(string) bool) func(string) bool {
	return func(h string) bool {
		return match(strings.ReplaceAll(h, "*", "abcde"))
	}
}

// hostIs accepts exactly these hosts.
func hostIs(hosts ...string) func(string) bool {
	return func(h string) bool { return slices.Contains(hosts, h) }
}

// article returns the type's name with its indefinite article: "an ecr",
// "a gcr".
func (t *Type) article() string {
	if strings.ContainsRune("aeio", rune(t.Name[0])) {
		return "an " + string(t.Name)
	}
	return "a " + string(t.Name)
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
