package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// servedSerial returns the serial number of the certificate the webhook
// server presents.
func servedSerial(t require.TestingT) string {
	u, err := url.Parse(env.regcred.URL)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.ca.CertPEM)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// A rotated serving certificate is picked up without a restart, and the
// API server keeps calling the webhook through the change.
func TestRotatedCertificateIsReloaded(t *testing.T) {
	before := servedSerial(t)
	pair, err := env.ca.Issue([]string{"127.0.0.1"}, 24*time.Hour)
	require.NoError(t, err)
	require.NoError(t, pair.Write(env.regcred.CertDir, "tls.crt", "tls.key"))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NotEqual(c, before, servedSerial(c))
	}, 30*time.Second, 100*time.Millisecond, "the new certificate was not served")
	got := createPod(t, clientset(t, nil), newNamespace(t), pod(env.imageA), metav1.CreateOptions{})
	assert.Equal(t, []string{"regcred-reg-a"}, secretNames(got))
}
