package registrytype

import (
	"encoding/json"
	"os"
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

	_, err = ts.Get("ecr").Provider(spec(nil))
	assert.ErrorContains(t, err, "no ECR token minter")
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
}
