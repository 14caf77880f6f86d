package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(t.Context(), args, strings.NewReader(""), &out, &errOut)
	if err != nil {
		code = ExitCode(err)
		if !Printed(err) {
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

func TestValidate(t *testing.T) {
	out, _, code := runCLI(t, "validate", "-f", "testdata/good.yaml")
	assert.Equal(t, 0, code)
	assert.Equal(t, "testdata/good.yaml: valid, 8 registries (default ecr-prod)\ntestdata/good.yaml: 8 secretKeyRefs not read (pass --kubeconfig to check the Secrets they name)\n", out)

	out, _, code = runCLI(t, "validate", "-f", "testdata/bad.yaml")
	assert.Equal(t, 1, code)
	assert.Equal(t, `testdata/bad.yaml: registry "hub": url: "quay.io" is not a docker registry address: must be docker.io, optionally with an organisation path (docker.io/myorg)
testdata/bad.yaml: registry "hub": password: a credential must not be written inline in a ConfigMap: use secretKeyRef (or keep the config in a Secret)
testdata/bad.yaml: registry "ecr": url: "https://12345.dkr.ecr.eu-west-1.amazonaws.com" is not an ecr registry address: must be https://<12-digit account>.dkr.ecr.<region>.amazonaws.com (or another AWS partition's domain, dkr.ecr-fips, or dual-stack <account>.dkr-ecr.<region>.on.aws), or a glob of the account and region (*.dkr.ecr.*.amazonaws.com)
`, out)
	assert.NotContains(t, out, "hunter2")

	out, _, code = runCLI(t, "validate", "-f", "testdata/bad.yaml", "--stored-in", "secret", "-o", "json")
	assert.Equal(t, 1, code)
	var res validateResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.False(t, res.Valid)
	assert.Len(t, res.Problems, 2, "inline credentials are fine in a Secret")

	_, errOut, code := runCLI(t, "validate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-f FILE is required")
	_, errOut, code = runCLI(t, "validate", "-f", "testdata/good.yaml", "-o", "yaml")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `-o "yaml": must be text or json`)
	_, _, code = runCLI(t, "validate", "-f", "testdata/missing.yaml")
	assert.Equal(t, 1, code)
}

func TestMatch(t *testing.T) {
	out, _, code := runCLI(t, "match", "-f", "testdata/good.yaml", "--cluster", "prod-eu", "-o", "json",
		"nginx", "harbor.internal:8443/team-a/app", "ghcr.io/x/y", "Quay.io/org/app")
	assert.Equal(t, 1, code, "some images get nothing")
	var res []matchResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Len(t, res, 4)
	assert.Equal(t, matchResult{Image: "nginx", Registry: "hub", Secret: "regcred-hub", Injected: true, Reason: `registry "hub" (docker.io) injects regcred's secret "regcred-hub"`, KubeletFirst: "regcred-hub"}, res[0])
	assert.Equal(t, "regcred", res[1].Secret)
	assert.Equal(t, "no configured registry serves ghcr.io/x/y", res[2].Reason)
	assert.Contains(t, res[3].Reason, "another letter case")

	out, _, code = runCLI(t, "match", "-f", "testdata/good.yaml", "--cluster", "sandbox", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", "harbor.internal:8443/team-a/app")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `registry "ecr-prod" does not inject in cluster "sandbox"`)
	assert.Contains(t, out, `registry "harbor" does not inject in cluster "sandbox"`)

	out, _, code = runCLI(t, "match", "-f", "testdata/good.yaml", "--cluster", "prod-eu", "nginx", "quay.io/org/app")
	assert.Equal(t, 0, code, "every image gets its secret")
	assert.Contains(t, out, "IMAGE")

	_, errOut, code := runCLI(t, "match", "-f", "testdata/good.yaml")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "name at least one IMAGE")
}

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
