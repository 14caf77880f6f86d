package registrytype

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

// The chart's schema lists exactly the types this build knows, in order.
func TestChartSchemaListsEveryType(t *testing.T) {
	data, err := os.ReadFile("../../charts/regcred/values.schema.json")
	require.NoError(t, err)
	var schema struct {
		Properties struct {
			Config struct {
				Properties struct {
					Registries struct {
						Items struct {
							Properties struct {
								Type struct {
									Enum []string `json:"enum"`
								} `json:"type"`
							} `json:"properties"`
						} `json:"items"`
					} `json:"registries"`
				} `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(data, &schema))
	assert.Equal(t, Builtin(Deps{}).Names(), schema.Properties.Config.Properties.Registries.Items.Properties.Type.Enum)
}

func TestEveryTypeIsDescribed(t *testing.T) {
	for _, typ := range Builtin(Deps{}).All() {
		assert.NotEmpty(t, typ.Description, typ.Name)
		assert.NotEmpty(t, typ.URLForm, typ.Name)
	}
}

func TestNewTypesRefusesDuplicates(t *testing.T) {
	_, err := NewTypes(Quay(), Quay())
	assert.ErrorContains(t, err, `registry type "quay": registered twice`)
	_, err = NewTypes(&Type{})
	assert.Error(t, err)
}

func TestHosts(t *testing.T) {
	ts := Builtin(Deps{})
	for _, tc := range []struct {
		typ  config.RegistryType
		host string
		ok   bool
	}{
		{"ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", true},
		{"ecr", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", true},
		{"ecr", "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", true},
		{"ecr", "public.ecr.aws", false},
		{"ecr", "12345.dkr.ecr.eu-west-1.amazonaws.com", false},
		{"docker", "docker.io", true},
		{"docker", "quay.io", false},
		{"azure", "myregistry.azurecr.io", true},
		{"azure", "my.azurecr.io", false},
		{"azure", "myregistry-b7c8ddhqcfcfffgy.azurecr.io", true}, // a domain name label hash
		{"azure", "myregistry.westeurope.geo.azurecr.io", true},   // a regional endpoint
		{"azure", "myregistry-abc123.eastus2.geo.azurecr.io", true},
		{"azure", "myregistry.azurecr.cn", true},
		{"azure", "myregistry-abc123.azurecr.us", true},
		{"azure", "*.*.geo.azurecr.io", true},
		{"azure", "*-*.azurecr.io", true},
		{"azure", "myregistry-abc-def.azurecr.io", false}, // one hash only
		{"azure", "myregistry-.azurecr.io", false},
		{"azure", "-abc123.azurecr.io", false},
		{"azure", "myreg_istry.azurecr.io", false},
		{"azure", "myregistry.westeurope.azurecr.io", false}, // a region without .geo
		{"azure", "myregistry.west-europe.geo.azurecr.io", false},
		{"azure", "myregistry.a.b.geo.azurecr.io", false},
		{"azure", "myregistry.westeurope.data.azurecr.io", false}, // a data endpoint, not a login server
		{"azure", "myregistry.azurecr.io.evil.com", false},
		{"azure", "myregistry.geo.azurecr.io", false},
		{"azure", "myregistry.azurecr.com", false},
		{"azure", "myregistry-" + strings.Repeat("a", 60) + ".azurecr.io", false}, // a DNS label is at most 63 characters
		{"artifact-registry", "europe-west1-docker.pkg.dev", true},
		{"artifact-registry", "europe-west1.pkg.dev", false},
		{"gcr", "gcr.io", true},
		{"gcr", "eu.gcr.io", true},
		{"gcr", "gcr.com", false},
		{"quay", "quay.io", true},
		{"quay", "quay.example.com", false},
		{"ghcr", "ghcr.io", true},
		{"ghcr", "github.com", false},
		{"other", "anything.example.com:5000", true},
	} {
		typ := ts.Get(tc.typ)
		require.NotNil(t, typ, tc.typ)
		ok := typ.Host == nil || typ.Host(tc.host)
		assert.Equal(t, tc.ok, ok, "%s %s", tc.typ, tc.host)
	}
}

func TestProviders(t *testing.T) {
	ts := Builtin(Deps{})
	spec := func(values map[string]string) credentials.Spec {
		return credentials.Spec{Registry: "r", Location: image.Location{Host: "h"}, Values: values}
	}
	p, err := ts.Get("ghcr").Provider(spec(map[string]string{"username": "octocat\n", "password": " ghp_token\n"}))
	require.NoError(t, err)
	c, err := p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, credentials.Credential{Username: "octocat", Password: "ghp_token"}, c, "surrounding whitespace is trimmed")

	key := `{"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": "KEY"}`
	p, err = ts.Get("gcr").Provider(spec(map[string]string{"username": JSONKeyUser, "password": "\n  " + key + "\n"}))
	require.NoError(t, err)
	c, err = p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, `{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"KEY"}`, c.Password)

	_, err = ts.Get("artifact-registry").Provider(spec(map[string]string{"username": JSONKeyUser, "password": "nope!"}))
	var fe *credentials.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "password", fe.Field)

	p, err = ts.Get("ecr").Provider(spec(nil))
	require.NoError(t, err, "without a token minter an ECR registry has no provider, and that is no error")
	assert.Nil(t, p)
}

func TestLoginHost(t *testing.T) {
	ts := Builtin(Deps{})
	assert.Equal(t, "registry-1.docker.io", ts.Get("docker").Login(image.Location{Host: "docker.io"}))
	assert.Equal(t, "ghcr.io", ts.Get("ghcr").Login(image.Location{Host: "ghcr.io", Prefix: "org"}))
}

func TestDefaultUsername(t *testing.T) {
	ts := Builtin(Deps{})
	r := &config.Registry{Type: "gcr"}
	ts.Get("gcr").Default(r)
	require.NotNil(t, r.Username)
	assert.Equal(t, JSONKeyUser, *r.Username.Value)
	r = &config.Registry{Type: "quay"}
	ts.Get("quay").Default(r)
	assert.Nil(t, r.Username)

	for _, name := range []config.RegistryType{"gcr", "artifact-registry"} {
		r = &config.Registry{Type: name, PullSecret: config.PullSecretPolicy{Mode: config.ImagePullSecret, Name: "regcred"}}
		ts.Get(name).Default(r)
		assert.Nil(t, r.Username, "%s: image-pull-secret mode without credentials stays without", name)
		key := "{}"
		r.Password = &config.ValueSource{Value: &key}
		ts.Get(name).Default(r)
		require.NotNil(t, r.Username, "%s: a key given in image-pull-secret mode gets the default user", name)
		assert.Equal(t, JSONKeyUser, *r.Username.Value)
	}
}
