package registries

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
)

// checkCACert checks a caCert the way everything after the load reads
// it, so that they all read the same certificates: regcred's own
// connections (package check: crypto/x509's AppendCertsFromPEM, which
// takes the CERTIFICATE blocks without headers that parse) and the nodes
// (package nodetrust: the CERTIFICATE blocks that parse, the rest left
// out). A caCert must hold at least one certificate and every PEM block
// in it must be one of those, so that nothing is silently dropped and
// nothing else (a private key pasted with the certificate) is kept. Text
// around the blocks is allowed, as `openssl x509 -text` writes it.
//
// The errors never quote the content: a caCert that is not a certificate
// may be anything, a key included.
func checkCACert(data []byte) error {
	certs := 0
	for rest := data; ; {
		block, next := pem.Decode(rest)
		if block == nil {
			break
		}
		rest = next
		switch {
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return errors.New("holds a private key: give the CA's certificates only (PEM), never a key")
		case block.Type != "CERTIFICATE":
			return errors.New("holds a PEM block that is not a certificate: give the CA's certificates only")
		case len(block.Headers) > 0:
			return errors.New("holds a certificate block with headers, which TLS clients do not read")
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return errors.New("holds a certificate that does not parse")
		}
		certs++
	}
	switch {
	case certs == 0:
		return errors.New("holds no PEM certificate: give the CA's certificates in PEM (-----BEGIN CERTIFICATE-----), not DER or a key")
	case bytes.Count(data, []byte("-----BEGIN ")) != certs:
		// pem.Decode skips a block it cannot decode (bad base64, no END
		// line), as every reader of the bundle would.
		return errors.New("holds a PEM block that does not decode")
	}
	return nil
}
