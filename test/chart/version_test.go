package chart

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// releaseVersion is the VERSION file: the release this tree becomes when
// tagged v<VERSION>. make stamps it into the binary (pkg/cli.Version) and
// tags the image with it.
func releaseVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../VERSION")
	require.NoError(t, err)
	return strings.TrimSpace(string(data))
}

// TestVersionIsOneString: the chart is released with regcred, at the same
// version, and by default deploys the image that release publishes.
func TestVersionIsOneString(t *testing.T) {
	version := releaseVersion(t)
	assert.Regexp(t, regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`), version,
		"VERSION is a semantic version without a v (the git tag adds it)")

	data, err := os.ReadFile(chartDir + "/Chart.yaml")
	require.NoError(t, err)
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	require.NoError(t, yaml.Unmarshal(data, &chart))
	assert.Equal(t, version, chart.AppVersion, "Chart.yaml appVersion is VERSION: the image tag the chart deploys")
	assert.Equal(t, version, chart.Version, "Chart.yaml version is VERSION: the chart is released with regcred")

	data, err = os.ReadFile(chartDir + "/values.yaml")
	require.NoError(t, err)
	var values struct {
		Image struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"image"`
	}
	require.NoError(t, yaml.Unmarshal(data, &values))
	assert.Equal(t, "ghcr.io/regcred/regcred", values.Image.Repository, "where the release workflow pushes the image")
	assert.Empty(t, values.Image.Tag, "the tag defaults to appVersion")
}
