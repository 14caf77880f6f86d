package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/regcred/regcred/pkg/certgen"
)

// apiServerNames are the names a Pod's client may use for the API server
// besides an IP address: those of the kubernetes Service.
var apiServerNames = []string{
	"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// writeAPIServerCerts fills dir, the API server's certificate directory,
// the way envtest would, except that the serving certificate is signed by
// a CA of the test bed and covers ips as well as loopback: envtest's
// covers 127.0.0.1 only, and a Pod reaches the API server at its node's
// address. It writes apiserver.crt and .key and the ServiceAccount
// token signing key (sa-signer.key, and sa-signer.crt, its public key),
// and returns the CA, PEM: the CA of every kubeconfig envtest writes, and
// so of the kube-root-ca.crt ConfigMap that Pods trust.
func writeAPIServerCerts(dir string, ips []string) ([]byte, error) {
	ca, err := certgen.NewCA("regcred-testbed-apiserver-ca", 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	hosts := append(append([]string{"127.0.0.1"}, ips...), apiServerNames...)
	pair, err := ca.Issue(hosts, 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := pair.Write(dir, "apiserver.crt", "apiserver.key"); err != nil {
		return nil, fmt.Errorf("API server certificate in %s: %w", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	private, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	public, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa-signer.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: private}), 0o600); err != nil {
		return nil, fmt.Errorf("ServiceAccount signing key in %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa-signer.crt"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public}), 0o600); err != nil {
		return nil, fmt.Errorf("ServiceAccount public key in %s: %w", dir, err)
	}
	return ca.CertPEM, nil
}
