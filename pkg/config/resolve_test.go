package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Secret key that holds only whitespace (a token written with a
// trailing newline and nothing else) is refused like an empty one, for
// every value source, and left out of the values.
func TestResolveRefusesBlankSecretValues(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- {name: hub, type: docker, url: docker.io, username: {secretKeyRef: {name: hub, key: user}}, password: {secretKeyRef: {name: hub, key: token}}}
- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {secretKeyRef: {name: e, key: id}}, secretAccessKey: {secretKeyRef: {name: e, key: secret}}}}
- {name: h, type: other, url: h.io, connection: secure-with-ca, caCert: {secretKeyRef: {name: h, key: ca.crt}}}
`)))
	require.NoError(t, err)
	secrets := mapSecrets{
		"hub": {"user": "\n", "token": "  "},
		"e":   {"id": "AKIAEXAMPLE", "secret": "\t\r\n"},
		"h":   {"ca.crt": ""},
	}
	var ps Problems
	var values []Values
	for i := range cfg.Registries {
		res := Resolve(t.Context(), &cfg.Registries[i], secrets, cfg.Reporter(&ps, i))
		values = append(values, res.Values)
	}
	requireNoCredential(t, ps.Error(), "AKIAEXAMPLE")
	assert.Equal(t, `registry "hub": username: secretKeyRef hub/user: holds only whitespace
registry "hub": password: secretKeyRef hub/token: holds only whitespace
registry "e": ecr.secretAccessKey: secretKeyRef e/secret: holds only whitespace
registry "h": caCert: secretKeyRef h/ca.crt: is empty`, ps.Error())
	assert.Empty(t, values[0], "a blank value is not resolved")
	assert.Equal(t, []string{"ecr.accessKeyID"}, keys(values[1]))
}

func keys(v Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}
