package check

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

// Transport returns the HTTP transport of regcred's own connections to a
// registry, secured as its connection mode says.
func Transport(r *registries.Registry) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.ResponseHeaderTimeout = 15 * time.Second
	switch r.Connection {
	case config.SecureWithCA:
		// The CA is trusted on top of the system roots, as containerd
		// trusts it: the registry's token service, or a host it
		// redirects to, may have a publicly trusted certificate.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(r.CACert) {
			return nil, errors.New("caCert holds no PEM certificate")
		}
		t.TLSClientConfig.RootCAs = pool
	case config.Insecure:
		t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the admin chose connection: insecure
	}
	return t, nil
}
