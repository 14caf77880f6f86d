package image

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		raw, want, err string
	}{
		{raw: "docker.io", want: "docker.io"},
		{raw: "https://index.docker.io/v1/", want: "docker.io"},
		{raw: "registry-1.docker.io", want: "docker.io"},
		{raw: "Quay.IO", want: "quay.io"},
		{raw: "https://harbor.example.com:8443/team-a/", want: "harbor.example.com:8443/team-a"},
		{raw: "http://reg.local:5000", want: "reg.local:5000"},
		{raw: "[::1]:5000", want: "[::1]:5000"},
		{raw: "  gcr.io  ", want: "gcr.io"},
		{raw: "", err: "must not be empty"},
		{raw: "ftp://x.io", err: `scheme "ftp"`},
		{raw: "https://u:p@x.io", err: "must not contain credentials"},
		{raw: "[::1]", err: "needs an explicit port"},
		{raw: "[fd00:AB::1]:5000", want: "[fd00:ab::1]:5000"},
		// The image reference grammar has hex digits and ':' only between
		// the brackets: no image can name an address written with dots.
		{raw: "[::ffff:10.0.0.1]:5000", err: "hex digits and ':' only"},
		{raw: "reg:99999", err: "port must be"},
		{raw: "reg:", err: "port must be"},
		{raw: "bad_host.io", err: "not a valid host name"},
		{raw: "harbor.io/Team", err: "each segment"},
		{raw: "harbor.io/a//b", err: "each segment"},
		{raw: "x.io?q=1", err: "query"},
		// The kubelet strips a leading /v1/ or /v2/ from any key's path.
		{raw: "https://quay.io/v2/", want: "quay.io"},
		{raw: "https://quay.io/v1/org", want: "quay.io/org"},
		{raw: "harbor.example.com/v2/team-a/", want: "harbor.example.com/team-a"},
		{raw: "quay.io/v2", err: "the kubelet reads it as a repository named v2"},
		{raw: "harbor.example.com/v2x", want: "harbor.example.com/v2x"},
		{raw: "harbor.example.com/team/v2/app", want: "harbor.example.com/team/v2/app"},
		// A prefix that starts with v1/ or v2/ once the API version is
		// stripped: the kubelet would strip that too from the key written
		// for it (harbor.example.com/v2/app/ reads as harbor.example.com/app/).
		{raw: "harbor.example.com/v2/v2/app", err: `path "/v2/v2/app": a repository prefix cannot start with v2/`},
		{raw: "https://harbor.example.com/v1/v2/app/", err: `path "/v1/v2/app/": a repository prefix cannot start with v2/`},
		{raw: "harbor.example.com/v2/v1/app", err: "cannot start with v1/"},
		{raw: "harbor.example.com//v2/app", err: "cannot start with v2/"},
		{raw: "harbor.example.com/v1/v1", err: "the kubelet reads it as a repository named v1"},
		// Path components as the image reference grammar has them:
		// alphanumerics joined by one ".", one or two "_", or "-"s.
		{raw: "harbor.io/a__b/c---d/e.f_g-h", want: "harbor.io/a__b/c---d/e.f_g-h"},
		{raw: "harbor.io/team_-a", err: "each segment"},
		{raw: "harbor.io/a_.b", err: "each segment"},
		{raw: "harbor.io/a-_b", err: "each segment"},
		{raw: "harbor.io/a.-b", err: "each segment"},
		{raw: "harbor.io/a-.b", err: "each segment"},
		{raw: "harbor.io/a..b", err: "each segment"},
		{raw: "harbor.io/a._b", err: "each segment"},
		{raw: "harbor.io/a___b", err: "each segment"},
		{raw: "harbor.io/ok/_a", err: "each segment"},
		{raw: "harbor.io/a-", err: "each segment"},
		// Globs, as the kubelet matches keys.
		{raw: "*.example.com", want: "*.example.com"},
		{raw: "*.gcr.io", want: "*.gcr.io"},
		{raw: "reg-*.example.com", want: "reg-*.example.com"},
		{raw: "registry.*.example.com", want: "registry.*.example.com"},
		{raw: "*.example.com:5000", want: "*.example.com:5000"},
		{raw: "https://*.example.com/team/", want: "*.example.com/team"},
		{raw: "*.dkr.ecr.*.amazonaws.com", want: "*.dkr.ecr.*.amazonaws.com"},
		{raw: "*", err: "at least two labels"},
		{raw: "*.example.com:*", err: "a port cannot be a glob"},
		{raw: "?.example.com", err: "query"},
		{raw: "[a-z].example.com", err: "not a registry address"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			loc, err := ParseLocation(tc.raw)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tc.want, loc.String())
		})
	}
}

// A URL with userinfo is refused before anything else reads it, glob or
// not, and the error never quotes the user, the password or the token,
// in any letter case (hosts are folded to lower case).
func TestParseLocationNeverQuotesUserinfo(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		secrets   []string
	}{
		{"user and password, glob host", "https://robot:S3cretT0ken@*.example.com", []string{"robot", "S3cretT0ken"}},
		{"token only, glob host", "https://TOKEN@*.example.com", []string{"TOKEN"}},
		{"glob port", "https://robot:S3cretT0ken@*.example.com:*", []string{"S3cretT0ken"}},
		{"glob host, bad label", "robot:S3cretT0ken@*.ex_ample.com", []string{"S3cretT0ken"}},
		{"no scheme", "robot:S3cretT0ken@harbor.example.com", []string{"S3cretT0ken"}},
		{"password with a slash", "https://robot:S3cret/T0ken@harbor.example.com", []string{"S3cret", "T0ken"}},
		{"password with a bad escape", "https://robot:S3cret%zzT0ken@harbor.example.com", []string{"S3cret", "%zz", "T0ken"}},
		{"userinfo before the scheme", "robot:S3cretT0ken@https://harbor.example.com", []string{"S3cretT0ken"}},
		{"password with a colon, IPv6", "https://robot:S3cret:T0ken@[::1]:5000", []string{"S3cret", "T0ken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLocation(tc.raw)
			require.Error(t, err)
			msg := strings.ToLower(err.Error())
			for _, s := range tc.secrets {
				// Fail without printing the message: it would print the secret.
				require.False(t, strings.Contains(msg, strings.ToLower(s)), "the error quotes userinfo (%d characters, not shown)", len(s))
			}
			assert.Contains(t, msg, "must not contain credentials")
		})
	}
}

func TestLocationServes(t *testing.T) {
	for _, tc := range []struct {
		loc, image string
		want       bool
	}{
		{"*.example.com", "registry.example.com/app", true},
		{"*.example.com", "a.b.example.com/app", false},
		{"*.example.com", "example.com/app", false},
		{"*.example.com", "registry.example.com:5000/app", false},
		{"*.example.com:5000", "registry.example.com:5000/app", true},
		{"reg-*.example.com", "reg-eu.example.com/app", true},
		{"reg-*.example.com", "registry.example.com/app", false},
		{"registry.*.example.com", "registry.eu.example.com/app", true},
		{"*.example.com/team", "r.example.com/team/app", true},
		{"*.example.com/team", "r.example.com/team", true},
		{"*.example.com/team", "r.example.com/teams/app", false},
		{"*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", true},
		{"*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app", false},
		{"*.example.com", "Registry.example.com/app", true}, // as for the kubelet: * matches any letter case
		{"*.example.com", "registry.Example.com/app", false},
	} {
		loc, err := ParseLocation(tc.loc)
		require.NoError(t, err, tc.loc)
		ref, err := Parse(tc.image)
		require.NoError(t, err, tc.image)
		assert.Equal(t, tc.want, loc.Serves(ref), "%s serves %s", tc.loc, tc.image)
	}
}

// A prefix ParseLocation takes is a repository path the image reference
// grammar takes, and every path component it refuses is one the grammar
// refuses: a registry never silently matches nothing.
func TestParseLocationPrefixIsARepositoryPath(t *testing.T) {
	for _, c := range []string{"a", "a1", "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "a.b-c__d_e",
		"team_-a", "a_.b", "a-_b", "a.-b", "a-.b", "a..b", "a._b", "a___b", "_a", "a_", "-a", "a-", ".a", "a.", "A", "a b", "é"} {
		_, locErr := ParseLocation("harbor.io/" + c)
		ref, refErr := Parse("harbor.io/" + c)
		assert.Equal(t, refErr == nil, locErr == nil, "%q: ParseLocation says %v, the reference grammar %v", c, locErr, refErr)
		if refErr == nil {
			assert.Equal(t, c, ref.Path)
		}
	}
}
