package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	} {
		_, errOut, code := runCLI(t, "render", "-f", "testdata/good.yaml", "--registry", tc.registry)
		assert.Equal(t, 2, code, tc.registry)
		assert.Contains(t, errOut, tc.msg)
	}
	_, errOut, code := runCLI(t, "render", "-f", "-")
	assert.Equal(t, 1, code, "an empty config")
	assert.NotEmpty(t, errOut)
}

// The command line waits for ECR as long as a call may take, not the
// admission's budget of 2 s: a slow answer (a proxy, a far region) is a
// token, not a failure. A local endpoint speaks ECR's protocol to the AWS
// SDK's client.
func TestRenderWaitsForASlowECR(t *testing.T) {
	var calls atomic.Int32
	localECR(t, func(w http.ResponseWriter) {
		calls.Add(1)
		time.Sleep(2500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		token := base64.StdEncoding.EncodeToString([]byte("AWS:s3cret-ecr-token"))
		fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}]}`,
			token, time.Now().Add(12*time.Hour).Unix())
	})
	cfg := `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: ecr, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
`
	var out, errOut bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"render", "-f", "-", "--registry", "ecr"}, strings.NewReader(cfg), &out, &errOut), "%s", errOut.String())
	assert.JSONEq(t, `{"auths":{"123456789012.dkr.ecr.eu-west-1.amazonaws.com":{"username":"AWS","password":"<redacted>","auth":"<redacted>"}}}`, out.String())
	assert.NotContains(t, out.String()+errOut.String(), "s3cret-ecr-token")
	assert.EqualValues(t, 1, calls.Load())
}

// A registry in image-pull-secret mode has regcred inject the admin's
// secret and write none, whether or not it gives credentials (for the
// login checks).
func TestRenderWritesNoneForTheAdminsSecret(t *testing.T) {
	for _, creds := range []string{"", ", username: {value: u}, password: {value: s3cret}"} {
		cfg := `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: harbor, type: other, url: harbor.internal:8443/team-a, pullSecret: {mode: image-pull-secret, name: regcred}` + creds + `}
`
		var out, errOut bytes.Buffer
		err := Run(t.Context(), []string{"render", "-f", "-", "--registry", "harbor"}, strings.NewReader(cfg), &out, &errOut)
		require.Error(t, err, creds)
		assert.Contains(t, err.Error(), `registry "harbor" injects the admin's secret "regcred"; regcred writes none`)
		assert.Empty(t, out.String())
		assert.NotContains(t, err.Error(), "s3cret")
	}
}

// localECR points the AWS SDK's ECR client at a local endpoint answering
// GetAuthorizationToken with answer, and gives the SDK's default chain an
// identity from the environment (no shared file, no instance metadata).
func localECR(t *testing.T, answer func(w http.ResponseWriter)) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		answer(w)
	}))
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_ECR": srv.URL, "AWS_ACCESS_KEY_ID": "AKIATEST", "AWS_SECRET_ACCESS_KEY": "test-secret",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
}
