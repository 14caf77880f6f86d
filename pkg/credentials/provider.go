package credentials

import (
	"context"
	"time"

	"github.com/regcred/regcred/pkg/image"
)

// Credential is what a pull secret holds for one registry. It is secret:
// never log or print it.
type Credential struct {
	Username string
	Password string
	// ExpiresAt is when a token stops working; zero for credentials that do
	// not expire.
	ExpiresAt time.Time
}

// Spec is what a provider is built from: a compiled registry, never the
// config's YAML. It holds credentials: never log or print it.
type Spec struct {
	// Registry is the registry's name.
	Registry string
	// Location is where the registry serves images.
	Location image.Location
	// Auth says how a provider of tokens authenticates to mint them (ECR:
	// iam-role or access-key); empty for other types.
	Auth string
	// Values are the registry's resolved values by field path ("username",
	// "password", "ecr.accessKeyID", "ecr.secretAccessKey").
	Values map[string]string
}

// Provider supplies a registry's current credential.
type Provider interface {
	// Credential returns the current credential. A provider of tokens may
	// call its cloud API; static providers return at once.
	Credential(ctx context.Context) (Credential, error)
}

// Expiring is a Provider of tokens that expire and are refreshed in the
// background, ahead of their expiry.
type Expiring interface {
	Provider
	// ID identifies the token source; registries that share credentials
	// share it. It holds no secret.
	ID() string
	// RefreshAt says when the next refresh is due; zero means now.
	RefreshAt() time.Time
	// Refresh mints a new token if one is due, and reports whether it did.
	Refresh(ctx context.Context) (bool, error)
	// Expiry is when the cached token expires; zero if there is none.
	Expiry() time.Time
}

// Static is a Provider of credentials that never change on their own.
type Static Credential

// Credential returns the static credential.
func (s Static) Credential(context.Context) (Credential, error) { return Credential(s), nil }

// FieldError is a problem with one credential field, found while building
// a provider. It never quotes the value.
type FieldError struct {
	// Field is the field's path, as in Spec.Values.
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// PerHost is a provider whose credential depends on the image's registry
// host: a glob ECR registry (*.dkr.ecr.*.amazonaws.com) has a token per
// region, minted when an image of that region first needs it.
type PerHost interface {
	Provider
	// ForHost returns the key pattern under which the credential for an
	// image host is written (the registry's glob, with what the credential
	// depends on fixed: the region), and the provider of that credential.
	ForHost(host string) (pattern string, p Provider, err error)
	// PatternOf returns the key pattern of an image host, as ForHost does,
	// and nothing else: hosts of one pattern share a credential.
	PatternOf(host string) (string, error)
	// Sources returns the token sources made so far, for the refresher.
	Sources() []Expiring
}
