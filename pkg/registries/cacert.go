package registries

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
)

// ParseCACert returns the certificates (DER) of a caCert, read once for
// everything after the load: regcred's own connections (package check
// reads the PEM with crypto/x509's AppendCertsFromPEM, which takes the
// CERTIFICATE blocks without headers that parse: the same ones) and the
// nodes (package nodetrust publishes these). A caCert must hold at least
// one certificate and every PEM block in it must be one, so that nothing
// is silently dropped and nothing else (a private key pasted with the
// certificate) is kept. Text around the blocks is allowed, as
// `openssl x509 -text` writes it.
//
// The errors never quote the content: a caCert that is not a certificate
// may be anything, a key included.
func ParseCACert(data []byte) ([][]byte, error) {
	var certs [][]byte
	for rest := data; ; {
		block, next := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = next
		switch {
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, errors.New("holds a private key: give the CA's certificates only (PEM), never a key")
		case block.Type != "CERTIFICATE":
			return nil, errors.New("holds a PEM block that is not a certificate: give the CA's certificates only")
		case len(block.Headers) > 0:
			return nil, errors.New("holds a certificate block with headers, which TLS clients do not read")
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, errors.New("holds a certificate that does not parse")
		}
		certs = append(certs, block.Bytes)
	}
	switch {
	case len(certs) == 0:
		return nil, errors.New("holds no PEM certificate: give the CA's certificates in PEM (-----BEGIN CERTIFICATE-----), not DER or a key")
	case bytes.Count(data, []byte("-----BEGIN ")) != len(certs):
		// pem.Decode skips a block it cannot decode (bad base64, no END
		// line), as every reader of the bundle would.
		return nil, errors.New("holds a PEM block that does not decode")
	}
	return certs, nil
}
