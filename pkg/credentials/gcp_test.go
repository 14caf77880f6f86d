package credentials

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
)

const pastedKey = `
  {
    "type": "service_account",
    "project_id": "my-project",
    "private_key_id": "abc",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ SECRETMATERIAL\n-----END PRIVATE KEY-----\n",
    "client_email": "puller@my-project.iam.gserviceaccount.com"
  }
`

const compactKey = `{"type":"service_account","project_id":"my-project","private_key_id":"abc","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQ SECRETMATERIAL\n-----END PRIVATE KEY-----\n","client_email":"puller@my-project.iam.gserviceaccount.com"}`

func TestNormalizeServiceAccountKey(t *testing.T) {
	wrapped := base64.StdEncoding.EncodeToString([]byte(pastedKey))
	var lines []string
	for len(wrapped) > 76 {
		lines = append(lines, wrapped[:76])
		wrapped = wrapped[76:]
	}
	wrapped = strings.Join(append(lines, wrapped), "\n") + "\n"

	for _, tc := range []struct {
		name, user, pasted, want string
	}{
		{"json as pasted", config.JSONKeyUser, pastedKey, compactKey},
		{"json already compact", config.JSONKeyUser, compactKey, compactKey},
		{"base64 of json given to _json_key", config.JSONKeyUser, wrapped, compactKey},
		{"json given to _json_key_base64", config.JSONKeyBase64User, pastedKey, base64.StdEncoding.EncodeToString([]byte(compactKey))},
		{"wrapped base64", config.JSONKeyBase64User, wrapped, base64.StdEncoding.EncodeToString([]byte(compactKey))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeServiceAccountKey(tc.user, tc.pasted)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNormalizeServiceAccountKeyErrorsNeverQuoteTheKey(t *testing.T) {
	for _, tc := range []struct{ name, pasted, want string }{
		{"broken json", `{"type": "service_account", "private_key": "SECRETMATERIAL"`, "invalid JSON at byte"},
		{"bad char", `{"private_key": SECRETMATERIAL}`, "invalid JSON at byte 17"},
		{"not base64", "SECRETMATERIAL!!", "neither a service-account JSON key nor one in base64"},
		{"wrong type", `{"type": "user", "private_key": "SECRETMATERIAL"}`, `"type" must be "service_account"`},
		{"missing fields", `{"type": "service_account", "private_key": "SECRETMATERIAL"}`, `"client_email" and "private_key" are required`},
		{"array", `[1]`, "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NormalizeServiceAccountKey(config.JSONKeyUser, tc.pasted)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "SECRETMATERIAL")
		})
	}
}

func TestNew(t *testing.T) {
	p, err := New(&config.Registry{Type: config.TypeQuay}, config.Credentials{Username: "org+robot\n", Password: " token\n"}, nil)
	require.NoError(t, err)
	c, err := p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, Credential{Username: "org+robot", Password: "token"}, c)

	p, err = New(&config.Registry{Type: config.TypeGCR}, config.Credentials{Username: config.JSONKeyUser, Password: pastedKey}, nil)
	require.NoError(t, err)
	c, err = p.Credential(t.Context())
	require.NoError(t, err)
	assert.Equal(t, compactKey, c.Password)

	_, err = New(&config.Registry{Type: config.TypeArtifactRegistry}, config.Credentials{Username: config.JSONKeyUser, Password: "nope!"}, nil)
	assert.ErrorContains(t, err, "password: is neither")

	_, err = New(&config.Registry{Type: config.TypeECR}, config.Credentials{}, nil)
	assert.ErrorIs(t, err, ErrNoTokenProvider)
}

func FuzzNormalizeServiceAccountKey(f *testing.F) {
	f.Add(pastedKey)
	f.Add(compactKey)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizeServiceAccountKey(config.JSONKeyUser, s)
		if err != nil {
			return
		}
		again, err := NormalizeServiceAccountKey(config.JSONKeyUser, out)
		if err != nil || again != out {
			t.Fatalf("normalising twice changed the key")
		}
	})
}
