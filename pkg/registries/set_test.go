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
	"github.com/regcred/regcred/pkg/image"
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
	assert.Equal(t, 2, strings.Count(msg, "\n")+1, "an ECR registry without a token minter is no problem")
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

// The Azure login servers with a domain name label hash and the regional
// ones are matched, and keyed in the pull secret, like any host.
func TestBuildAzureLoginServers(t *testing.T) {
	set, err := buildSet(t, `
- {name: dnl, type: azure, url: myregistry-b7c8ddhqcfcfffgy.azurecr.io, username: {value: app-id}, password: {secretKeyRef: {name: az, key: password}}}
- {name: geo, type: azure, url: myregistry.westeurope.geo.azurecr.io/team, username: {value: app-id}, password: {secretKeyRef: {name: az, key: password}}}
- {name: both, type: azure, url: other-abc123.eastus2.geo.azurecr.io, username: {value: app-id}, password: {secretKeyRef: {name: az, key: password}}}
`, "", secrets{"az/password": "p"})
	require.NoError(t, err)
	for img, want := range map[string]string{
		"myregistry-b7c8ddhqcfcfffgy.azurecr.io/app:1":                              "dnl",
		"myregistry.westeurope.geo.azurecr.io/team/app:1":                           "geo",
		"other-abc123.eastus2.geo.azurecr.io/app@sha256:" + strings.Repeat("a", 64): "both",
	} {
		m := set.Match(img)
		require.NotNil(t, m.Registry, img)
		assert.Equal(t, want, m.Registry.Name, img)
	}
	assert.Nil(t, set.Match("myregistry.azurecr.io/app").Registry, "the global login server is another host")
	for name, key := range map[string]string{
		"dnl":  "myregistry-b7c8ddhqcfcfffgy.azurecr.io",
		"geo":  "myregistry.westeurope.geo.azurecr.io/team/",
		"both": "other-abc123.eastus2.geo.azurecr.io",
	} {
		w, err := set.Get(name).Want(t.Context(), Need{})
		require.NoError(t, err)
		assert.JSONEq(t, `{"auths":{"`+key+`":{"username":"app-id","password":"p","auth":"YXBwLWlkOnA="}}}`, string(w.Data), name)
	}
}

// Without a token minter (Options.Types nil: the offline tools, explain)
// an ECR registry, exact or glob, loads without a provider, as the
// options say; it is still matched and named.
func TestBuildECRWithoutMinter(t *testing.T) {
	set, err := buildSet(t, `
- {name: ecr, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: ecr-any, type: ecr, url: "*.dkr.ecr.*.amazonaws.com", ecr: {auth: access-key, accessKeyID: {secretKeyRef: {name: aws, key: id}}, secretAccessKey: {secretKeyRef: {name: aws, key: secret}}}}
- {name: ecr-eu, type: ecr, url: "1234*.dkr.ecr.eu-*.amazonaws.com", ecr: {auth: iam-role}}
`, "", secrets{"aws/id": "AKIAEXAMPLE", "aws/secret": "s3cr3t"})
	require.NoError(t, err)
	for _, name := range []string{"ecr", "ecr-any", "ecr-eu"} {
		r := set.Get(name)
		assert.Nil(t, r.Provider, name)
		assert.True(t, r.Manages(), name)
		assert.False(t, r.PerHost(), name)
		assert.Empty(t, r.TokenSources(), name)
		_, err := r.Want(t.Context(), Need{Hosts: []string{"123456789012.dkr.ecr.eu-west-1.amazonaws.com"}})
		assert.ErrorContains(t, err, "has no credentials", name)
	}
	assert.Equal(t, "ecr", set.Match("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app").Registry.Name)
	assert.Equal(t, "ecr-any", set.Match("210987654321.dkr.ecr.us-east-1.amazonaws.com/app").Registry.Name)
	// A * within a label, as the kubelet reads it.
	assert.Equal(t, "ecr-eu", set.Match("123400000001.dkr.ecr.eu-central-1.amazonaws.com/app").Registry.Name)
	assert.Equal(t, "ecr-any", set.Match("123400000001.dkr.ecr.us-east-1.amazonaws.com/app").Registry.Name)
	assert.Equal(t, "ecr-any", set.Match("210987654321.dkr.ecr.eu-central-1.amazonaws.com/app").Registry.Name)
}

// An admin's secret in image-pull-secret mode is modelled with the key
// `kubectl create secret docker-registry --docker-server=<url>` writes:
// the URL as the config writes it, without regcred's trailing slash. The
// kubelet reads it as a character prefix: it serves the repository named
// like the prefix, and siblings that merely start like it.
func TestAdminSecretKeysAreKubectls(t *testing.T) {
	set, err := buildSet(t, `
- {name: harbor, type: other, url: harbor.example.com:8443/team-a, pullSecret: {mode: image-pull-secret, name: harbor-pull}}
- {name: hub, type: docker, url: " https://index.docker.io/v1/ ", pullSecret: {mode: image-pull-secret, name: hub-pull}}
- {name: own, type: other, url: own.example.com/team-a, username: {value: u}, password: {secretKeyRef: {name: own, key: p}}}
`, "", secrets{"own/p": "p"})
	require.NoError(t, err)
	first := func(secret, img string) bool {
		var ring image.Keyring
		for _, of := range set.BySecret(secret) {
			ring.AddKeys(secret, of.Keys)
		}
		_, ok := ring.First(img)
		return ok
	}
	for img, want := range map[string]bool{
		"harbor.example.com:8443/team-a:1":     true,
		"harbor.example.com:8443/team-a/app:1": true,
		"harbor.example.com:8443/team-ab/app":  true, // the kubelet's character prefix
		"harbor.example.com:8443/team-b/app":   false,
	} {
		assert.Equal(t, want, first("harbor-pull", img), img)
	}
	// kubectl's default server, as written: the kubelet's fallback for
	// Docker Hub's images.
	assert.True(t, first("hub-pull", "myorg/app"))
	assert.False(t, first("hub-pull", "quay.io/org/app"))
	// regcred's own secrets keep their keys: the prefix with a slash, and
	// the exact variant for the repository named like it.
	assert.True(t, first("regcred-own", "own.example.com/team-a/app"))
	assert.False(t, first("regcred-own", "own.example.com/team-a"))
	assert.False(t, first("regcred-own", "own.example.com/team-ab/app"))
	assert.True(t, first("regcred-own.exact", "own.example.com/team-a"))
}

// A registry whose path prefix the kubelet would read otherwise than
// regcred writes it, or that no image reference can name, is refused,
// naming the registry and the field.
func TestBuildRefusesPrefixesTheKubeletMisreads(t *testing.T) {
	for url, want := range map[string]string{
		"harbor.example.com/v2/v2/app":     `registry "r": url: path "/v2/v2/app": a repository prefix cannot start with v2/`,
		"harbor.example.com/v1/v2/app":     `registry "r": url: path "/v1/v2/app": a repository prefix cannot start with v2/`,
		"harbor.example.com:8443/team_-a":  `registry "r": url: path "team_-a": each segment must be`,
		"harbor.example.com:8443/ok/a_.b/": `registry "r": url: path "ok/a_.b": each segment must be`,
	} {
		_, err := buildSet(t, "- {name: r, type: other, url: \""+url+"\", pullSecret: {mode: image-pull-secret, name: p}}\n", "", nil)
		assert.ErrorContains(t, err, want, url)
	}
}
