package credentials

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	// A key whose base64 holds '+' or '/', which URL-safe base64 writes
	// otherwise.
	var urlSafe, urlSafeCompact string
	for n := 1; urlSafe == ""; n++ {
		require.Less(t, n, 10)
		id := `"abc` + strings.Repeat("~", n) + `"`
		if k := strings.Replace(pastedKey, `"abc"`, id, 1); strings.ContainsAny(base64.StdEncoding.EncodeToString([]byte(k)), "+/") {
			urlSafe, urlSafeCompact = k, strings.Replace(compactKey, `"abc"`, id, 1)
		}
	}
	wrapped := base64.StdEncoding.EncodeToString([]byte(pastedKey))
	var lines []string
	for len(wrapped) > 76 {
		lines = append(lines, wrapped[:76])
		wrapped = wrapped[76:]
	}
	wrapped = strings.Join(append(lines, wrapped), "\n") + "\n"

	for _, tc := range []struct {
		name     string
		asBase64 bool
		pasted   string
		want     string
	}{
		{"json as pasted", false, pastedKey, compactKey},
		{"json already compact", false, compactKey, compactKey},
		{"base64 of json given to _json_key", false, wrapped, compactKey},
		{"json given to _json_key_base64", true, pastedKey, base64.StdEncoding.EncodeToString([]byte(compactKey))},
		{"wrapped base64", true, wrapped, base64.StdEncoding.EncodeToString([]byte(compactKey))},
		// As editors and tools save it: a byte-order mark, base64 without
		// its padding, or URL-safe.
		{"json after a byte-order mark", false, "\uFEFF" + pastedKey, compactKey},
		{"base64 after a byte-order mark", false, "\uFEFF" + wrapped, compactKey},
		{"unpadded base64", false, base64.RawStdEncoding.EncodeToString([]byte(pastedKey)), compactKey},
		{"URL-safe base64", false, base64.URLEncoding.EncodeToString([]byte(urlSafe)), urlSafeCompact},
		{"unpadded URL-safe base64", false, base64.RawURLEncoding.EncodeToString([]byte(urlSafe)), urlSafeCompact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeServiceAccountKey(tc.pasted, tc.asBase64)
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
		{"a field not a string", `{"type": 1, "private_key": "SECRETMATERIAL"}`, "must be strings"},
		{"a password in its place", "SECRETMATERIAL", "neither a service-account JSON key nor one in base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NormalizeServiceAccountKey(tc.pasted, false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "SECRETMATERIAL")
		})
	}
}

func FuzzNormalizeServiceAccountKey(f *testing.F) {
	f.Add(pastedKey)
	f.Add(compactKey)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := NormalizeServiceAccountKey(s, false)
		if err != nil {
			return
		}
		again, err := NormalizeServiceAccountKey(out, false)
		if err != nil || again != out {
			t.Fatalf("normalising twice changed the key")
		}
	})
}
