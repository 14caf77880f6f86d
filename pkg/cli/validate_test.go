package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
)

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

// writeFile writes content to a file of the test's and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

const quayInline = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: quay, type: quay, url: quay.io, username: {value: "org+robot"}, password: {value: s3cret-token}}
`

func indentLines(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

// validate reads a bare config, a ConfigMap or Secret manifest holding one,
// or the chart's values, and validates it as stored where the file says.
func TestValidateInputKinds(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(quayInline))
	for _, tc := range []struct {
		name     string
		file     string
		args     []string
		code     int
		out      []string
		storedIn config.StoredIn
	}{
		{name: "bare config, a ConfigMap's by default", file: quayInline, code: 1, storedIn: config.InConfigMap,
			out: []string{`registry "quay": password: a credential must not be written inline in a ConfigMap`}},
		{name: "bare config stored in a Secret", file: quayInline, args: []string{"--stored-in", "secret"}, code: 0, storedIn: config.InSecret,
			out: []string{"valid, 1 registry\n"}},
		{name: "ConfigMap manifest", code: 1, storedIn: config.InConfigMap,
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: regcred-config, namespace: regcred}\ndata:\n  config.yaml: |\n" + indentLines(quayInline, "    "),
			out:  []string{`the config in ConfigMap "regcred-config", key config.yaml, stored in a ConfigMap`, "must not be written inline in a ConfigMap"}},
		{name: "ConfigMap manifest, another key", code: 0, storedIn: config.InConfigMap, args: []string{"--config-key", "registries.yaml"},
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  registries.yaml: |\n" + indentLines(quayNoInline, "    "),
			out:  []string{"valid, 1 registry\n"}},
		{name: "Secret manifest, data in base64", code: 0, storedIn: config.InSecret,
			file: "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred-config}\ndata:\n  config.yaml: " + b64 + "\n",
			out:  []string{`the config in Secret "regcred-config", key config.yaml, stored in a Secret`, "valid, 1 registry\n"}},
		{name: "Secret manifest, stringData plain", code: 0, storedIn: config.InSecret,
			file: "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred-config}\nstringData:\n  config.yaml: |\n" + indentLines(quayInline, "    "),
			out:  []string{"valid, 1 registry\n"}},
		{name: "Secret manifest, stringData wins over data", code: 1, storedIn: config.InSecret,
			file: "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred-config}\ndata:\n  config.yaml: " + b64 + "\nstringData:\n  config.yaml: 'registries: ['\n",
			out:  []string{"not valid YAML"}},
		{name: "chart values", code: 1, storedIn: config.InConfigMap,
			file: "clusterName: prod\nconfig:\n  registries:\n  - {name: hub, type: docker, url: docker.io/myorg, username: {value: me}, password: {secretKeyRef: {name: hub, key: token}}}\n  - {name: quay, type: quay, url: quay.io, username: {value: me}, password: {value: s3cret-token}}\n",
			out:  []string{"the config in the chart's values, config.registries, stored in a ConfigMap", `registry "quay": password: a credential must not be written inline in a ConfigMap`}},
		{name: "chart values without registries", code: 0, storedIn: config.InConfigMap,
			file: "config:\n  key: config.yaml\n", out: []string{"valid, 0 registries\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "input.yaml", tc.file)
			out, errOut, code := runCLI(t, append([]string{"validate", "-f", file}, tc.args...)...)
			assert.Equal(t, tc.code, code, out+errOut)
			for _, want := range tc.out {
				assert.Contains(t, out, want)
			}
			assert.NotContains(t, out+errOut, "s3cret-token")

			out, _, _ = runCLI(t, append([]string{"validate", "-f", file, "-o", "json"}, tc.args...)...)
			var res validateResult
			require.NoError(t, json.Unmarshal([]byte(out), &res))
			assert.Equal(t, tc.storedIn, res.StoredIn)
			assert.Equal(t, tc.code == 0, res.Valid)
		})
	}
}

const quayNoInline = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: quay, type: quay, url: quay.io, username: {value: "org+robot"}, password: {secretKeyRef: {name: quay, key: token}}}
`

// Files validate cannot read say why, quoting no value.
func TestValidateInputErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
		code       int
		msg        string
	}{
		{name: "values naming an existing Secret", code: 1,
			file: "config:\n  existingSecret: my-config\n",
			msg:  `the values use config.existingSecret "my-config": the config is in that Secret, not in this file, and cannot be validated offline from it`},
		{name: "values naming an existing ConfigMap", code: 1,
			file: "config:\n  existingConfigMap: my-config\n",
			msg:  `cannot be validated offline`},
		{name: "ConfigMap without the key", code: 1,
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  other.yaml: x\n",
			msg:  `ConfigMap "cfg" has no key config.yaml (it has other.yaml): name the key with --config-key`},
		{name: "Secret whose data is not base64", code: 1,
			file: "apiVersion: v1\nkind: Secret\nmetadata: {name: cfg}\ndata:\n  config.yaml: not-base64-s3cret-token!\n",
			msg:  "not a valid Secret (data must be base64; stringData is plain)"},
		{name: "--stored-in against the manifest's kind", code: 2, args: []string{"--stored-in", "secret"},
			file: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  config.yaml: x\n",
			msg:  "--stored-in secret:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "input.yaml", tc.file)
			out, errOut, code := runCLI(t, append([]string{"validate", "-f", file}, tc.args...)...)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, errOut, tc.msg)
			assert.NotContains(t, out+errOut, "s3cret-token")
		})
	}
}

// Every unknown field is reported at once, with its path; a duplicate
// name is labelled with the registry's position; -o json carries the
// registry, index, field and message of each problem.
func TestValidateReportsEveryProblem(t *testing.T) {
	file := writeFile(t, "config.yaml", `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registry: oops
registries:
- name: quay
  type: quay
  url: quay.io
  usernme: {value: me}
  password: {secretKeyRef: {name: quay, key: token, optional: true}}
  clusters: {mode: inject-only, nmes: [prod]}
- name: quay
  type: other
  url: harbor.example.com
  pullSecret: {mode: image-pull-secret, name: harbor}
`)
	out, _, code := runCLI(t, "validate", "-f", file)
	assert.Equal(t, 1, code)
	for _, want := range []string{
		file + ": registry: unknown field\n",
		file + `: registry "quay" (registries[0]): usernme: unknown field` + "\n",
		file + `: registry "quay" (registries[0]): password.secretKeyRef.optional: unknown field` + "\n",
		file + `: registry "quay" (registries[0]): clusters.nmes: unknown field` + "\n",
		`registry "quay" (registries[1]): name:`,
	} {
		assert.Contains(t, out, want)
	}

	out, _, code = runCLI(t, "validate", "-f", file, "-o", "json")
	assert.Equal(t, 1, code)
	var raw struct {
		Problems []map[string]any `json:"problems"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	assert.Contains(t, raw.Problems, map[string]any{"field": "registry", "message": "unknown field"})
	assert.Contains(t, raw.Problems, map[string]any{"registry": "quay", "index": float64(0), "field": "usernme", "message": "unknown field"})
	assert.Contains(t, raw.Problems, map[string]any{"registry": "quay", "index": float64(0), "field": "clusters.nmes", "message": "unknown field"})
}

// No "1 registries", no "a ecr": the command line's words agree with
// their numbers and articles.
func TestGrammar(t *testing.T) {
	one := writeFile(t, "one.yaml", quayNoInline)
	badURLs := writeFile(t, "urls.yaml", `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: e, type: ecr, url: example.com, ecr: {auth: iam-role}}
- {name: a, type: azure, url: example.com, username: {value: u}, password: {secretKeyRef: {name: a, key: p}}}
- {name: r, type: artifact-registry, url: example.com, password: {secretKeyRef: {name: a, key: p}}}
- {name: g, type: gcr, url: example.com, password: {secretKeyRef: {name: a, key: p}}}
- {name: d, type: docker, url: example.com, username: {value: u}, password: {secretKeyRef: {name: a, key: p}}}
`)
	var all strings.Builder
	for _, args := range [][]string{
		{"validate", "-f", one},
		{"validate", "-f", badURLs},
		{"validate", "-f", "testdata/good.yaml"},
		{"validate", "-f", "testdata/bad.yaml"},
		{"match", "-f", one, "quay.io/a", "nginx"},
		{"check", "-f", one, "--all"},
		{"render", "-f", one},
		{"explain", "-f", writeFile(t, "app.yaml", manifest), "--config-file", writeFile(t, "cfg.yaml", explainConfig)},
	} {
		out, errOut, _ := runCLI(t, args...)
		all.WriteString(out + errOut)
	}
	text := all.String()
	assert.Contains(t, text, "valid, 1 registry\n")
	assert.Contains(t, text, "1 secretKeyRef not read (pass --kubeconfig to check the Secret it names)")
	assert.Contains(t, text, "is not an ecr registry address")
	assert.Contains(t, text, "is not an azure registry address")
	assert.NotRegexp(t, `\b1 [a-zA-Z]+s\b`, text)
	assert.NotRegexp(t, `\b[aA] [aeiouAEIOU]`, text)
	assert.NotRegexp(t, `\b[aA]n [b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]`, text)
}

// A ConfigMap manifest or values file followed by more documents (two
// files joined, helm template's output) is refused, as a bare config of two
// documents is: read as its first, it would be called valid while
// kubectl apply applies the others too.
func TestValidateRefusesMoreThanOneDocument(t *testing.T) {
	cm := `apiVersion: v1
kind: ConfigMap
metadata: {name: regcred-config}
data:
  config.yaml: |
    apiVersion: regcred.io/v1alpha1
    kind: RegistryConfig
    registries: []
`
	values := "config:\n  registries: []\n"
	for name, file := range map[string]string{
		"a ConfigMap, then another":   cm + "---\n" + strings.Replace(cm, "registries: []", "registries: [{name: BAD}]", 1),
		"values, then more values":    values + "---\n" + "config:\n  registries: [{name: BAD}]\n",
		"a bare config, then another": "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries: []\n---\nregistries: [{name: BAD}]\n",
	} {
		var out, errOut bytes.Buffer
		err := Run(t.Context(), []string{"validate", "-f", "-"}, strings.NewReader(file), &out, &errOut)
		require.Error(t, err, name)
		assert.Contains(t, out.String()+errOut.String()+err.Error(), "more than one YAML document (the next starts at line", name)
	}
	// A trailing --- says nothing more.
	var out, errOut bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"validate", "-f", "-"}, strings.NewReader(cm+"---\n"), &out, &errOut), errOut.String())
}

// With --cluster, validate says which registries this cluster's name
// leaves out (their cluster policy), as the webhook of that cluster would.
func TestValidateSaysWhatACluster(t *testing.T) {
	out, _, code := runCLI(t, "validate", "-f", "testdata/good.yaml", "--cluster", "sandbox")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "testdata/good.yaml: in cluster \"sandbox\", 2 registries inject nowhere (their cluster policy): ecr-prod, harbor\n")
	out, _, code = runCLI(t, "validate", "-f", "testdata/good.yaml", "--cluster", "prod-eu")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "testdata/good.yaml: in cluster \"prod-eu\", every registry injects\n")
	out, _, _ = runCLI(t, "validate", "-f", "testdata/good.yaml", "--cluster", "sandbox", "-o", "json")
	var res validateResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, "sandbox", res.Cluster)
	assert.Equal(t, []string{"ecr-prod", "harbor"}, res.NotInjected)
	out, _, _ = runCLI(t, "validate", "-f", "testdata/good.yaml")
	assert.NotContains(t, out, "in cluster", "without --cluster, no cluster is named")
}
