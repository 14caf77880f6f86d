package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenderRedacts(t *testing.T) {
	cfg := `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: quay, type: quay, url: quay.io, default: true, username: {value: "org+robot"}, password: {value: s3cret-token}}
`
	var out, errOut bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"render", "-f", "-"}, strings.NewReader(cfg), &out, &errOut))
	assert.JSONEq(t, `{"auths":{"quay.io":{"username":"org+robot","password":"<redacted>","auth":"<redacted>"}}}`, out.String())
	assert.NotContains(t, out.String(), "s3cret")

	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"render", "-f", "-", "--registry", "quay", "--show-secrets"}, strings.NewReader(cfg), &out, &errOut))
	assert.Contains(t, out.String(), "s3cret-token")
}
