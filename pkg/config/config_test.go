package config

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExampleIsValid(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	require.NoError(t, err)
	cfg, err := Parse(data)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate(InConfigMap))
	require.Len(t, cfg.Registries, 8)

	hub := cfg.Registries[2]
	assert.Equal(t, Secure, hub.Connection)
	assert.Equal(t, InjectEverywhereExcept, hub.Clusters.Mode)
	assert.Equal(t, RegistryCredentials, hub.PullSecret.Mode)
	ar := cfg.Registries[4]
	require.NotNil(t, ar.Username)
	assert.Equal(t, JSONKeyUser, *ar.Username.Value, "Google registries default to _json_key")
	assert.Equal(t, "ecr-prod", cfg.DefaultRegistry().Name)
	assert.Equal(t, []string{"acr", "ecr-prod", "gcp", "harbor-ca", "hub", "quay"}, cfg.SecretNames())
}

// registry wraps one registry's YAML into a config.
func registry(body string) string {
	return "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n" + body
}

func TestValidateNamesRegistryAndField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     StoredIn
		config string
		want   []string
	}{
		{"bad header", InSecret, "apiVersion: v1\nkind: Foo\n", []string{"apiVersion: must be regcred.io/v1alpha1", "kind: must be RegistryConfig"}},
		{"unknown type", InSecret, registry("- {name: a, type: harbor, url: x.io}"), []string{`registry "a": type: "harbor" is not one of ecr, docker`}},
		{"bad name", InSecret, registry("- {name: Bad_Name, type: other, url: x.io, username: {value: u}, password: {value: p}}"), []string{`registry "Bad_Name": name: must be a DNS label`}},
		{"long name", InSecret, registry("- {name: " + strings.Repeat("a", 56) + ", type: other, url: x.io, username: {value: u}, password: {value: p}}"), []string{"name: must be at most 55 characters"}},
		{"no name", InSecret, registry("- {type: other, url: x.io, username: {value: u}, password: {value: p}}"), []string{"registries[0]: name: must not be empty"}},
		{"duplicate name", InSecret, registry("- {name: a, type: other, url: x.io, username: {value: u}, password: {value: p}}\n- {name: a, type: other, url: y.io, username: {value: u}, password: {value: p}}"), []string{`registry "a": name: is also the name of registries[0]`}},
		{"duplicate url", InSecret, registry("- {name: a, type: other, url: X.io/p, username: {value: u}, password: {value: p}}\n- {name: b, type: other, url: 'https://x.io/p/', username: {value: u}, password: {value: p}}"), []string{`registry "b": url: x.io/p is also the url of registry "a"`}},
		{"two defaults", InSecret, registry("- {name: a, default: true, type: other, url: x.io, username: {value: u}, password: {value: p}}\n- {name: b, default: true, type: other, url: y.io, username: {value: u}, password: {value: p}}"), []string{`default: at most one registry may be the default, not "a", "b"`}},
		{"ecr url", InSecret, registry("- {name: e, type: ecr, url: 'https://12345.dkr.ecr.eu-west-1.amazonaws.com', ecr: {auth: iam-role}}"), []string{`registry "e": url: "https://12345.dkr.ecr.eu-west-1.amazonaws.com" is not a ecr registry address: must be https://<12-digit account>.dkr.ecr.<region>.amazonaws.com`}},
		{"ecr without auth", InSecret, registry("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com}"), []string{`registry "e": ecr: is required`}},
		{"ecr access key missing", InSecret, registry("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key}}"), []string{"ecr.accessKeyID: is required", "ecr.secretAccessKey: is required"}},
		{"ecr role with keys", InSecret, registry("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role, accessKeyID: {value: A}}}"), []string{"ecr: auth: iam-role uses regcred's own AWS identity"}},
		{"ecr with password", InSecret, registry("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, password: {value: p}, ecr: {auth: iam-role}}"), []string{"password: is not used by an ecr registry"}},
		{"ecr auth unknown", InSecret, registry("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: sso}}"), []string{`ecr.auth: "sso" is not one of iam-role, access-key`}},
		{"ecr block on docker", InSecret, registry("- {name: h, type: docker, url: docker.io, username: {value: u}, password: {value: p}, ecr: {auth: iam-role}}"), []string{"ecr: is used only by type ecr, not docker"}},
		{"docker url", InSecret, registry("- {name: h, type: docker, url: quay.io, username: {value: u}, password: {value: p}}"), []string{`url: "quay.io" is not a docker registry address: must be docker.io`}},
		{"azure url", InSecret, registry("- {name: z, type: azure, url: myreg.azure.io, username: {value: u}, password: {value: p}}"), []string{"must be <registry>.azurecr.io"}},
		{"gcr url", InSecret, registry("- {name: g, type: gcr, url: gcr.com, password: {value: '{}'}}"), []string{"must be gcr.io or a regional"}},
		{"artifact url", InSecret, registry("- {name: g, type: artifact-registry, url: europe-west1.pkg.dev, password: {value: '{}'}}"), []string{"must be <region>-docker.pkg.dev"}},
		{"quay url", InSecret, registry("- {name: q, type: quay, url: quay.example.com, username: {value: u}, password: {value: p}}"), []string{"for a self-hosted Quay, use type other"}},
		{"gcr user", InSecret, registry("- {name: g, type: gcr, url: gcr.io, username: {value: admin}, password: {value: '{}'}}"), []string{"username: must be _json_key or _json_key_base64"}},
		{"missing credentials", InSecret, registry("- {name: o, type: other, url: x.io}"), []string{`registry "o": username: is required`, `registry "o": password: is required`}},
		{"inline password in configmap", InConfigMap, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: hunter2}}"), []string{`registry "o": password: a credential must not be written inline in a ConfigMap`}},
		{"inline ecr key in configmap", InConfigMap, registry("- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {value: AKIA}, secretAccessKey: {value: s3cr3t}}}"), []string{"ecr.accessKeyID: a credential must not be written inline", "ecr.secretAccessKey: a credential must not be written inline"}},
		{"both value and ref", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p, secretKeyRef: {name: s, key: k}}}"), []string{"password: set value or secretKeyRef, not both"}},
		{"neither value nor ref", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {}}"), []string{"password: set value or secretKeyRef"}},
		{"bad ref", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {secretKeyRef: {name: Bad/Name, key: 'a b'}}}"), []string{"password.secretKeyRef.name: must be a Secret name", "password.secretKeyRef.key: must be a Secret key"}},
		{"connection unknown", InSecret, registry("- {name: o, type: other, url: x.io, connection: tls, username: {value: u}, password: {value: p}}"), []string{`connection: "tls" is not one of secure, secure-with-ca, insecure`}},
		{"ca missing", InSecret, registry("- {name: o, type: other, url: x.io, connection: secure-with-ca, username: {value: u}, password: {value: p}}"), []string{"caCert: is required with connection: secure-with-ca"}},
		{"ca unused", InSecret, registry("- {name: o, type: other, url: x.io, caCert: {value: pem}, username: {value: u}, password: {value: p}}"), []string{"caCert: is used only with connection: secure-with-ca"}},
		{"http needs insecure", InSecret, registry("- {name: o, type: other, url: 'http://x.io', username: {value: u}, password: {value: p}}"), []string{"url: plain http:// needs connection: insecure"}},
		{"ipv6 without port", InSecret, registry("- {name: o, type: other, url: '[::1]', username: {value: u}, password: {value: p}}"), []string{"an IPv6 registry needs an explicit port"}},
		{"cluster mode", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, clusters: {mode: all}}"), []string{`clusters.mode: "all" is not one of inject-everywhere-except, inject-only`}},
		{"inject-only empty", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, clusters: {mode: inject-only}}"), []string{"clusters.names: inject-only needs at least one cluster name"}},
		{"cluster listed twice", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, clusters: {names: [a, a, '']}}"), []string{`clusters.names[1]: "a" is listed twice`, "clusters.names[2]: must not be empty"}},
		{"pull secret mode", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, pullSecret: {mode: copy}}"), []string{`pullSecret.mode: "copy" is not one of registry-credentials, image-pull-secret`}},
		{"pull secret name missing", InSecret, registry("- {name: o, type: other, url: x.io, pullSecret: {mode: image-pull-secret}}"), []string{"pullSecret.name: is required with mode: image-pull-secret"}},
		{"pull secret name unused", InSecret, registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, pullSecret: {name: mine}}"), []string{"pullSecret.name: is used only with mode: image-pull-secret (in registry-credentials mode regcred names the secret regcred-o)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.config))
			require.NoError(t, err)
			err = cfg.Validate(tc.in)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			for _, secret := range []string{"hunter2", "s3cr3t", "AKIA"} {
				assert.NotContains(t, err.Error(), secret, "an error must not quote a credential")
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- {name: a, type: other, url: 'x.io'}
- {name: b, type: docker, url: quay.io, username: {value: u}, password: {value: p}}
- {name: c, type: ecr, url: nowhere, ecr: {auth: iam-role}, clusters: {mode: inject-only}}
`)))
	require.NoError(t, err)
	err = cfg.Validate(InSecret)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Len(t, lines, 5, err.Error())
	assert.Contains(t, err.Error(), `registry "a": username`)
	assert.Contains(t, err.Error(), `registry "a": password`)
	assert.Contains(t, err.Error(), `registry "b": url`)
	assert.Contains(t, err.Error(), `registry "c": url`)
	assert.Contains(t, err.Error(), `registry "c": clusters.names`)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"unknown field names the registry", registry("- {name: hub, type: docker, url: docker.io, usrname: {value: u}}"), `registry "hub": unknown field "usrname"`},
		{"unknown top field", "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistry: []\n", `unknown field "registry"`},
		{"wrong type names the field without the value", registry("- {name: hub, type: docker, url: docker.io, password: {value: [hunter2]}}"), `registry "hub": password.value: must be a string, not array`},
		{"unnamed registry", registry("- {type: [x]}"), "registries[0]: type: must be a string"},
		{"not yaml", "registries: [", "not valid YAML"},
		{"null registry", registry("- null"), "registries[0]: must be an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestInjectsInto(t *testing.T) {
	except := ClusterPolicy{Mode: InjectEverywhereExcept, Names: []string{"sandbox"}}
	only := ClusterPolicy{Mode: InjectOnly, Names: []string{"prod-eu", "prod-us"}}
	assert.True(t, except.InjectsInto("prod-eu"))
	assert.False(t, except.InjectsInto("sandbox"))
	assert.True(t, ClusterPolicy{Mode: InjectEverywhereExcept}.InjectsInto(""))
	assert.True(t, only.InjectsInto("prod-us"))
	assert.False(t, only.InjectsInto("sandbox"))
	assert.False(t, only.InjectsInto(""))
}

type mapSecrets map[string]map[string]string

func (m mapSecrets) ReadSecretKey(_ context.Context, name, key string) ([]byte, error) {
	s, ok := m[name]
	if !ok {
		return nil, ErrSecretNotFound
	}
	v, ok := s[key]
	if !ok {
		return nil, ErrKeyNotFound
	}
	return []byte(v), nil
}

func TestResolve(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	require.NoError(t, err)
	cfg, err := Parse(data)
	require.NoError(t, err)
	secrets := mapSecrets{
		"hub":       {"token": "hub-token"},
		"ecr-prod":  {"access-key-id": "AKIAEXAMPLE"},
		"harbor-ca": {"ca.crt": "-----BEGIN CERTIFICATE-----"},
	}
	hub, err := Resolve(t.Context(), &cfg.Registries[2], secrets)
	require.NoError(t, err)
	assert.Equal(t, Credentials{Username: "myorg", Password: "hub-token"}, hub)

	_, err = Resolve(t.Context(), &cfg.Registries[0], secrets)
	require.Error(t, err)
	assert.EqualError(t, err, `registry "ecr-prod": ecr.secretAccessKey: secretKeyRef ecr-prod/secret-access-key: key not found in secret`)
	assert.NotContains(t, err.Error(), "AKIAEXAMPLE")

	_, err = Resolve(t.Context(), &cfg.Registries[3], secrets)
	assert.EqualError(t, err, `registry "acr": password: secretKeyRef acr/password: secret not found`)

	harbor, err := Resolve(t.Context(), &cfg.Registries[7], secrets)
	require.NoError(t, err)
	assert.Equal(t, []byte("-----BEGIN CERTIFICATE-----"), harbor.CACert)
}

func FuzzParseValidate(f *testing.F) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(registry("- {name: a, type: other, url: 'x.io'}")))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		_ = cfg.Validate(InConfigMap)
		_ = cfg.Validate(InSecret)
	})
}

func TestNamespaceSelector(t *testing.T) {
	cfg, err := Parse([]byte(registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}, matchExpressions: [{key: tier, operator: In, values: [prod]}]}}")))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate(InSecret))
	assert.Equal(t, "a", cfg.Registries[0].NamespaceSelector.MatchLabels["team"])

	cfg, err = Parse([]byte(registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, namespaceSelector: {matchExpressions: [{key: tier, operator: Sometimes}]}}")))
	require.NoError(t, err)
	assert.ErrorContains(t, cfg.Validate(InSecret), `registry "o": namespaceSelector: "Sometimes" is not a valid label selector operator`)
}
