// Package certgen makes TLS material: a self-signed CA and the serving
// certificates it signs. pkg/webhookcert keeps regcred's own with it in a
// cluster; local runs, the demo and the tests use NewCA and Issue.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertPEM is the CA certificate, PEM-encoded (a webhook's caBundle).
	CertPEM []byte
}

// Pair is a certificate and its key, PEM-encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// NewCA creates a CA valid from a minute ago for the given duration.
func NewCA(commonName string, validFor time.Duration) (*CA, error) {
	now := time.Now()
	cert, key, err := SelfSignedCA(commonName, now.Add(-time.Minute), now.Add(validFor))
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}, nil
}

// Issue signs a serving certificate for hosts (DNS names or IP addresses),
// valid from a minute ago for the given duration.
func (ca *CA) Issue(hosts []string, validFor time.Duration) (*Pair, error) {
	now := time.Now()
	_, pair, err := SignServing(hosts, now.Add(-time.Minute), now.Add(validFor), ca.Cert, ca.key)
	return pair, err
}

// SelfSignedCA makes a CA's key and its self-signed certificate, valid
// from notBefore to notAfter.
func SelfSignedCA(commonName string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// SignServing signs, with caCert and caKey, a serving certificate for
// hosts (DNS names or IP addresses; the first is its common name), valid
// from notBefore to notAfter, and returns it parsed and with its new key
// as PEM.
func SignServing(hosts []string, notBefore, notAfter time.Time, caCert *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, *Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return cert, &Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Write stores the pair as dir/certName and dir/keyName, the key readable
// by its owner only, whatever the mode of a file it replaces. Each file
// is replaced whole (written beside it, then renamed over it), the key
// first: a reader of the directory (a certificate watcher) never sees a
// part of one, and sees the new certificate only once its key is there.
func (p *Pair) Write(dir, certName, keyName string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := replace(dir, keyName, p.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	return replace(dir, certName, p.CertPEM, 0o644)
}

// replace writes b to dir/name with mode perm, through a temporary file
// renamed over it.
func replace(dir, name string, b []byte, perm os.FileMode) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
