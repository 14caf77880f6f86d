package registries

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/secretstore"
)

// regions is a credential per region, as a glob ECR registry has.
type regions struct{}

var tokenExpiry = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

func (regions) Credential(context.Context) (credentials.Credential, error) {
	return credentials.Credential{}, errors.New("per host only")
}

func (regions) ForHost(host string) (string, credentials.Provider, error) {
	f := strings.Split(host, ".")
	if len(f) != 6 || f[1] != "dkr" {
		return "", nil, errors.New("not an ECR host")
	}
	// A token of each region, which expires as ECR's do.
	return "*.dkr.ecr." + f[3] + ".amazonaws.com", credentials.Static{Username: "AWS", Password: f[3], ExpiresAt: tokenExpiry}, nil
}

func (r regions) PatternOf(host string) (string, error) {
	p, _, err := r.ForHost(host)
	return p, err
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

// Two accounts in one region share the region's key: a secret written for
// the first serves the second's Pods, and their admissions write nothing.
func TestAnotherAccountInARegionServedIsServed(t *testing.T) {
	var secretWrites atomic.Int32
	count := func(obj client.Object) {
		if _, ok := obj.(*corev1.Secret); ok {
			secretWrites.Add(1)
		}
	}
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count(obj)
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			count(obj)
			return c.Patch(ctx, obj, patch, opts...)
		},
	}).Build()
	s := &secretstore.Store{API: c, Index: secretstore.NewIndex(c, "regcred")}
	r := &Registry{Name: "ecr", SecretName: "regcred-ecr", Provider: regions{}, Location: image.Location{Host: "*.dkr.ecr.*.amazonaws.com"}}
	const acct1, acct2, east = "1.dkr.ecr.eu-west-1.amazonaws.com", "2.dkr.ecr.eu-west-1.amazonaws.com", "2.dkr.ecr.us-east-1.amazonaws.com"
	ctx := t.Context()
	w, err := r.Want(ctx, Need{Hosts: []string{acct1}})
	require.NoError(t, err)
	_, err = s.Apply(ctx, "app", w, false)
	require.NoError(t, err)
	require.EqualValues(t, 1, secretWrites.Load())
	for range 3 {
		w, err := r.Want(ctx, Need{Hosts: []string{acct2}})
		require.NoError(t, err)
		out, err := s.Apply(ctx, "app", w, false)
		require.NoError(t, err)
		assert.Equal(t, secretstore.Unchanged, out)
	}
	assert.EqualValues(t, 1, secretWrites.Load(), "the secret serves account 2 already")

	// Another region is not served: written once, then served.
	for range 2 {
		w, err := r.Want(ctx, Need{Hosts: []string{east, acct2}})
		require.NoError(t, err)
		_, err = s.Apply(ctx, "app", w, false)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, secretWrites.Load())
	var sec corev1.Secret
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "app", Name: "regcred-ecr"}, &sec))
	keys, err := pullsecret.Keys(sec.Data[corev1.DockerConfigJsonKey])
	require.NoError(t, err)
	assert.Equal(t, []string{"*.dkr.ecr.eu-west-1.amazonaws.com", "*.dkr.ecr.us-east-1.amazonaws.com"}, keys)
}
