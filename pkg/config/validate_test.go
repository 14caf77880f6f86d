package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every value is trimmed where it is used, so a value that is only
// whitespace is as empty as "": it is refused, with its registry and
// field, for every value source.
func TestValidateRefusesBlankValues(t *testing.T) {
	cfg, err := Parse([]byte(registry(`
- {name: o, type: other, url: x.io, username: {value: "\n"}, password: {value: "  "}}
- {name: e, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {value: " \t"}, secretAccessKey: {value: "\r\n"}}}
- {name: h, type: other, url: h.io, username: {value: u}, password: {value: p}, connection: secure-with-ca, caCert: {value: " "}}
- {name: z, type: other, url: z.io, username: {value: u}, password: {value: ""}}
`)))
	require.NoError(t, err)
	var got []string
	for _, p := range cfg.Validate(InSecret) {
		got = append(got, p.Error())
	}
	assert.Equal(t, []string{
		`registry "o": username.value: must not be only whitespace`,
		`registry "o": password.value: must not be only whitespace`,
		`registry "e": ecr.accessKeyID.value: must not be only whitespace`,
		`registry "e": ecr.secretAccessKey.value: must not be only whitespace`,
		`registry "h": caCert.value: must not be only whitespace`,
		`registry "z": password.value: must not be empty`,
	}, got)
}
