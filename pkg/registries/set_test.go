package registries

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/registrytype"
)

type secrets map[string]string

func (s secrets) ReadSecretKey(_ context.Context, name, key string) ([]byte, error) {
	v, ok := s[name+"/"+key]
	if !ok {
		return nil, config.ErrSecretNotFound
	}
	return []byte(v), nil
}

func buildSet(t *testing.T, yaml string, cluster string, refs secrets) (*Set, error) {
	t.Helper()
	cfg, err := config.Parse([]byte("apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n" + yaml))
	require.NoError(t, err)
	return Build(t.Context(), cfg, Options{ClusterName: cluster, StoredIn: config.InConfigMap, Secrets: refs})
}

func TestBuild(t *testing.T) {
	set, err := buildSet(t, `
- {name: hub, type: docker, url: docker.io, username: {value: me}, password: {secretKeyRef: {name: hub, key: token}}}
- {name: quay, type: quay, url: quay.io, default: true, username: {value: me}, password: {secretKeyRef: {name: quay, key: token}}, clusters: {names: [prod]}}
- {name: mine, type: other, url: reg.example.com, pullSecret: {mode: image-pull-secret, name: regcred}}
`, "prod", secrets{"hub/token": "t1", "quay/token": "t2"})
	require.NoError(t, err)
	require.Len(t, set.Registries, 3)
	assert.Equal(t, "quay", set.Registries[0].Name, "the default registry comes first")

	hub := set.Get("hub")
	assert.True(t, hub.Manages())
	assert.Equal(t, "regcred-hub", hub.SecretName)
	w, err := hub.Want(t.Context(), Need{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"auths":{"docker.io":{"username":"me","password":"t1","auth":"bWU6dDE="},"index*.docker.io":{"username":"me","password":"t1","auth":"bWU6dDE="},"registry-1.docker.io":{"username":"me","password":"t1","auth":"bWU6dDE="}}}`, string(w.Data))
	w2, err := hub.Want(t.Context(), Need{})
	require.NoError(t, err)
	assert.Same(t, w, w2, "static credentials are rendered once per config")

	quay := set.Get("quay")
	assert.False(t, quay.Injects, "the policy excludes cluster prod")
	assert.False(t, quay.Manages())

	mine := set.Get("mine")
	assert.Equal(t, "regcred", mine.SecretName)
	assert.Nil(t, mine.Provider)
	assert.False(t, mine.Manages())

	assert.Equal(t, "hub", set.Match("nginx").Registry.Name)
	assert.Equal(t, "mine", set.Match("reg.example.com/a/b:1").Registry.Name)
	assert.Nil(t, set.Match("ghcr.io/a/b").Registry)
	m := set.Match("Quay.io/a/b")
	assert.Nil(t, m.Registry)
	assert.Contains(t, m.Hint("Quay.io/a/b"), `another letter case than registry "quay"`)
	assert.Contains(t, set.Match("UPPER/Case").Hint("UPPER/Case"), "is not a valid reference")
}

func TestBuildReportsEveryProblem(t *testing.T) {
	_, err := buildSet(t, `
- {name: hub, type: docker, url: docker.io, username: {value: me}, password: {secretKeyRef: {name: hub, key: token}}}
- {name: gcr, type: gcr, url: gcr.io, password: {secretKeyRef: {name: gcp, key: key.json}}}
- {name: ecr, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
`, "", secrets{"gcp/key.json": `{"type": "service_account", "private_key": "SECRET-KEY-MATERIAL"}`})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `registry "hub": password: secretKeyRef hub/token: secret not found`)
	assert.Contains(t, msg, `registry "gcr": password: is not a service-account JSON key: "client_email" and "private_key" are required`)
	assert.Contains(t, msg, `registry "ecr": no ECR token minter in this program`)
	assert.Equal(t, 3, strings.Count(msg, "\n")+1)
	assert.NotContains(t, msg, "SECRET-KEY-MATERIAL")
}

func TestBuildValidates(t *testing.T) {
	_, err := buildSet(t, `- {name: hub, type: docker, url: docker.io, username: {value: me}, password: {value: inline}}`, "", nil)
	assert.ErrorContains(t, err, "must not be written inline in a ConfigMap")
}

type tokens struct{ cred credentials.Credential }

func (t *tokens) Credential(context.Context) (credentials.Credential, error) { return t.cred, nil }

func TestWantRendersEachTokenOnce(t *testing.T) {
	src := &tokens{cred: credentials.Credential{Username: "AWS", Password: "t1", ExpiresAt: time.Now().Add(time.Hour)}}
	cfg, err := config.Parse([]byte("apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n- {name: ecr, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}\n"))
	require.NoError(t, err)
	ecrType := registrytype.ECR(nil)
	ecrType.NewProvider = func(credentials.Spec) (credentials.Provider, error) { return src, nil }
	types, err := registrytype.NewTypes(ecrType)
	require.NoError(t, err)
	set, err := Build(t.Context(), cfg, Options{StoredIn: config.InConfigMap, Types: types})
	require.NoError(t, err)
	r := set.Get("ecr")
	w1, err := r.Want(t.Context(), Need{})
	require.NoError(t, err)
	w2, err := r.Want(t.Context(), Need{})
	require.NoError(t, err)
	assert.Same(t, w1, w2, "the same token is rendered once")
	assert.Equal(t, src.cred.ExpiresAt, w1.ExpiresAt)

	src.cred = credentials.Credential{Username: "AWS", Password: "t2", ExpiresAt: time.Now().Add(2 * time.Hour)}
	w3, err := r.Want(t.Context(), Need{})
	require.NoError(t, err)
	assert.NotSame(t, w1, w3)
	assert.Contains(t, string(w3.Data), `"password":"t2"`)
}
