package pullsecret

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
)

func TestAuthKeys(t *testing.T) {
	for _, tc := range []struct {
		url   string
		exact bool
		want  []string
	}{
		{"docker.io", false, []string{"docker.io", "index*.docker.io", "registry-1.docker.io"}},
		{"https://index.docker.io/v1/", false, []string{"docker.io", "index*.docker.io", "registry-1.docker.io"}},
		{"docker.io/myorg", false, []string{"docker.io/myorg/", "index*.docker.io/myorg/", "registry-1.docker.io/myorg/"}},
		{"docker.io/myorg", true, []string{"docker.io/myorg", "index*.docker.io/myorg", "registry-1.docker.io/myorg"}},
		{"quay.io", false, []string{"quay.io"}},
		{"quay.io", true, []string{"quay.io"}},
		{"Harbor.example.com:8443/team-a/", false, []string{"harbor.example.com:8443/team-a/"}},
		{"Harbor.example.com:8443/team-a/", true, []string{"harbor.example.com:8443/team-a"}},
		{"*.example.com/team", false, []string{"*.example.com/team/"}},
		{"[::1]:5000", false, []string{"[::1]:5000"}},
	} {
		loc, err := image.ParseLocation(tc.url)
		require.NoError(t, err)
		assert.Equal(t, tc.want, AuthKeys(loc, tc.exact), "%s exact=%t", tc.url, tc.exact)
	}
}

func TestRenderIsKubectlFormat(t *testing.T) {
	loc, err := image.ParseLocation("quay.io")
	require.NoError(t, err)
	got, err := Render(Entry{Keys: AuthKeys(loc, false), Credential: credentials.Credential{Username: "org+robot", Password: "s3cret"}})
	require.NoError(t, err)
	// What `kubectl create secret docker-registry x --docker-server=quay.io
	// --docker-username=org+robot --docker-password=s3cret` writes.
	assert.JSONEq(t, `{"auths":{"quay.io":{"username":"org+robot","password":"s3cret","auth":"b3JnK3JvYm90OnMzY3JldA=="}}}`, string(got))
	keys, err := Keys(got)
	require.NoError(t, err)
	assert.Equal(t, []string{"quay.io"}, keys)
}
