package chart

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
)

// TestManifestsInSync renders the chart again with the command written in
// manifests/regcred.yaml's header (by make manifests) and compares.
func TestManifestsInSync(t *testing.T) {
	data, err := os.ReadFile("../../manifests/regcred.yaml")
	require.NoError(t, err)
	const marker = "# Rendered with: helm "
	var args []string
	var body bytes.Buffer
	inHeader := true
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if inHeader && strings.HasPrefix(line, "#") {
			if rest, ok := strings.CutPrefix(line, marker); ok {
				args = strings.Fields(rest)
			}
			continue
		}
		inHeader = false
		body.WriteString(line + "\n")
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, args, "manifests/regcred.yaml names the command it was rendered with")
	require.Equal(t, "template", args[0])
	for i, a := range args {
		if a == "charts/regcred" {
			args[i] = chartDir
		}
	}
	want, err := helm(t, args...)
	require.NoError(t, err)
	assert.Equal(t, want, body.String(), "manifests/regcred.yaml is out of date: run make manifests")

	objs, err := parseObjects(body.Bytes())
	require.NoError(t, err)
	r := &rendered{objects: objs}
	assert.NotNil(t, r.find("Namespace", "regcred"), "kubectl apply creates the namespace")
	assert.Nil(t, r.find("Certificate", "regcred-serving-cert"), "no cert-manager needed")
	assert.Nil(t, r.find("Secret", "regcred-tls"), "no key in the manifests: regcred makes its own")
	// The config is the admin's: applying the manifests again to upgrade
	// must not write an empty one over it (regcred would then delete every
	// pull secret it made).
	assert.Nil(t, r.find("ConfigMap", "regcred-config"), "no registry config in the manifests")
	var d appsv1.Deployment
	r.get(t, "Deployment", "regcred", &d)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--tls-secret=regcred-tls")
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--config-configmap=regcred-config")
}
