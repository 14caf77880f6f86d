package kubelet

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/test/testbed"
)

// TestJudgeImages checks what the judge reports besides credentials: the
// image the kubelet pulls, the name it looks up, and parse errors, several
// images of one Pod in order.
func TestJudgeImages(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		image, pulled, lookup, err string
	}{
		{image: "nginx", pulled: "nginx:latest", lookup: "docker.io/library/nginx"},
		{image: "nginx:1.27", pulled: "nginx:1.27", lookup: "docker.io/library/nginx"},
		{image: "nginx@" + digest, pulled: "nginx@" + digest, lookup: "docker.io/library/nginx"},
		{image: "library/nginx", pulled: "library/nginx:latest", lookup: "docker.io/library/nginx"},
		{image: "registry.example.com:5000/team/app", pulled: "registry.example.com:5000/team/app:latest", lookup: "registry.example.com:5000/team/app"},
		{image: "registry.example.com/Team/app", err: "repository name (Team/app) must be lowercase"},
		{image: "nginx:", err: "invalid reference format"},
		{image: "", err: `couldn't parse image name ""`},
	}
	pod := testbed.JudgePod{Secrets: []testbed.JudgeSecret{{Name: "s", DockerConfigJSON: dockerConfigJSON(t, one("s", "docker.io", "hub")[0])}}}
	for _, c := range cases {
		pod.Images = append(pod.Images, c.image)
	}
	res, err := testbed.KubeletJudge(t.Context(), []testbed.JudgePod{pod})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Empty(t, res[0].Error)
	require.Len(t, res[0].Images, len(cases))
	for i, c := range cases {
		t.Run(c.image, func(t *testing.T) {
			img := res[0].Images[i]
			assert.Equal(t, c.image, img.Image)
			if c.err != "" {
				assert.Contains(t, img.Error, c.err)
				assert.Empty(t, img.Credentials)
				return
			}
			assert.Empty(t, img.Error)
			assert.Equal(t, c.pulled, img.Pulled)
			assert.Equal(t, c.lookup, img.Lookup)
		})
	}
}

// TestJudgePods checks Pods the kubelet treats as a whole: no secrets, a
// secret without data (skipped), and a secret it cannot read (every pull
// fails), each answered on its own in one batch.
func TestJudgePods(t *testing.T) {
	hub := dockerConfigJSON(t, one("hub", "docker.io", "hub")[0])
	pods := []testbed.JudgePod{
		{Images: []string{"nginx"}},
		{Secrets: []testbed.JudgeSecret{{Name: "empty"}, {Name: "hub", DockerConfigJSON: hub}}, Images: []string{"nginx"}},
		{Secrets: []testbed.JudgeSecret{{Name: "bad", DockerConfigJSON: json.RawMessage(`"not a docker config"`)}, {Name: "hub", DockerConfigJSON: hub}}, Images: []string{"nginx"}},
	}
	res, err := testbed.KubeletJudge(t.Context(), pods)
	require.NoError(t, err)
	require.Len(t, res, len(pods))

	require.Empty(t, res[0].Error)
	require.Len(t, res[0].Images, 1)
	assert.Empty(t, res[0].Images[0].Credentials, "no secrets: an anonymous pull")

	require.Empty(t, res[1].Error)
	require.Len(t, res[1].Images, 1)
	assert.Equal(t, []testbed.JudgeCredential{{Secret: "hub", Key: "docker.io", Username: "hub", Password: password("hub")}},
		res[1].Images[0].Credentials)

	assert.NotEmpty(t, res[2].Error, "an unreadable secret fails the Pod's pulls")
	assert.Empty(t, res[2].Images)

	empty, err := testbed.KubeletJudge(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}
