package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/cli"
	"github.com/regcred/regcred/test/testbed"
)

// runCheck runs `regcred check -f FILE --all` on a config and returns its
// output and exit code.
func runCheck(t *testing.T, cfg string, args ...string) (string, int) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	var out, errOut bytes.Buffer
	err := cli.Run(t.Context(), append([]string{"check", "-f", file, "--all"}, args...), strings.NewReader(""), &out, &errOut)
	code := 0
	if err != nil {
		code = cli.ExitCode(err)
		if !cli.Printed(err) {
			errOut.WriteString(err.Error())
		}
	}
	return out.String() + errOut.String(), code
}

func checkConfig(url, connection, ca, user, password string) string {
	s := "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n- name: reg\n  type: other\n  url: " + url + "\n  connection: " + connection + "\n"
	if ca != "" {
		s += "  caCert:\n    value: |\n" + testbed.Indent(ca, "      ") + "\n"
	}
	return s + "  username: {value: " + user + "}\n  password: {value: " + password + "}\n"
}

// `regcred check` against real registries, honouring each connection mode.
func TestCheckConnectionModes(t *testing.T) {
	ca := string(env.ca.CertPEM)

	// TLS with a private CA.
	out, code := runCheck(t, checkConfig(env.regA.Host, "secure-with-ca", ca, "alice", passwords["alice"]))
	assert.Equal(t, 0, code, out)
	assert.Equal(t, `reg: ok: logged in as "alice" with basic auth`+"\n", out)

	out, code = runCheck(t, checkConfig(env.regA.Host, "secure", "", "alice", passwords["alice"]))
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "reg: FAILED: TLS: the certificate of "+env.regA.Host+" (the registry) is not signed by a trusted authority (connection secure verifies against the system roots; use secure-with-ca with the registry's CA, or insecure)")

	other, err := certgen.NewCA("another-ca", time.Hour)
	require.NoError(t, err)
	out, code = runCheck(t, checkConfig(env.regA.Host, "secure-with-ca", string(other.CertPEM), "alice", passwords["alice"]))
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "is signed neither by the caCert of connection secure-with-ca nor by a system root")

	// TLS with an untrusted self-signed certificate: insecure logs in.
	selfSigned, err := certgen.NewCA("self-signed", time.Hour)
	require.NoError(t, err)
	untrusted, err := testbed.StartRegistry(testbed.RegistryOptions{CA: selfSigned, Users: map[string]string{"dave": "dave-Pa55"}})
	require.NoError(t, err)
	t.Cleanup(untrusted.Stop)
	out, code = runCheck(t, checkConfig(untrusted.Host, "insecure", "", "dave", "dave-Pa55"))
	assert.Equal(t, 0, code, out)
	out, code = runCheck(t, checkConfig(untrusted.Host, "secure", "", "dave", "dave-Pa55"))
	assert.Equal(t, 1, code, out)

	// Plain HTTP.
	plain, err := testbed.StartRegistry(testbed.RegistryOptions{Users: map[string]string{"erin": "erin-Pa55"}})
	require.NoError(t, err)
	t.Cleanup(plain.Stop)
	out, code = runCheck(t, checkConfig("http://"+plain.Host, "insecure", "", "erin", "erin-Pa55"))
	assert.Equal(t, 0, code, out)
	// Without http://, nodes would speak TLS to it (skipping
	// verification) and fail to pull: the check says so, rather than
	// fall back to plain HTTP as docker login does.
	out, code = runCheck(t, checkConfig(plain.Host, "insecure", "", "erin", "erin-Pa55"))
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, plain.Host+" speaks plain HTTP, not HTTPS: write the registry's url as \"http://"+plain.Host+"\"")

	// A wrong password: a clear failure, and no secret printed.
	out, code = runCheck(t, checkConfig(env.regA.Host, "secure-with-ca", ca, "alice", "Wrong-Pa55word"))
	assert.Equal(t, 1, code)
	assert.Equal(t, `reg: FAILED: credentials of user "alice" rejected: GET https://`+env.regA.Host+`/v2/ with basic auth answered HTTP 401`+"\n", out)
	assert.NotContains(t, out, "Wrong-Pa55word")
}

// `regcred check --kubeconfig` reads the Secrets a config refers to from
// the cluster, as the webhook does.
func TestCheckReadsReferencedSecretsFromTheCluster(t *testing.T) {
	cfg := config(registryConfig("reg-a", env.regA, "alice", "reg-a", ""))
	out, code := runCheck(t, cfg, "--kubeconfig", env.cp.Kubeconfig, "--namespace", regcredNamespace)
	assert.Equal(t, 0, code, out)
	assert.Equal(t, `reg-a: ok: logged in as "alice" with basic auth`+"\n", out)

	out, code = runCheck(t, cfg)
	assert.Equal(t, 1, code)
	assert.Equal(t, "reg-a: FAILED: cannot check: password comes from a Secret (secretKeyRef) that was not read (regcred check reads Secrets with --kubeconfig)\n", out)
}
