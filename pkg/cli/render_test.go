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
	assert.Contains(t, out.String(), `"password": "<redacted>"`, "printed as is, not as \\u003credacted\\u003e")

	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"render", "-f", "-", "-o", "json"}, strings.NewReader(cfg), &out, &errOut))
	assert.Contains(t, out.String(), `"auth": "<redacted>"`, "-o json: the one output")

	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"render", "-f", "-", "--registry", "quay", "--show-secrets"}, strings.NewReader(cfg), &out, &errOut))
	assert.Contains(t, out.String(), "s3cret-token")
}

// render cannot write what it cannot read: it says to pass --kubeconfig,
// in words that agree with the number of fields.
func TestRenderNeedsTheSecrets(t *testing.T) {
	for _, tc := range []struct {
		registry string
		msg      string
	}{
		{"hub", `registry "hub": password comes from a Secret (secretKeyRef): pass --kubeconfig (and --namespace, regcred's namespace) to read it from the cluster`},
		{"ecr-prod", `registry "ecr-prod": ecr.accessKeyID, ecr.secretAccessKey come from Secrets (secretKeyRef): pass --kubeconfig (and --namespace, regcred's namespace) to read them from the cluster`},
		{"harbor", `registry "harbor": caCert comes from a Secret (secretKeyRef)`},
	} {
		_, errOut, code := runCLI(t, "render", "-f", "testdata/good.yaml", "--registry", tc.registry)
		assert.Equal(t, 2, code, tc.registry)
		assert.Contains(t, errOut, tc.msg)
	}
	_, errOut, code := runCLI(t, "render", "-f", "-")
	assert.Equal(t, 1, code, "an empty config")
	assert.NotEmpty(t, errOut)
}
