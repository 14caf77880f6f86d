package certgen

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIssueVerifiesAgainstCA(t *testing.T) {
	ca, err := NewCA("test-ca", time.Hour)
	require.NoError(t, err)
	pair, err := ca.Issue([]string{"regcred.regcred.svc", "127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(ca.CertPEM))
	for _, host := range []string{"regcred.regcred.svc", "127.0.0.1"} {
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		assert.NoError(t, err, host)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "other.svc", Roots: roots})
	assert.Error(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1"})
	assert.Error(t, err, "not trusted without the CA")
}

// A key written over a readable one is readable by its owner only, and
// nothing but the pair is left in the directory.
func TestWriteReplacesWithTheKeysMode(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), []byte("old"), 0o644)) //nolint:gosec // the loose mode under test
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("old"), 0o600))
	ca, err := NewCA("write test", time.Hour)
	require.NoError(t, err)
	pair, err := ca.Issue([]string{"regcred.example"}, time.Hour)
	require.NoError(t, err)
	require.NoError(t, pair.Write(dir, "tls.crt", "tls.key"))
	for name, want := range map[string]os.FileMode{"tls.key": 0o600, "tls.crt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, want, st.Mode().Perm(), name)
	}
	key, err := os.ReadFile(filepath.Join(dir, "tls.key"))
	require.NoError(t, err)
	assert.Equal(t, pair.KeyPEM, key)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary file left")
}
