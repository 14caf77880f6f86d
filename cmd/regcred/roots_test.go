package main

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
)

// testCA returns a CA certificate as PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	ca, err := certgen.NewCA("regcred test CA", time.Hour)
	require.NoError(t, err)
	return ca.CertPEM
}

func write(t *testing.T, path string, data []byte) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// hasRoots reads files and directories as Go's loadSystemRoots does, and
// says whether Go will find a root there.
func TestHasRoots(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t)
	full := write(t, filepath.Join(dir, "full.pem"), ca)
	empty := write(t, filepath.Join(dir, "empty.pem"), nil)
	text := write(t, filepath.Join(dir, "text.pem"), []byte("no certificate here\n"))
	// The start of a block cut in two by the reads.
	split := write(t, filepath.Join(dir, "split.pem"), append([]byte(strings.Repeat("#", 8<<10-10)+"\n"), ca...))
	missing := filepath.Join(dir, "missing")
	// Blocks Go's AppendCertsFromPEM passes over: a certificate that does
	// not parse, one with PEM headers, one never ended.
	broken := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	headed := bytes.Replace(ca, []byte("CERTIFICATE-----\n"), []byte("CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n"), 1)
	unended := ca[:bytes.Index(ca, []byte("-----END"))]
	unparsed := write(t, filepath.Join(dir, "unparsed.pem"), slices.Concat(broken, headed, unended))
	thenGood := write(t, filepath.Join(dir, "then-good.pem"), slices.Concat(broken, headed, ca))
	dirOfUnparsed := filepath.Dir(write(t, filepath.Join(dir, "unparsed", "ca.pem"), broken))

	dirOfPEM := filepath.Join(dir, "certs")
	write(t, filepath.Join(dirOfPEM, "ca.pem"), ca)
	dirOfText := filepath.Join(dir, "text")
	write(t, filepath.Join(dirOfText, "README"), []byte("no certificate here\n"))
	dirOfDirs := filepath.Join(dir, "dirs")
	write(t, filepath.Join(dirOfDirs, "java", "cacerts.pem"), ca) // Go reads no subdirectory
	dirOfLinks := filepath.Join(dir, "links")
	require.NoError(t, os.Mkdir(dirOfLinks, 0o700))
	require.NoError(t, os.Symlink(missing, filepath.Join(dirOfLinks, "gone.pem")))
	dirOfGoodLinks := filepath.Join(dir, "goodlinks")
	require.NoError(t, os.Mkdir(dirOfGoodLinks, 0o700))
	require.NoError(t, os.Symlink(full, filepath.Join(dirOfGoodLinks, "ca.pem")))

	for _, tc := range []struct {
		name        string
		files, dirs []string
		want        bool
	}{
		{"nothing there", []string{missing}, []string{missing}, false},
		{"a file with a certificate", []string{missing, full}, nil, true},
		{"a file read past the first read", []string{split}, nil, true},
		{"Go reads the first file it can, and no other", []string{empty, full}, nil, false},
		{"a file that is not read is passed over", []string{dir, full}, nil, true},
		{"a file without a certificate", []string{text}, nil, false},
		{"a file of blocks that do not parse", []string{unparsed, full}, nil, false},
		{"a certificate after blocks that do not parse", []string{thenGood}, nil, true},
		{"a directory of blocks that do not parse", nil, []string{dirOfUnparsed}, false},
		{"a directory with a certificate", nil, []string{missing, dirOfPEM}, true},
		{"a directory of text", nil, []string{dirOfText}, false},
		{"a directory of directories", nil, []string{dirOfDirs}, false},
		{"a directory of dangling links", nil, []string{dirOfLinks}, false},
		{"a directory of links to certificates", nil, []string{dirOfGoodLinks}, true},
		{"files without, a directory with", []string{empty}, []string{dirOfText, dirOfPEM}, true},
	} {
		assert.Equal(t, tc.want, hasRoots(tc.files, tc.dirs), tc.name)
	}
}

// A certificate is found wherever the reads cut it, and a block that
// ends with more on its END line is passed over wherever the reads cut it,
// as Go, reading the whole file, passes it over.
func TestHoldsCertificateWhereverTheReadsCut(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t)
	trailing := slices.Concat(ca[:len(ca)-1], []byte(" more\n"))
	require.False(t, x509.NewCertPool().AppendCertsFromPEM(trailing), "Go loads no certificate from a block whose END line goes on")
	for pad := 8<<10 - len(ca) - 1; pad <= 8<<10; pad++ {
		padding := append(bytes.Repeat([]byte("#"), pad), '\n')
		has, err := holdsCertificate(write(t, filepath.Join(dir, "ca.pem"), slices.Concat(padding, ca)))
		require.NoError(t, err)
		require.True(t, has, "a certificate after %d bytes", pad+1)
		has, err = holdsCertificate(write(t, filepath.Join(dir, "trailing.pem"), slices.Concat(padding, trailing)))
		require.NoError(t, err)
		require.False(t, has, "a certificate whose END line goes on, after %d bytes", pad+1)
	}
}

// SSL_CERT_FILE and SSL_CERT_DIR take the place of Go's lists.
func TestSystemHasRoots(t *testing.T) {
	dir := t.TempDir()
	full := write(t, filepath.Join(dir, "ca.pem"), testCA(t))
	certs := filepath.Dir(write(t, filepath.Join(dir, "certs", "ca.pem"), testCA(t)))
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		file, dir string
		want      bool
	}{
		{missing, missing, false},
		{full, missing, true},
		{missing, missing + ":" + certs, true},
	} {
		t.Setenv("SSL_CERT_FILE", tc.file)
		t.Setenv("SSL_CERT_DIR", tc.dir)
		assert.Equal(t, tc.want, systemHasRoots(), "SSL_CERT_FILE=%s SSL_CERT_DIR=%s", tc.file, tc.dir)
	}
}

func TestForcedFallback(t *testing.T) {
	// Every setting with which Go uses the fallback roots.
	for _, godebug := range []string{"x509usefallbackroots=1", "http2debug=1,x509usefallbackroots=1", "x509usefallbackroots=1#pattern"} {
		assert.True(t, forcedFallback(godebug), godebug)
	}
	for _, godebug := range []string{"", "x509usefallbackroots=0", "http2debug=1"} {
		assert.False(t, forcedFallback(godebug), godebug)
	}
}

// The roots a regcred process trusts, as its own start (this package's
// init) leaves them: the test binary run again with another environment
// tells whether its system pool is the built-in roots, and whether it
// parsed them at all.
func TestTrustedRoots(t *testing.T) {
	if os.Getenv("REGCRED_ROOTS_CHILD") == "1" {
		pool, err := x509.SystemCertPool()
		require.NoError(t, err)
		fmt.Printf("builtin=%v roots=%d parsed=%v\n", pool.Equal(builtinRoots()), len(pool.Subjects()), builtinSet) //nolint:staticcheck // Subjects counts the roots of a pool Go loaded from files.
		return
	}
	dir := t.TempDir()
	ca := write(t, filepath.Join(dir, "ca.pem"), testCA(t))
	empty := write(t, filepath.Join(dir, "empty.pem"), nil)
	broken := write(t, filepath.Join(dir, "broken.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(dir, "missing")
	builtin := len(builtinRoots().Subjects()) //nolint:staticcheck // as above
	require.Greater(t, builtin, 100, "the binary has Mozilla's roots built in")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no roots on the system", []string{"SSL_CERT_FILE=" + missing, "SSL_CERT_DIR=" + missing, "GODEBUG="},
			fmt.Sprintf("builtin=true roots=%d parsed=true", builtin)},
		{"a root file without a root", []string{"SSL_CERT_FILE=" + empty, "SSL_CERT_DIR=" + missing, "GODEBUG="},
			fmt.Sprintf("builtin=true roots=%d parsed=true", builtin)},
		{"a root file whose certificate does not parse", []string{"SSL_CERT_FILE=" + broken, "SSL_CERT_DIR=" + missing, "GODEBUG="},
			fmt.Sprintf("builtin=true roots=%d parsed=true", builtin)},
		// The built-in roots are not even parsed.
		{"the system's roots", []string{"SSL_CERT_FILE=" + ca, "SSL_CERT_DIR=" + missing, "GODEBUG="},
			"builtin=false roots=1 parsed=false"},
		{"GODEBUG asks for the built-in ones", []string{"SSL_CERT_FILE=" + ca, "SSL_CERT_DIR=" + missing, "GODEBUG=x509usefallbackroots=1"},
			fmt.Sprintf("builtin=true roots=%d parsed=true", builtin)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTrustedRoots$")
			cmd.Env = append(os.Environ(), append(tc.env, "REGCRED_ROOTS_CHILD=1")...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, strings.Split(string(out), "\n"), tc.want, "%s", out)
		})
	}
}
