package image

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMatcher(t *testing.T) *Matcher[string] {
	t.Helper()
	m := NewMatcher[string]()
	for url, name := range map[string]string{
		"docker.io":                          "hub",
		"index.docker.io/myorg":              "hub-myorg",
		"quay.io":                            "quay",
		"harbor.example.com":                 "harbor",
		"https://harbor.example.com/team-a/": "harbor-a",
		"harbor.example.com/team-a/sub":      "harbor-a-sub",
		"harbor.example.com:8443":            "harbor-8443",
		"reg:5000":                           "reg5000",
		"localhost:5000":                     "local5000",
		"localhost":                          "local",
		"[::1]:5000":                         "ipv6",
		"127.0.0.1:5000":                     "ipv4",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr",
		"europe-west1-docker.pkg.dev/my-project":       "ar",
		"gcr.io":                                       "gcr",
		"eu.gcr.io":                                    "gcr-eu",
		"myreg.azurecr.io":                             "acr",
	} {
		loc, err := ParseLocation(url)
		require.NoError(t, err, url)
		require.True(t, m.Add(loc, name), url)
	}
	return m
}

func TestMatch(t *testing.T) {
	m := testMatcher(t)
	for _, tc := range []struct {
		image string
		want  string // "" means no registry
	}{
		// Docker Hub: implicit docker.io and library/, the three aliases.
		{"nginx", "hub"},
		{"nginx:1.27", "hub"},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "hub"},
		{"library/nginx", "hub"},
		{"docker.io/nginx", "hub"},
		{"docker.io/library/nginx:latest", "hub"},
		{"index.docker.io/library/nginx", "hub"},
		{"registry-1.docker.io/library/nginx", "hub"},
		{"someone/app", "hub"},
		{"myorg/app", "hub-myorg"},
		{"docker.io/myorg/app:v1", "hub-myorg"},
		{"index.docker.io/myorg/app", "hub-myorg"},
		{"registry-1.docker.io/myorg/team/app", "hub-myorg"},
		{"myorgx/app", "hub"},
		{"Docker.io/library/nginx", ""},
		// Plain hosts.
		{"quay.io/org/app", "quay"},
		{"quay.io/org+robot/app:tag", ""}, // not a valid reference
		{"quay.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "quay"},
		{"Quay.io/org/app", ""},
		{"quay.io.evil.com/org/app", ""},
		{"gcr.io/proj/app", "gcr"},
		{"eu.gcr.io/proj/app", "gcr-eu"},
		{"us.gcr.io/proj/app", ""},
		{"myreg.azurecr.io/app:1", "acr"},
		{"other.azurecr.io/app", ""},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v3", "ecr"},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/app", ""},
		// Path prefixes: longest wins, siblings with the same characters do not match.
		{"harbor.example.com/team-a/app", "harbor-a"},
		{"harbor.example.com/team-a", "harbor-a"},
		{"harbor.example.com/team-a/sub/app", "harbor-a-sub"},
		{"harbor.example.com/team-a/sub", "harbor-a-sub"},
		{"harbor.example.com/team-a/subway/app", "harbor-a"},
		{"harbor.example.com/team-ab/app", "harbor"},
		{"harbor.example.com/team-b/app:1", "harbor"},
		{"europe-west1-docker.pkg.dev/my-project/repo/app", "ar"},
		{"europe-west1-docker.pkg.dev/my-project2/repo/app", ""},
		{"europe-west1-docker.pkg.dev/other/repo/app", ""},
		// Ports are part of the host.
		{"harbor.example.com:8443/team-a/app", "harbor-8443"},
		{"reg:5000/app", "reg5000"},
		{"reg:5001/app", ""},
		{"reg/app", "hub"}, // no dot or port: a Docker Hub repository named reg/app
		{"localhost:5000/app", "local5000"},
		{"localhost/app", "local"},
		{"localhost:5001/app", ""},
		{"127.0.0.1:5000/app:dev", "ipv4"},
		{"127.0.0.1/app", ""},
		{"[::1]:5000/app", "ipv6"},
		{"[::1]/app", ""},
		{"[::2]:5000/app", ""},
		// Not references at all.
		{"", ""},
		{"UPPER/case", ""},
		{"nginx:", ""},
		{"http://quay.io/org/app", ""},
		{"quay.io/org/app:tag@sha256:bad", ""},
	} {
		t.Run(tc.image, func(t *testing.T) {
			ref, err := Parse(tc.image)
			if err != nil {
				assert.Empty(t, tc.want, "parse error: %v", err)
				return
			}
			got, _ := m.Match(ref)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMatchGlobs(t *testing.T) {
	m := NewMatcher[string]()
	for url, name := range map[string]string{
		"*.example.com":                                "any",
		"reg-*.example.com":                            "reg",
		"registry.example.com":                         "exact",
		"*.example.com/team":                           "team",
		"*.dkr.ecr.*.amazonaws.com":                    "ecr-any",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-one",
	} {
		loc, err := ParseLocation(url)
		require.NoError(t, err, url)
		require.True(t, m.Add(loc, name), url)
	}
	for image, want := range map[string]string{
		"foo.example.com/app":                            "any",
		"foo.example.com/team/app":                       "team",
		"reg-eu.example.com/app":                         "reg",
		"reg-eu.example.com/team/app":                    "reg", // reg-* sorts after *: the kubelet tries it first
		"registry.example.com/team/app":                  "exact",
		"a.b.example.com/app":                            "",
		"210987654321.dkr.ecr.us-east-1.amazonaws.com/x": "ecr-any",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/x": "ecr-one",
	} {
		ref, err := Parse(image)
		require.NoError(t, err)
		got, _ := m.Match(ref)
		assert.Equal(t, want, got, image)
	}
}

func TestMatchFoldingCaseExplainsMisses(t *testing.T) {
	m := testMatcher(t)
	for image, want := range map[string]string{
		"Quay.io/org/app":             "quay",
		"Docker.io/library/nginx":     "hub",
		"Index.Docker.io/x/y":         "hub",
		"HARBOR.example.com/team-a/x": "harbor-a",
	} {
		ref, err := Parse(image)
		require.NoError(t, err)
		_, ok := m.Match(ref)
		assert.False(t, ok, image)
		got, ok := m.MatchFoldingCase(ref)
		assert.True(t, ok, image)
		assert.Equal(t, want, got, image)
	}
}

func TestParse(t *testing.T) {
	for image, want := range map[string]Ref{
		"nginx":                           {Host: "docker.io", Path: "library/nginx"},
		"index.docker.io/library/nginx:1": {Host: "docker.io", Path: "library/nginx"},
		"registry-1.docker.io/a/b":        {Host: "docker.io", Path: "a/b"},
		"localhost/x":                     {Host: "localhost", Path: "x"},
		"Foo/bar":                         {Host: "Foo", Path: "bar"},
		"[::1]:5000/a/b/c@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": {Host: "[::1]:5000", Path: "a/b/c"},
	} {
		got, err := Parse(image)
		require.NoError(t, err, image)
		assert.Equal(t, want, got, image)
	}
}

func TestAddRefusesDuplicateLocation(t *testing.T) {
	m := NewMatcher[int]()
	a, err := ParseLocation("https://Harbor.example.com/team-a/")
	require.NoError(t, err)
	b, err := ParseLocation("harbor.example.com/team-a")
	require.NoError(t, err)
	assert.True(t, m.Add(a, 1))
	assert.False(t, m.Add(b, 2))
	got, ok := m.Match(Ref{Host: "harbor.example.com", Path: "team-a/app"})
	assert.True(t, ok)
	assert.Equal(t, 1, got, "the first registration stays")
}

func FuzzMatch(f *testing.F) {
	for _, s := range []string{"nginx", "quay.io/org/app:1", "harbor.example.com/team-a/x", "[::1]:5000/a", "localhost/x", "Quay.io/a", "a@sha256:00"} {
		f.Add(s)
	}
	m := NewMatcher[string]()
	for _, url := range []string{"docker.io", "quay.io", "harbor.example.com/team-a", "harbor.example.com", "[::1]:5000", "localhost"} {
		loc, err := ParseLocation(url)
		if err != nil {
			f.Fatal(err)
		}
		m.Add(loc, url)
	}
	f.Fuzz(func(t *testing.T, image string) {
		ref, err := Parse(image)
		ref2, err2 := Parse(image)
		if (err == nil) != (err2 == nil) || ref != ref2 {
			t.Fatalf("Parse(%q) not deterministic", image)
		}
		if err != nil {
			return
		}
		got, ok := m.Match(ref)
		got2, ok2 := m.Match(ref)
		if got != got2 || ok != ok2 {
			t.Fatalf("Match(%q) not deterministic", image)
		}
		if ok {
			loc, err := ParseLocation(got)
			if err != nil {
				t.Fatal(err)
			}
			if loc.Host != ref.Host {
				t.Fatalf("%q matched %q on another host", image, got)
			}
		}
		m.MatchFoldingCase(ref)
	})
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"docker.io", "https://index.docker.io/v1/", "harbor:8443/a/b", "[::1]:5000", "http://x", "::", "a//b",
		"h.io/v2/v2/app", "h.io/v1/v2/app/", "h.io//v2/a", "h.io/v2/team-a", "h.io/team_-a", "h.io/a__b/c---d", "h.io/a_.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := ParseLocation(raw)
		if err != nil {
			return
		}
		// A parsed location parses back to itself.
		again, err := ParseLocation(loc.String())
		if err != nil || again != loc {
			t.Fatalf("ParseLocation(%q) = %v, re-parse gives %v, %v", raw, loc, again, err)
		}
		// Its prefix is a repository path (the reference grammar's), and
		// the key the kubelet reads for it names that prefix.
		if loc.Prefix != "" && len(loc.Prefix) <= 200 {
			if ref, err := Parse("example.com/" + loc.Prefix); err != nil || ref.Path != loc.Prefix {
				t.Fatalf("ParseLocation(%q): prefix %q is not a repository path: %v", raw, loc.Prefix, err)
			}
			if key, ok := normalizeKey(loc.String() + "/"); !ok || key != loc.String()+"/" {
				t.Fatalf("ParseLocation(%q): the kubelet reads key %q as %q", raw, loc.String()+"/", key)
			}
		}
	})
}
