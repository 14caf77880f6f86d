package pullsecret

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

func TestAuthKeys(t *testing.T) {
	for url, want := range map[string][]string{
		"docker.io":                       {"docker.io", "*.docker.io"},
		"https://index.docker.io/v1/":     {"docker.io", "*.docker.io"},
		"docker.io/myorg":                 {"docker.io/myorg", "*.docker.io/myorg"},
		"quay.io":                         {"quay.io"},
		"Harbor.example.com:8443/team-a/": {"harbor.example.com:8443/team-a"},
		"[::1]:5000":                      {"[::1]:5000"},
	} {
		loc, err := image.ParseLocation(url)
		require.NoError(t, err)
		assert.Equal(t, want, AuthKeys(loc), url)
	}
}

func TestRenderIsKubectlFormat(t *testing.T) {
	loc, err := image.ParseLocation("quay.io")
	require.NoError(t, err)
	got, err := Render(loc, credentials.Credential{Username: "org+robot", Password: "s3cret"})
	require.NoError(t, err)
	// What `kubectl create secret docker-registry x --docker-server=quay.io
	// --docker-username=org+robot --docker-password=s3cret` writes.
	assert.JSONEq(t, `{"auths":{"quay.io":{"username":"org+robot","password":"s3cret","auth":"b3JnK3JvYm90OnMzY3JldA=="}}}`, string(got))
}
