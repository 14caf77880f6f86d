package credentials

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/regcred/regcred/pkg/config"
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

// Provider supplies a registry's current credential.
type Provider interface {
	// Credential returns the current credential. A provider of tokens may
	// call its cloud API; static providers return at once.
	Credential(ctx context.Context) (Credential, error)
}

// Refresher is a Provider of tokens that expire and are refreshed in the
// background, ahead of their expiry.
type Refresher interface {
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

// TokenProviderFunc builds the Provider of a registry whose credentials are
// minted tokens (ECR).
type TokenProviderFunc func(reg *config.Registry, creds config.Credentials) (Provider, error)

// ErrNoTokenProvider is returned for a token registry type that the running
// build has no provider for.
var ErrNoTokenProvider = errors.New("no token provider for this registry type")

// New returns the Provider of a registry from its resolved credentials.
// tokens builds providers for token types; nil means there is none. Errors
// name the field and never quote a credential.
func New(reg *config.Registry, creds config.Credentials, tokens TokenProviderFunc) (Provider, error) {
	switch reg.Type {
	case config.TypeECR:
		if tokens == nil {
			return nil, ErrNoTokenProvider
		}
		return tokens(reg, creds)
	case config.TypeGCR, config.TypeArtifactRegistry:
		user := strings.TrimSpace(creds.Username)
		key, err := NormalizeServiceAccountKey(user, creds.Password)
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		return Static{Username: user, Password: key}, nil
	default:
		return Static{Username: strings.TrimSpace(creds.Username), Password: strings.TrimSpace(creds.Password)}, nil
	}
}
