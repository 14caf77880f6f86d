package registries

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/pullsecret"
)

// regions is a credential per region, as a glob ECR registry has.
type regions struct{}

func (regions) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{}, errors.New("per host only")
}

func (regions) ForHost(host string) (string, credentials.Provider, error) {
	f := strings.Split(host, ".")
	if len(f) != 6 || f[1] != "dkr" {
		return "", nil, errors.New("not an ECR host")
	}
	return "*.dkr.ecr." + f[3] + ".amazonaws.com", credentials.Static{Username: "AWS", Password: f[3]}, nil
}

func (regions) Sources() []credentials.Expiring { return nil }

// A glob ECR registry's pull secret widens to more hosts: the same
// secret, serving the hosts it had and the new ones.
func TestWantWidens(t *testing.T) {
	r := &Registry{Name: "ecr", SecretName: "regcred-ecr", Provider: regions{}, Location: image.Location{Host: "*.dkr.ecr.*.amazonaws.com"}}
	const west, east = "1.dkr.ecr.eu-west-1.amazonaws.com", "2.dkr.ecr.us-east-1.amazonaws.com"
	w, err := r.Want(t.Context(), Need{Hosts: []string{west}})
	require.NoError(t, err)
	require.NotNil(t, w.Widen)
	wider, err := w.Widen(t.Context(), []string{east})
	require.NoError(t, err)
	assert.Equal(t, []string{west, east}, wider.Hosts)
	keys, err := pullsecret.Keys(wider.Data)
	require.NoError(t, err)
	assert.Equal(t, []string{"*.dkr.ecr.eu-west-1.amazonaws.com", "*.dkr.ecr.us-east-1.amazonaws.com"}, keys)
	both, err := r.Want(t.Context(), Need{Hosts: []string{east, west}})
	require.NoError(t, err)
	assert.Equal(t, both.Version(), wider.Version(), "as if asked for both")

	_, err = w.Widen(t.Context(), []string{"quay.io"})
	assert.ErrorContains(t, err, `image host "quay.io"`)

	static, err := (&Registry{Name: "hub", SecretName: "regcred-hub", Provider: credentials.Static{Username: "u", Password: "p"}, Location: image.Location{Host: "docker.io"}}).Want(t.Context(), Need{})
	require.NoError(t, err)
	assert.Nil(t, static.Widen, "a secret whose content does not depend on hosts")
}
