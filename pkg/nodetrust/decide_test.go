package nodetrust

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/registries"
)

func newCA(t *testing.T, name string) []byte {
	t.Helper()
	ca, err := certgen.NewCA(name, time.Hour)
	require.NoError(t, err)
	return ca.CertPEM
}

// reg is a compiled registry as Decide reads it; its caCert's
// certificates as the load reads them (none where it refuses them).
func reg(t *testing.T, name, url string, conn config.ConnectionMode, ca []byte) *registries.Registry {
	t.Helper()
	loc, err := image.ParseLocation(url)
	require.NoError(t, err)
	certs, _ := registries.ParseCACert(ca)
	return &registries.Registry{Name: name, Location: loc, URL: url, PlainHTTP: strings.HasPrefix(url, "http://"), Connection: conn, CACert: ca, CACerts: certs}
}

func TestDecide(t *testing.T) {
	caA, caB := newCA(t, "a"), newCA(t, "b")
	for _, tc := range []struct {
		name  string
		regs  func() []*registries.Registry
		hosts []Host
		notes []string
	}{
		{
			name:  "nothing to trust",
			regs:  func() []*registries.Registry { return nil },
			hosts: nil,
		},
		{
			name: "secure registries ask nodes for nothing",
			regs: func() []*registries.Registry {
				return []*registries.Registry{reg(t, "hub", "docker.io", config.Secure, nil), reg(t, "q", "quay.io", config.Secure, nil)}
			},
		},
		{
			name: "each connection mode",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "harbor", "harbor.internal:8443/team-a", config.SecureWithCA, caA),
					reg(t, "plain", "http://reg.local:5000", config.Insecure, nil),
					reg(t, "selfsigned", "https://lab.example.com", config.Insecure, nil),
				}
			},
			hosts: []Host{
				{Host: "harbor.internal:8443", CA: string(caA), Registries: []string{"harbor"}},
				{Host: "lab.example.com", SkipVerify: true, Registries: []string{"selfsigned"}},
				{Host: "reg.local:5000", PlainHTTP: true, Registries: []string{"plain"}},
			},
		},
		{
			name: "path prefixes of one host: CAs unioned, once each",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "team-a", "harbor:8443/team-a", config.SecureWithCA, caA),
					reg(t, "team-b", "harbor:8443/team-b", config.SecureWithCA, append(append([]byte{}, caB...), caA...)),
					reg(t, "team-c", "harbor:8443/team-c", config.Secure, nil),
				}
			},
			hosts: []Host{{Host: "harbor:8443", CA: string(caA) + string(caB), Registries: []string{"team-a", "team-b"}}},
		},
		{
			name: "a glob host is left out, with a note",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "wild", "*.example.com", config.SecureWithCA, caA),
					reg(t, "wild-secure", "*.example.org", config.Secure, nil),
				}
			},
			notes: []string{`registry "wild": host *.example.com is a glob, which cannot be configured per host on a node: its connection secure-with-ca is not applied to nodes (declare each host)`},
		},
		{
			name: "insecure and a CA on one host: verification skipped, with a note",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "a", "harbor:8443/a", config.SecureWithCA, caA),
					reg(t, "b", "harbor:8443/b", config.Insecure, nil),
				}
			},
			hosts: []Host{{Host: "harbor:8443", SkipVerify: true, Registries: []string{"a", "b"}}},
			notes: []string{`host harbor:8443: registries "b" are insecure and "a" verify TLS: nodes skip verification for the host, which lets every one pull; make them agree`},
		},
		{
			name: "insecure and secure on one host: verification skipped, with a note",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "a", "harbor:8443/a", config.Secure, nil),
					reg(t, "b", "harbor:8443/b", config.Insecure, nil),
				}
			},
			hosts: []Host{{Host: "harbor:8443", SkipVerify: true, Registries: []string{"b"}}},
			notes: []string{`host harbor:8443: registries "b" are insecure and "a" verify TLS: nodes skip verification for the host, which lets every one pull; make them agree`},
		},
		{
			name: "plain HTTP and a CA on one host: HTTPS with the CA first, then HTTP",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "a", "harbor:8443/a", config.SecureWithCA, caA),
					reg(t, "b", "http://harbor:8443/b", config.Insecure, nil),
				}
			},
			hosts: []Host{{Host: "harbor:8443", PlainHTTP: true, CA: string(caA), Registries: []string{"a", "b"}}},
			notes: []string{`host harbor:8443: registries "b" use plain HTTP (http:// URL) and "a" TLS: nodes use HTTPS verified against the CA first, then plain HTTP; make them agree`},
		},
		{
			name: "plain HTTP and skipped verification on one host",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "a", "https://harbor:8443/a", config.Insecure, nil),
					reg(t, "b", "http://harbor:8443/b", config.Insecure, nil),
				}
			},
			hosts: []Host{{Host: "harbor:8443", PlainHTTP: true, SkipVerify: true, Registries: []string{"a", "b"}}},
			notes: []string{`host harbor:8443: registries "b" use plain HTTP (http:// URL) and "a" TLS: nodes use HTTPS without verification first, then plain HTTP; make them agree`},
		},
		{
			name: "plain HTTP and secure on one host: plain HTTP only",
			regs: func() []*registries.Registry {
				return []*registries.Registry{
					reg(t, "a", "harbor:8443/a", config.Secure, nil),
					reg(t, "b", "http://harbor:8443/b", config.Insecure, nil),
				}
			},
			hosts: []Host{{Host: "harbor:8443", PlainHTTP: true, Registries: []string{"b"}}},
			notes: []string{`host harbor:8443: registries "b" use plain HTTP (http:// URL) and "a" TLS: nodes use plain HTTP only (nothing configures TLS for the host); make them agree`},
		},
		{
			name: "a caCert without a certificate: nothing for its host",
			regs: func() []*registries.Registry {
				return []*registries.Registry{reg(t, "h", "harbor:8443", config.SecureWithCA, []byte("not PEM"))}
			},
			notes: []string{`registry "h": caCert holds no certificate: nodes are not told to trust harbor:8443`},
		},
		{
			name: "Docker Hub's names are one host",
			regs: func() []*registries.Registry {
				return []*registries.Registry{reg(t, "hub", "https://index.docker.io/v1/", config.Insecure, nil)}
			},
			hosts: []Host{{Host: "docker.io", SkipVerify: true, Registries: []string{"hub"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.regs())
			assert.Equal(t, tc.hosts, got.Hosts)
			assert.Equal(t, tc.notes, got.Notes)
			for _, h := range got.Hosts {
				assert.NoError(t, h.Validate(), "every host decided is valid as the agent checks it")
			}
		})
	}
}

// Decide reads what the config loader compiled: the connection, the CA
// and an http:// URL.
func TestDecideFromALoadedConfig(t *testing.T) {
	ca := newCA(t, "harbor")
	var indented strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(ca)), "\n") {
		indented.WriteString("      " + l + "\n")
	}
	set, err := registries.Load(t.Context(), []byte(`apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- name: harbor
  type: other
  url: harbor.internal:8443/team-a
  connection: secure-with-ca
  caCert:
    value: |
`+indented.String()+`  username: {value: u}
  password: {value: p}
- name: lab
  type: other
  url: http://10.0.0.5:5000
  connection: insecure
  username: {value: u}
  password: {value: p}
`), registries.Options{StoredIn: config.InSecret})
	require.NoError(t, err)
	got := Decide(set.Registries)
	assert.Equal(t, []Host{
		{Host: "10.0.0.5:5000", PlainHTTP: true, Registries: []string{"lab"}},
		{Host: "harbor.internal:8443", CA: string(ca), Registries: []string{"harbor"}},
	}, got.Hosts)
	assert.Empty(t, got.Notes)
}
