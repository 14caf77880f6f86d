// Package webhookcert keeps the webhook's TLS material without
// cert-manager: a CA and a serving certificate it signs, stored in one
// Secret in regcred's namespace, served from memory, renewed before they
// expire, and the CA put in the caBundle of regcred's webhook
// configurations. Every replica runs it: the first to find the Secret
// missing creates it, the others load what it wrote.
//
// A renewed serving certificate is signed by the same CA: the caBundle
// does not change. A renewed CA first joins the bundle next to the old one;
// the serving certificate moves to it only once the keeper has seen the
// caBundle hold it for the time the bundle takes to reach the API servers,
// so no admission ever meets a certificate its caBundle does not trust.
// The same holds when the material is made anew (the Secret deleted or
// unreadable): regcred's CAs the caBundle holds stay in the new bundle,
// every replica sets the caBundle before it serves a certificate, and it
// keeps serving the certificate it had until the new CA has had that time.
package webhookcert

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the Secret, besides tls.crt and tls.key.
const (
	// CABundleKey holds the CAs the webhook's clients must trust: the
	// current CA first, then older ones not yet expired.
	CABundleKey = "ca.crt"
	// CAKeyKey holds the current CA's private key.
	CAKeyKey = "ca.key"
	// CASinceAnnotation records when the current CA joined the bundle.
	CASinceAnnotation = "regcred.io/ca-since"
)

// caNamePrefix begins the common name of every CA regcred makes.
const caNamePrefix = "regcred-webhook-ca-"

// Material is the content of the Secret, parsed.
type Material struct {
	// CAs is the bundle, the current CA first.
	CAs   []*x509.Certificate
	CAKey crypto.Signer
	// CASince is when CAs[0] joined the bundle; zero when the Secret does
	// not say it readably.
	CASince time.Time
	// Cert is the serving certificate; CertPEM and KeyPEM its encoding.
	Cert            *x509.Certificate
	CertPEM, KeyPEM []byte
}

// Parse reads the Secret's data. A missing or unreadable CA or CA key is
// an error that says which: the material is then made anew. A broken
// serving certificate leaves Cert nil, an unreadable ca-since annotation
// CASince zero: the CA is kept, and Decide mends the rest.
func Parse(s *corev1.Secret) (*Material, error) {
	if s == nil {
		return nil, errors.New("no Secret")
	}
	m := &Material{CertPEM: s.Data[corev1.TLSCertKey], KeyPEM: s.Data[corev1.TLSPrivateKeyKey]}
	var err error
	if m.CAs, err = parseCerts(s.Data[CABundleKey]); err != nil {
		return nil, fmt.Errorf("%s: %w", CABundleKey, err)
	}
	if m.CAKey, err = parseKey(s.Data[CAKeyKey]); err != nil {
		return nil, fmt.Errorf("%s: %w", CAKeyKey, err)
	}
	if !samePublicKey(m.CAs[0].PublicKey, m.CAKey.Public()) {
		return nil, fmt.Errorf("%s does not belong to the first CA of %s", CAKeyKey, CABundleKey)
	}
	if since, err := time.Parse(time.RFC3339, s.Annotations[CASinceAnnotation]); err == nil {
		m.CASince = since
	}
	certs, err := parseCerts(m.CertPEM)
	if err != nil {
		// The CA is good: only the serving certificate is made anew.
		m.Cert, m.CertPEM, m.KeyPEM = nil, nil, nil
		return m, nil //nolint:nilerr // a broken serving certificate is reissued
	}
	if _, err := tls.X509KeyPair(m.CertPEM, m.KeyPEM); err != nil {
		m.Cert, m.CertPEM, m.KeyPEM = nil, nil, nil
		return m, nil //nolint:nilerr // as above
	}
	m.Cert = certs[0]
	return m, nil
}

// Data encodes the material as the Secret's data.
func (m *Material) Data() (map[string][]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(m.CAKey)
	if err != nil {
		return nil, err
	}
	var bundle bytes.Buffer
	for _, ca := range m.CAs {
		_ = pem.Encode(&bundle, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	}
	return map[string][]byte{
		corev1.TLSCertKey:       m.CertPEM,
		corev1.TLSPrivateKeyKey: m.KeyPEM,
		CABundleKey:             bundle.Bytes(),
		CAKeyKey:                pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Bundle is the PEM of the CAs, as the Secret's ca.crt holds it.
func (m *Material) Bundle() []byte {
	var b bytes.Buffer
	for _, ca := range m.CAs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	}
	return b.Bytes()
}

// Covers reports whether the serving certificate is for every one of
// hosts: a name given twice, or an IP in another spelling, is one name. A
// certificate for more names covers too: during a rolling update that
// removes a name (regcred.dnsNames), the replicas of both releases accept
// the same certificate, rather than each reissue it for its own names
// after every write of the other's. The name removed goes at the next
// renewal.
func (m *Material) Covers(hosts []string) bool {
	if m.Cert == nil {
		return false
	}
	have := make(map[string]bool, len(m.Cert.DNSNames)+len(m.Cert.IPAddresses))
	for _, n := range m.Cert.DNSNames {
		have["dns:"+n] = true
	}
	for _, ip := range m.Cert.IPAddresses {
		have["ip:"+ip.String()] = true
	}
	for _, h := range uniqueHosts(hosts) {
		k := "dns:" + h
		if net.ParseIP(h) != nil {
			k = "ip:" + h
		}
		if !have[k] {
			return false
		}
	}
	return true
}

// uniqueHosts are hosts as a certificate holds them, each once, in their
// first order: an IP in its canonical form (an IPv4-mapped IPv6 address as
// IPv4, as x509 encodes it), a DNS name as written.
func uniqueHosts(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// SignedByCurrent reports whether the serving certificate is signed by
// the current CA.
func (m *Material) SignedByCurrent() bool {
	return m.Cert != nil && len(m.CAs) > 0 && m.Cert.CheckSignatureFrom(m.CAs[0]) == nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs, nil
}

// certsIn are the certificates of a PEM bundle that parse, as an API
// server reads a caBundle: the rest is skipped.
func certsIn(data []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
			certs = append(certs, c)
		}
	}
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}
