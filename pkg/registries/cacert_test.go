package registries

import (
	"encoding/base64"
	"encoding/pem"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/config"
)

// requireNoContent stops the test if text quotes any of parts, without
// printing text.
func requireNoContent(t *testing.T, text string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if p != "" && strings.Contains(strings.ToLower(text), strings.ToLower(p)) {
			t.Fatalf("the error quotes content it was given (%d characters, not shown)", len(p))
		}
	}
}

// pemBody returns the base64 lines of a PEM block, as they appear in it.
func pemBody(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// caConfig is a registry with connection secure-with-ca; its caCert comes
// from the Secret "h", key ca.crt.
const caConfig = "- {name: h, type: other, url: 'harbor.example.com:8443', connection: secure-with-ca, username: {value: u}, password: {value: p}, caCert: {secretKeyRef: {name: h, key: ca.crt}}}"

// A caCert is read by regcred's own checks (package check) and published
// to the nodes (package nodetrust); both read its CERTIFICATE blocks only.
// At load it must therefore be PEM certificates and nothing else, or the
// config is refused, naming the registry and the field but never the
// content.
func TestLoadChecksTheCACert(t *testing.T) {
	ca, err := certgen.NewCA("harbor", time.Hour)
	require.NoError(t, err)
	other, err := certgen.NewCA("other", time.Hour)
	require.NoError(t, err)
	pair, err := ca.Issue([]string{"harbor.example.com"}, time.Hour)
	require.NoError(t, err)
	der, _ := pem.Decode(ca.CertPEM)
	junk := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("S3cretNotACertificate")})
	headers := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der.Bytes})

	for _, tc := range []struct {
		name string
		ca   string
		want string // empty: loads
	}{
		{"a certificate", string(ca.CertPEM), ""},
		{"a bundle", string(ca.CertPEM) + string(other.CertPEM), ""},
		{"text around the blocks, as openssl x509 -text writes it", "Certificate:\n    Data: ...\n" + string(ca.CertPEM) + "\n", ""},
		{"a private key", string(pair.KeyPEM), "holds a private key"},
		{"a certificate with its key", string(ca.CertPEM) + string(pair.KeyPEM), "holds a private key"},
		{"DER", string(der.Bytes), "holds no PEM certificate"},
		{"DER in base64", base64.StdEncoding.EncodeToString(der.Bytes), "holds no PEM certificate"},
		{"garbage", "S3cretGarbage", "holds no PEM certificate"},
		{"a block that does not parse", string(junk), "holds a certificate that does not parse"},
		{"a broken block between good ones", string(ca.CertPEM) + "-----BEGIN CERTIFICATE-----\nS3cret!!\n-----END CERTIFICATE-----\n" + string(other.CertPEM), "holds a PEM block that does not decode"},
		{"another kind of block", string(ca.CertPEM) + "-----BEGIN S3CRET THING-----\nAAAA\n-----END S3CRET THING-----\n", "holds a PEM block that is not a certificate"},
		{"a certificate with headers", string(headers), "holds a certificate block with headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// From a Secret, and inline in a config stored in a Secret.
			inline := strings.Replace(caConfig, "caCert: {secretKeyRef: {name: h, key: ca.crt}}", "caCert: {value: "+quoted(t, tc.ca)+"}", 1)
			for _, load := range []func() (*Set, error){
				func() (*Set, error) {
					return Load(t.Context(), []byte(cfg(caConfig)), Options{StoredIn: config.InSecret, Secrets: secrets{"h/ca.crt": tc.ca}})
				},
				func() (*Set, error) {
					return Load(t.Context(), []byte(cfg(inline)), Options{StoredIn: config.InSecret})
				},
			} {
				set, err := load()
				if tc.want == "" {
					require.NoError(t, err)
					assert.Equal(t, tc.ca, string(set.Get("h").CACert))
					continue
				}
				require.Error(t, err)
				requireNoContent(t, err.Error(), append(pemBody(pair.KeyPEM), "S3cret", "AAAA")...)
				assert.Contains(t, err.Error(), `registry "h": caCert: `+tc.want)
			}
		})
	}
}

// quoted writes s as a YAML (JSON) string.
// quoted writes s as a YAML double-quoted string, every byte that is not
// printable ASCII escaped: YAML refuses control characters even in quotes,
// and DER holds any byte.
func quoted(t *testing.T, s string) string {
	t.Helper()
	return strconv.QuoteToASCII(s)
}
