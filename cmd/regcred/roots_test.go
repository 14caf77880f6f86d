package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
)

func TestSystemHasRoots(t *testing.T) {
	dir := t.TempDir()
	empty, full := filepath.Join(dir, "empty.pem"), filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	require.NoError(t, os.WriteFile(full, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600))
	emptyDir, fullDir := filepath.Join(dir, "none"), filepath.Join(dir, "certs")
	require.NoError(t, os.Mkdir(emptyDir, 0o700))
	require.NoError(t, os.Mkdir(fullDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(fullDir, "ca.pem"), []byte("x"), 0o600))

	for _, tc := range []struct {
		file, dir string
		want      bool
	}{
		{filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing"), false},
		{empty, emptyDir, false},
		{dir, emptyDir, false}, // a directory is not a file of roots
		{full, emptyDir, true},
		{empty, fullDir, true},
		{empty, emptyDir + string(filepath.ListSeparator) + fullDir, true},
	} {
		t.Setenv("SSL_CERT_FILE", tc.file)
		t.Setenv("SSL_CERT_DIR", tc.dir)
		assert.Equal(t, tc.want, systemHasRoots(), "SSL_CERT_FILE=%s SSL_CERT_DIR=%s", tc.file, tc.dir)
	}
}

func TestForcedFallback(t *testing.T) {
	for godebug, want := range map[string]bool{
		"":                                     false,
		"x509usefallbackroots=1":               true,
		"http2debug=1, x509usefallbackroots=1": true,
		"x509usefallbackroots=0":               false,
		"x509usefallbackroots=1,x509usefallbackroots=0": false,
		"x509usefallbackroots=10":                       false,
	} {
		assert.Equal(t, want, forcedFallback(godebug), godebug)
	}
}

// The roots a regcred process trusts, as its own start (this package's
// init) leaves them: the test binary run again with another environment
// tells whether its system pool is the built-in roots.
func TestTrustedRoots(t *testing.T) {
	if os.Getenv("REGCRED_ROOTS_CHILD") == "1" {
		pool, err := x509.SystemCertPool()
		require.NoError(t, err)
		fmt.Printf("builtin=%v roots=%d\n", pool.Equal(builtinRoots()), len(pool.Subjects())) //nolint:staticcheck // Subjects counts the roots of a pool Go loaded from files.
		return
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	testCA, err := certgen.NewCA("regcred test CA", time.Hour)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ca, testCA.CertPEM, 0o600))
	builtin := len(builtinRoots().Subjects()) //nolint:staticcheck // as above
	require.Greater(t, builtin, 100, "the binary has Mozilla's roots built in")
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no roots on the system", []string{"SSL_CERT_FILE=" + missing, "SSL_CERT_DIR=" + missing}, fmt.Sprintf("builtin=true roots=%d", builtin)},
		{"the system's roots", []string{"SSL_CERT_FILE=" + ca, "SSL_CERT_DIR=" + missing}, "builtin=false roots=1"},
		{"GODEBUG asks for the built-in ones", []string{"SSL_CERT_FILE=" + ca, "SSL_CERT_DIR=" + missing, "GODEBUG=x509usefallbackroots=1"}, fmt.Sprintf("builtin=true roots=%d", builtin)},
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
