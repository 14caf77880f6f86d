package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// Without --cluster, a registry left out by its cluster policy is not said
// to leave out a cluster named "".
func TestMatchNoClusterName(t *testing.T) {
	out, _, code := runCLI(t, "match", "-f", "testdata/good.yaml", "-o", "json", "harbor.internal:8443/team-a/app")
	assert.Equal(t, 1, code)
	var res []matchResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Len(t, res, 1)
	assert.Equal(t, `registry "harbor"'s cluster policy does not inject in this cluster`, res[0].Reason)
	assert.NotContains(t, out, `cluster \"\"`)
}

// A namespace that opted out gets nothing: each image says why, and the
// exit code is 1, as for any image that gets no secret.
func TestMatchInANamespaceThatOptedOut(t *testing.T) {
	out, _, code := runCLI(t, "match", "-f", "testdata/good.yaml", "--cluster", "prod-eu", "-o", "json",
		"--namespace-labels", "regcred.io/inject=false", "nginx", "quay.io/org/app")
	assert.Equal(t, 1, code)
	var res []matchResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Len(t, res, 2)
	for i, img := range []string{"nginx", "quay.io/org/app"} {
		assert.Equal(t, img, res[i].Image)
		assert.False(t, res[i].Injected)
		assert.Empty(t, res[i].Secret)
		assert.Contains(t, res[i].Reason, "regcred.io/inject=false")
	}
	assert.Equal(t, "hub", res[0].Registry, "the registry the image matches, which injects nothing here")
}
