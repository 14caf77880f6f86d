package config

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExampleIsValid(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	require.NoError(t, err)
	cfg, err := Parse(data)
	require.NoError(t, err)
	require.Empty(t, cfg.Validate(InConfigMap))
	require.Len(t, cfg.Registries, 8)

	hub := cfg.Registries[2]
	assert.Equal(t, Secure, hub.Connection)
	assert.Equal(t, InjectEverywhereExcept, hub.Clusters.Mode)
	assert.Equal(t, RegistryCredentials, hub.PullSecret.Mode)
	assert.Equal(t, "ecr-prod", cfg.DefaultRegistry().Name)
	assert.Equal(t, []string{"acr", "ecr-prod", "gcp", "harbor-ca", "hub", "quay"}, cfg.SecretNames())
}

// registry wraps one registry's YAML into a config.
func registry(body string) string {
	return "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n" + body
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"unknown field names the registry", registry("- {name: hub, type: docker, url: docker.io, usrname: {value: u}}"), `registry "hub": usrname: unknown field`},
		{"unknown top field", "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistry: []\n", `registry: unknown field`},
		{"field names are case-sensitive", registry("- {name: hub, type: docker, URL: docker.io}"), `registry "hub": URL: unknown field`},
		{"wrong type names the field without the value", registry("- {name: hub, type: docker, url: docker.io, password: {value: [hunter2]}}"), `registry "hub": password.value: must be a string, not array`},
		{"unnamed registry", registry("- {type: [x]}"), "registries[0]: type: must be a string"},
		{"not yaml", "registries: [", "not valid YAML"},
		{"null registry", registry("- null"), "registries[0]: must be an object"},
		{"duplicate key in a value source", registry("- {name: hub, type: docker, url: docker.io, password: {value: hunter2, value: X}}"), `registry "hub": password.value: set more than once (line 4): YAML would keep only the last; set it once`},
		{"duplicate field of a registry", registry("- name: hub\n  type: docker\n  username: {value: u}\n  url: docker.io\n  username: {value: hunter2}\n"), `registry "hub": username: set more than once (line 8)`},
		{"duplicate field of a reference", registry("- {name: hub, password: {secretKeyRef: {name: a, key: k, name: hunter2}}}"), `registry "hub": password.secretKeyRef.name: set more than once`},
		{"duplicate field of an unnamed registry", registry("- {type: docker, type: other}"), `registries[0]: type: set more than once`},
		{"duplicate field of the config", registry("- {name: hub}\nregistries: []\n"), `registries: set more than once (line 5)`},
		{"a second document", registry("- {name: a, type: docker, url: docker.io}\n") + "---\n" + registry("- {name: b, type: other, url: b.example.com}\n"),
			"more than one YAML document (the next starts at line 6): regcred reads one, and would drop the registries of the others; put every registry in one document"},
		{"a second document that is not valid YAML", registry("- {name: a, type: docker, url: docker.io}\n") + "---\nregistries: [\n",
			"more than one YAML document"},
		{"duplicate label", registry("- {name: hub, namespaceSelector: {matchLabels: {team: a, team: b}}}"), `registry "hub": namespaceSelector.matchLabels.team: set more than once`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			require.Error(t, err)
			requireNoCredential(t, err.Error(), "hunter2")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// A document that says nothing before or after the config is no second
// config.
func TestParseAllowsEmptyDocumentsAround(t *testing.T) {
	one := registry("- {name: a, type: docker, url: docker.io}\n")
	for _, data := range []string{"---\n" + one, one + "---\n", one + "---\n# more to come\n", one + "...\n", one + "---\nnull\n"} {
		cfg, err := Parse([]byte(data))
		require.NoError(t, err, data)
		assert.Len(t, cfg.Registries, 1, data)
	}
}

func TestParseListsEveryUnknownFieldWithItsPath(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- name: hub
  type: docker
  url: docker.io
  usernme: {value: u}
  pasword: {secretKeyRef: {name: hub, key: token, namespace: other}}
  ecr: {auth: iam-role, role: x}
  namespaceSelector: {matchLabels: {team: a}, matchExpresions: []}
- name: quay
  type: quay
  url: quay.io
  password: {vaule: p}
  clusters: {mode: inject-only, name: [prod]}
`)))
	require.NotNil(t, cfg, "unknown fields do not stop the other checks")
	ps := ProblemsOf(err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Registry+" "+p.Field+": "+p.Message)
		require.NotNil(t, p.Index)
	}
	assert.Equal(t, []string{
		"hub ecr.role: unknown field",
		"hub namespaceSelector.matchExpresions: unknown field",
		"hub pasword: unknown field",
		"hub usernme: unknown field",
		"quay clusters.name: unknown field",
		"quay password: unknown field, not shown as it may be a credential: write {value: ...} or {secretKeyRef: {name, key}}",
	}, got, "a key in a value source may be a credential: it is not named")
}

func TestDuplicateNamesAreLabelledByPosition(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- {name: a, type: other, url: x.io, username: {value: u}, password: {value: p}}
- {name: a, type: other, url: y.io, username: {value: u}, password: {value: p}, clusters: {mode: inject-only}}
- {name: b, type: other, url: z.io, username: {value: u}, password: {value: p}}
`)))
	require.NoError(t, err)
	ps := cfg.Validate(InSecret)
	require.Len(t, ps, 2)
	assert.Equal(t, `registry "a" (registries[1]): name: is also the name of registries[0]; names must be unique`, ps[0].Error())
	assert.Equal(t, `registry "a" (registries[1]): clusters.names: inject-only needs at least one cluster name (without one, this registry is injected nowhere)`, ps[1].Error())
	assert.Equal(t, 1, *ps[1].Index, "the problem is located by position, not only by its ambiguous name")
}

// The admin's secret is never one regcred makes and fills with another
// registry's credentials.
func TestAnAdminSecretIsNotOneRegcredMakes(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
- {name: harbor, type: other, url: harbor.example.com, pullSecret: {mode: image-pull-secret, name: regcred-hub}}
- {name: lab, type: other, url: lab.example.com/team, pullSecret: {mode: image-pull-secret, name: regcred-hub.exact}}
- {name: own, type: other, url: own.example.com, pullSecret: {mode: image-pull-secret, name: regcred-harbor}}
- {name: fine, type: other, url: fine.example.com, pullSecret: {mode: image-pull-secret, name: regcred-creds}}
`)))
	require.NoError(t, err)
	ps := cfg.Validate(InSecret)
	require.Len(t, ps, 2, "%v", ps)
	assert.Equal(t, `registry "harbor": pullSecret.name: regcred-hub is the pull secret regcred makes for registry "hub", with its credentials: name the admin's own secret`, ps[0].Error())
	assert.Equal(t, `registry "lab": pullSecret.name: regcred-hub.exact is the pull secret regcred makes for registry "hub", with its credentials: name the admin's own secret`, ps[1].Error())
}

func TestDefaultRegistryIsUnique(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- {name: a, default: true, type: other, url: x.io}
- {name: b, default: true, type: other, url: y.io}
`)))
	require.NoError(t, err)
	assert.Nil(t, cfg.DefaultRegistry(), "two defaults are no default")
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
	resolve := func(i int, r SecretReader) (Resolved, Problems) {
		var ps Problems
		res := Resolve(t.Context(), &cfg.Registries[i], r, cfg.Reporter(&ps, i))
		return res, ps
	}
	hub, ps := resolve(2, secrets)
	require.Empty(t, ps)
	assert.Equal(t, Values{"username": "myorg", "password": "hub-token"}, hub.Values)
	assert.True(t, hub.Complete())

	_, ps = resolve(0, secrets)
	require.Len(t, ps, 1)
	requireNoCredential(t, ps.Error(), "AKIAEXAMPLE")
	assert.EqualError(t, ps[0], `registry "ecr-prod": ecr.secretAccessKey: secretKeyRef ecr-prod/secret-access-key: key not found in secret`)

	_, ps = resolve(3, secrets)
	assert.EqualError(t, ps, `registry "acr": password: secretKeyRef acr/password: secret not found`)

	harbor, ps := resolve(7, secrets)
	require.Empty(t, ps)
	assert.Equal(t, "-----BEGIN CERTIFICATE-----", harbor.Values["caCert"])

	offline, ps := resolve(2, nil)
	require.Empty(t, ps, "without a reader, references are left unread, not wrong")
	assert.Equal(t, []string{"password"}, offline.Unresolved)
	assert.Equal(t, Values{"username": "myorg"}, offline.Values)
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
		for _, p := range cfg.Validate(InSecret) {
			_ = p.Error()
		}
	})
}

func TestNamespaceSelector(t *testing.T) {
	cfg, err := Parse([]byte(registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, namespaceSelector: {matchLabels: {team: a}, matchExpressions: [{key: tier, operator: In, values: [prod]}]}}")))
	require.NoError(t, err)
	require.Empty(t, cfg.Validate(InSecret))
	assert.Equal(t, "a", cfg.Registries[0].NamespaceSelector.MatchLabels["team"])

	cfg, err = Parse([]byte(registry("- {name: o, type: other, url: x.io, username: {value: u}, password: {value: p}, namespaceSelector: {matchExpressions: [{key: tier, operator: Sometimes}]}}")))
	require.NoError(t, err)
	assert.ErrorContains(t, cfg.Validate(InSecret).Err(), `registry "o": namespaceSelector: "Sometimes" is not a valid label selector operator`)
}
