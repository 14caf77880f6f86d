package ociimage

import (
	"bytes"
	"encoding/pem"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// CABundlePath is where the image keeps its trusted CA roots: the first
// file Go, OpenSSL and most other tools look for on Linux.
const CABundlePath = "/etc/ssl/certs/ca-certificates.crt"

// CABundle returns, as PEM, the roots of the bundle the regcred binary
// embeds, and trusts where a system offers no root of its own
// (golang.org/x/crypto/x509roots/fallback/bundle, Mozilla's NSS store, at
// the version go.mod pins; see cmd/regcred).
//
// A root the bundle trusts only with a constraint (NSS "distrust after"
// dates) is left out: a PEM file cannot carry the constraint, and such a
// root is on its way out, so it is better missing than trusted for
// certificates issued after its date.
func CABundle() []byte {
	var buf bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		// Writing PEM to a bytes.Buffer cannot fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	return buf.Bytes()
}
