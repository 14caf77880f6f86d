package image

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/stretchr/testify/assert"
)

var nameCases = []string{
	"nginx", "nginx:1.27", "library/nginx", "docker.io/nginx", "index.docker.io/nginx", "index.docker.io/org/app:v1",
	"registry-1.docker.io/org/app", "quay.io/org/app:v1@sha256:" + strings.Repeat("ab", 32), "myorg/app@sha256:" + strings.Repeat("0", 64),
	"localhost/app", "localhost:5000/a/b/c", "reg.example.com:8443/team-a/app-1__x.y--z:TAG_1.0-rc", "127.0.0.1:5000/x",
	"Quay.io/org/app", "quay.io/Org/app", "UPPER/Case", "a_b.com/x", "-a.com/x", "a-.com/x", "a..com/x", "a.com:/x", "a.com:5x/x",
	"[::1]:5000/x", "[::1]/x", "x/y:", "x/y:-tag", "x/y:.tag", "x/y:" + strings.Repeat("t", 128), "x/y:" + strings.Repeat("t", 129),
	"x/y@sha256:abc", "x/y@sha512:" + strings.Repeat("a", 128), "x/y@SHA256:" + strings.Repeat("a", 64), "x/y@sha256:" + strings.Repeat("A", 64),
	strings.Repeat("a", 64), strings.Repeat("a", 63), "x/" + strings.Repeat("a", 250), "x/" + strings.Repeat("a", 260),
	"", "/", "x/", "/x", "x//y", "x/.y", "x/y.", "x/a___b", "x/a._b", "x/a-b", "x/a--b", "x/a__b", "x/a.b_c", "x/y:t@", "x/y@",
	"x/y:t:u", "é/x", "x/é", "foo:5000", "Foo/bar", "docker.io/library", "docker.io/Library/x", "docker.io/a/b/c:latest",
	// What the common path leaves to the rest: IPv6 hosts, other digests,
	// a first component that is no domain, errors of every kind.
	"[::1]:5000/x:t@sha256:" + strings.Repeat("ab", 32), "[fe80::1%25eth0]/x", "[]/x", "[]:5000/x", "[:]/x", "[::1]x/y", "[g::1]/x", "[::1]:/x", "[::1]:5a/x", "[::1/x",
	"[ABCDEF::1]/x", "x/y@sha384:" + strings.Repeat("c", 96), "x/y@sha384:" + strings.Repeat("c", 95), "x/y@sha512:" + strings.Repeat("C", 128),
	"x/y@md5:" + strings.Repeat("a", 32), "x/y@Md5:" + strings.Repeat("a", 32), "x/y@sha256+b64u:" + strings.Repeat("a", 64),
	"x/y@a-b.c+d_e:" + strings.Repeat("a", 40), "x/y@1a:" + strings.Repeat("a", 32), "x/y@a-:" + strings.Repeat("a", 32),
	"x/y@a--b:" + strings.Repeat("a", 32), "x/y@:" + strings.Repeat("a", 32), "x/y@sha256:" + strings.Repeat("a", 31),
	"x/y@sha256:" + strings.Repeat("g", 64), "x/y@sha256:" + strings.Repeat("a", 64) + ":", "x/y:t@sha256:" + strings.Repeat("a", 64) + "@",
	"a_b.com/x", "a_b.com/x:t", "A_B/x", "a_b:5000/x", "localhost:5000/X", "localhost/x@sha256:" + strings.Repeat("A", 64),
	"reg.example.com/" + strings.Repeat("a", 256), "[::1]/" + strings.Repeat("a", 255) + ":t", "x/Y:t", "x/y:T", "x/y@sha256:X",
	"nginx@sha256:" + strings.Repeat("ab", 32), "NGINX", "\xff/x", "x/\xff", "x/y:\xff", strings.Repeat("A", 64), strings.Repeat("a", 65),
}

// parseName answers as reference.ParseNormalizedNamed does: the same
// domain and path, or the same error.
func TestParseNameAgreesWithDistribution(t *testing.T) {
	for _, s := range nameCases {
		checkName(t, s)
	}
	for _, s := range []string{"nginx", "quay.io/org/app:v1", "localhost:5000/a/b"} {
		_, _, ok := parseCommonName(s)
		assert.True(t, ok, "%q is read without regular expressions", s)
	}
}

func checkName(t *testing.T, s string) {
	t.Helper()
	named, wantErr := reference.ParseNormalizedNamed(s)
	if d, p, ok := parseCommonName(s); ok {
		if wantErr != nil {
			t.Fatalf("%q: the fast path reads %q %q, ParseNormalizedNamed fails: %v", s, d, p, wantErr)
		}
		if d != reference.Domain(named) || p != reference.Path(named) {
			t.Fatalf("%q: the fast path reads %q %q, ParseNormalizedNamed %q %q", s, d, p, reference.Domain(named), reference.Path(named))
		}
	}
	d, p, err := parseName(s)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%q: parseName says %v, ParseNormalizedNamed %v", s, err, wantErr)
	}
	if err == nil && (d != reference.Domain(named) || p != reference.Path(named)) {
		t.Fatalf("%q: parseName reads %q %q, ParseNormalizedNamed %q %q", s, d, p, reference.Domain(named), reference.Path(named))
	}
	// The full path alone, which Keyring.Lookup takes for what the common
	// path does not read, answers the same for every reference.
	if fd, fp, ferr := parseNormalized(s); fd != d || fp != p || (ferr == nil) != (err == nil) || ferr != nil && ferr.Error() != err.Error() {
		t.Fatalf("%q: parseNormalized says %q %q %v, parseName %q %q %v", s, fd, fp, ferr, d, p, err)
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range nameCases {
		f.Add(s)
	}
	f.Fuzz(checkName)
}

func BenchmarkParseName(b *testing.B) {
	for _, tc := range []struct {
		name  string
		parse func(string) error
	}{
		{"parseName", func(s string) error { _, _, err := parseName(s); return err }},
		{"ParseNormalizedNamed", func(s string) error { _, err := reference.ParseNormalizedNamed(s); return err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, s := range []string{"nginx:1.27", "quay.io/org/app:v1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app@sha256:" + strings.Repeat("ab", 32)} {
					if err := tc.parse(s); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// For a name of the common shape, Lookup reads the image's host and path
// without url.Parse: they are what url.Parse reads.
func FuzzCommonNameURL(f *testing.F) {
	for _, s := range nameCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, p, ok := parseCommonName(s)
		if !ok {
			return
		}
		want := parseURL(d + "/" + p)
		labels, port := splitHost(d)
		assert.Equal(t, want, keyURL{ok: true, path: "/" + p, labels: labels, port: port}, "%q", s)
	})
}
