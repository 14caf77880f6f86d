package check

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/image"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
)

func TestParseChallenge(t *testing.T) {
	s, p := parseChallenge(`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"`)
	assert.Equal(t, "Bearer", s)
	assert.Equal(t, map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:a/b:pull"}, p)
	s, p = parseChallenge(`Basic realm="Registry Realm"`)
	assert.Equal(t, "Basic", s)
	assert.Equal(t, "Registry Realm", p["realm"])
	s, p = parseChallenge(`Bearer realm=https://x/token, service=x`)
	assert.Equal(t, "Bearer", s)
	assert.Equal(t, "https://x/token", p["realm"])
	assert.Equal(t, "x", p["service"])
}

func TestBearerLogin(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			u, p, ok := r.BasicAuth()
			if !ok || u != "robot" || p != "s3cret" || r.URL.Query().Get("service") != "reg" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"token":"tok-123"}`))
		case "/v2/":
			if r.Header.Get("Authorization") == "Bearer tok-123" {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="reg"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	host := strings.TrimPrefix(srv.URL, "https://")
	reg := func(pass string) *registries.Registry {
		return &registries.Registry{
			Name: "r", URL: host, Location: image.Location{Host: host}, Type: registrytype.Other(),
			Connection: config.SecureWithCA, CACert: ca,
			Provider: credentials.Static{Username: "robot", Password: pass},
		}
	}
	res := Login(t.Context(), reg("s3cret"))
	assert.True(t, res.OK, res.Message)
	assert.Positive(t, res.Duration, "the result carries how long the check took")
	assert.Equal(t, `logged in as "robot" with a bearer token from `+srv.URL+"/token", res.Message)

	res = Login(t.Context(), reg("wrong-pass"))
	assert.False(t, res.OK)
	assert.Equal(t, `credentials of user "robot" rejected: the token service `+srv.URL+`/token answered HTTP 401`, res.Message)
	assert.NotContains(t, res.Message, "wrong-pass")

	secure := reg("s3cret")
	secure.Connection, secure.CACert = config.Secure, nil
	res = Login(t.Context(), secure)
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, "TLS: the certificate of "+host+" (the registry) is not signed by a trusted authority (connection secure verifies against the system roots")

	res = Login(t.Context(), &registries.Registry{Name: "mine", SecretName: "regcred"})
	assert.True(t, res.Skipped)
}

// plainRegistry is a registry over plain HTTP (connection insecure, an
// http:// URL) whose /v2/ answers h.
func plainRegistry(t *testing.T, h http.HandlerFunc) (*httptest.Server, func(user, pass string) *registries.Registry) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	return srv, func(user, pass string) *registries.Registry {
		return &registries.Registry{
			Name: "r", URL: srv.URL, Location: image.Location{Host: host}, Type: registrytype.Other(),
			PlainHTTP: true, Connection: config.Insecure, Mode: config.RegistryCredentials,
			Provider: credentials.Static{Username: user, Password: pass},
		}
	}
}

// basicOnly answers /v2/ only with the basic credentials robot:s3cret.
func basicOnly(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); ok && u == "robot" && p == "s3cret" {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
	w.WriteHeader(http.StatusUnauthorized)
}

// A registry that speaks plain HTTP under a URL without http:// is
// reachable by regcred (connection insecure), but not by the nodes: node
// trust then makes containerd speak TLS to it (server https://…,
// skip_verify). The check fails and says how to write the URL.
func TestLoginPlainHTTPNeedsAnHTTPURL(t *testing.T) {
	srv, reg := plainRegistry(t, basicOnly)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, mode := range []config.ConnectionMode{config.Insecure, config.Secure} {
		r := reg("robot", "s3cret")
		r.URL, r.PlainHTTP, r.Connection = host, false, mode
		res := Login(t.Context(), r)
		assert.False(t, res.OK, mode)
		assert.Contains(t, res.Message, host+" speaks plain HTTP, not HTTPS: write the registry's url as \"http://"+host+"\"", mode)
		assert.NotContains(t, res.Message, "s3cret")
	}
	r := reg("robot", "s3cret")
	r.URL, r.PlainHTTP = "https://"+host+"/team", false
	assert.Contains(t, Login(t.Context(), r).Message, `write the registry's url as "http://`+host+`/team" (with connection: insecure, a url without http:// means TLS without verification`)

	res := Login(t.Context(), reg("robot", "s3cret"))
	assert.True(t, res.OK, res.Message)
	assert.Equal(t, `logged in as "robot" with basic auth`, res.Message)
}

// tlsServer serves h over TLS with a certificate of ca for 127.0.0.1 and
// localhost.
func tlsServer(t *testing.T, ca *certgen.CA, h http.Handler) *httptest.Server {
	t.Helper()
	pair, err := ca.Issue([]string{"127.0.0.1", "localhost"}, time.Hour)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// secure-with-ca trusts the registry's CA on top of the system roots, as
// containerd does: a token service with a publicly trusted certificate
// stays trusted.
func TestTransportAddsTheCAToTheSystemRoots(t *testing.T) {
	ca, err := certgen.NewCA("registry", time.Hour)
	require.NoError(t, err)
	tr, err := Transport(&registries.Registry{Connection: config.SecureWithCA, CACert: ca.CertPEM})
	require.NoError(t, err)
	want, err := x509.SystemCertPool()
	if err != nil {
		want = x509.NewCertPool()
	}
	want.AddCert(ca.Cert)
	assert.True(t, want.Equal(tr.TLSClientConfig.RootCAs), "the system roots and the registry's CA")

	_, err = Transport(&registries.Registry{Connection: config.SecureWithCA, CACert: []byte("no PEM")})
	assert.ErrorContains(t, err, "caCert holds no PEM certificate")
}

// A TLS failure names the host that failed: the token service's, not the
// registry's, when the token service's certificate is not trusted.
func TestLoginTLSErrorNamesTheHost(t *testing.T) {
	regCA, err := certgen.NewCA("registry", time.Hour)
	require.NoError(t, err)
	otherCA, err := certgen.NewCA("other", time.Hour)
	require.NoError(t, err)
	auth := tlsServer(t, otherCA, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"token":"t"}`)) }))
	authHost := strings.TrimPrefix(auth.URL, "https://")
	reg := tlsServer(t, regCA, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+auth.URL+`/token",service="reg"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	host := strings.TrimPrefix(reg.URL, "https://")
	r := &registries.Registry{
		Name: "r", URL: host, Location: image.Location{Host: host}, Type: registrytype.Other(),
		Connection: config.SecureWithCA, CACert: regCA.CertPEM, Mode: config.RegistryCredentials,
		Provider: credentials.Static{Username: "robot", Password: "s3cret"},
	}
	res := Login(t.Context(), r)
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, "TLS: the certificate of "+authHost+" (the token service) is signed neither by the caCert of connection secure-with-ca nor by a system root")
	assert.NotContains(t, res.Message, "s3cret")

	r.CACert = otherCA.CertPEM
	res = Login(t.Context(), r)
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, "TLS: the certificate of "+host+" (the registry) is signed neither by the caCert")
}

// The credentials go to a plain-HTTP token service only when the registry
// allows plain HTTP (connection insecure).
func TestLoginRefusesAPlainHTTPRealm(t *testing.T) {
	var asked atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "robot" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"token":"tok-123"}`))
	}))
	defer plain.Close()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer tok-123" {
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+plain.URL+`/token?x=1",service="reg"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv := httptest.NewTLSServer(handler)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	r := &registries.Registry{
		Name: "r", URL: host, Location: image.Location{Host: host}, Type: registrytype.Other(),
		Connection: config.SecureWithCA, CACert: ca, Mode: config.RegistryCredentials,
		Provider: credentials.Static{Username: "robot", Password: "s3cret"},
	}
	res := Login(t.Context(), r)
	assert.False(t, res.OK)
	assert.Equal(t, "the token service "+plain.URL+"/token is plain HTTP: regcred does not send the credentials of a registry with connection secure-with-ca over plain HTTP", res.Message)
	assert.Zero(t, asked.Load(), "no credential went over plain HTTP")

	r.Connection, r.CACert = config.Insecure, nil
	res = Login(t.Context(), r)
	assert.True(t, res.OK, res.Message)
	assert.Equal(t, int32(1), asked.Load())

	_, plainReg := plainRegistry(t, handler)
	res = Login(t.Context(), plainReg("robot", "s3cret"))
	assert.True(t, res.OK, res.Message)
}

// Redirects are followed as Go's client follows them (at most 5), never
// from https to plain HTTP unless the connection allows it; a redirect
// left is reported as one, not as rejected credentials.
func TestLoginFollowsRedirects(t *testing.T) {
	var plainAsked atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		plainAsked.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer plain.Close()
	var realm string // the path of the realm /v2/ names
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token": // moved
			http.Redirect(w, r, "/oauth/token?"+r.URL.RawQuery, http.StatusMovedPermanently)
		case "/loop":
			http.Redirect(w, r, "/loop?n=x", http.StatusFound)
		case "/downgrade":
			http.Redirect(w, r, plain.URL+"/token?sig=x", http.StatusFound)
		case "/oauth/token":
			if u, p, ok := r.BasicAuth(); !ok || u != "robot" || p != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"token":"tok-123"}`))
		case "/v2/":
			if r.Header.Get("Authorization") == "Bearer tok-123" {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+realm+`",service="reg"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	login := func(path string, mode config.ConnectionMode) Result {
		realm = path
		r := &registries.Registry{
			Name: "r", URL: host, Location: image.Location{Host: host}, Type: registrytype.Other(),
			Connection: mode, Mode: config.RegistryCredentials,
			Provider: credentials.Static{Username: "robot", Password: "s3cret"},
		}
		if mode == config.SecureWithCA {
			r.CACert = ca
		}
		return Login(t.Context(), r)
	}

	res := login("/token", config.SecureWithCA)
	assert.True(t, res.OK, res.Message)
	assert.Equal(t, `logged in as "robot" with a bearer token from `+srv.URL+"/token", res.Message)

	res = login("/loop", config.SecureWithCA)
	assert.False(t, res.OK)
	assert.Equal(t, "the token service "+srv.URL+"/loop: still redirected after 5 redirects (HTTP 302 to "+srv.URL+"/loop)", res.Message)

	res = login("/downgrade", config.SecureWithCA)
	assert.False(t, res.OK)
	assert.Equal(t, "the token service "+srv.URL+"/downgrade: redirected to plain HTTP ("+plain.URL+"/token); connection secure-with-ca does not allow plain HTTP", res.Message)
	assert.Zero(t, plainAsked.Load(), "no credential went over plain HTTP")

	res = login("/downgrade", config.Insecure)
	assert.False(t, res.OK)
	assert.Equal(t, `credentials of user "robot" rejected: the token service `+srv.URL+`/downgrade answered HTTP 401`, res.Message)
	assert.Equal(t, int32(1), plainAsked.Load(), "connection insecure allows plain HTTP")

	// A 3xx that Go's client does not follow (no Location) is a redirect,
	// not a rejection.
	_, reg := plainRegistry(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusFound) })
	res = Login(t.Context(), reg("robot", "s3cret"))
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, "answered HTTP 302 without a Location")

	var loop *httptest.Server
	loop, reg = plainRegistry(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/v2/", http.StatusMovedPermanently) })
	res = Login(t.Context(), reg("robot", "s3cret"))
	assert.False(t, res.OK)
	assert.Equal(t, "GET "+loop.URL+"/v2/: still redirected after 5 redirects (HTTP 301 to "+loop.URL+"/v2/)", res.Message)
}

// As Go's client does, a redirect keeps the credentials on the same host
// (or a subdomain) and drops them for another.
func TestLoginRedirectDropsCredentialsForAnotherHost(t *testing.T) {
	var gotAuth atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, ok := r.BasicAuth()
		gotAuth.Store(ok)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer other.Close()
	// localhost is another host name than 127.0.0.1, the registry's.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	var srv *httptest.Server
	srv, reg := plainRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			http.Redirect(w, r, otherURL+"/token", http.StatusTemporaryRedirect)
		case "/v2/":
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	res := Login(t.Context(), reg("robot", "s3cret"))
	assert.False(t, res.OK)
	assert.Equal(t, `credentials of user "robot" rejected: the token service `+srv.URL+`/token answered HTTP 401`, res.Message)
	assert.False(t, gotAuth.Load(), "the credentials are not sent to another host")
}

// A /v2/ that answers without credentials (a registry that allows
// anonymous pulls) is asked again with the credentials sent up front.
func TestLoginAnonymousRegistry(t *testing.T) {
	anonymous := func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			return // anonymous access
		}
		basicOnly(w, r)
	}
	_, reg := plainRegistry(t, anonymous)
	res := Login(t.Context(), reg("robot", "s3cret"))
	assert.True(t, res.OK, res.Message)
	assert.Contains(t, res.Message, `logged in as "robot" with basic auth; the registry also allows anonymous access`)

	res = Login(t.Context(), reg("robot", "wrong-pass"))
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, `credentials of user "robot" rejected`)
	assert.Contains(t, res.Message, "HTTP 401")
	assert.NotContains(t, res.Message, "wrong-pass")

	_, reg = plainRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	res = Login(t.Context(), reg("robot", "s3cret"))
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, `credentials of user "robot" rejected`)
	assert.Contains(t, res.Message, "HTTP 403")

	// A registry that asks for a bearer token once credentials are sent
	// gets one, as docker login would.
	var srv *httptest.Server
	srv, reg = plainRegistry(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			if u, p, ok := r.BasicAuth(); ok && u == "robot" && p == "s3cret" {
				_, _ = w.Write([]byte(`{"access_token":"tok"}`))
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
		case r.Header.Get("Authorization") == "" || r.Header.Get("Authorization") == "Bearer tok":
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	res = Login(t.Context(), reg("robot", "s3cret"))
	assert.True(t, res.OK, res.Message)
	assert.Contains(t, res.Message, `logged in as "robot" with a bearer token from `+srv.URL+`/token; the registry also allows anonymous access`)
	res = Login(t.Context(), reg("robot", "wrong-pass"))
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, `credentials of user "robot" rejected: the token service`)
}

// A registry-credentials registry without a provider (an ECR registry in
// a program without a token minter) cannot be checked; it is not the
// admin's secret.
func TestLoginWithoutProvider(t *testing.T) {
	res := Login(t.Context(), &registries.Registry{Name: "ecr", Type: registrytype.ECR(nil), Mode: config.RegistryCredentials, SecretName: "regcred-ecr"})
	assert.False(t, res.OK)
	assert.False(t, res.Skipped)
	assert.Equal(t, "cannot check: this program builds no credentials for a registry of type ecr", res.Message)

	res = Login(t.Context(), &registries.Registry{Name: "mine", Mode: config.ImagePullSecret, SecretName: "regcred"})
	assert.True(t, res.Skipped)
	assert.Equal(t, `no credentials to check: regcred injects the admin's secret "regcred"`, res.Message)

	// Skipped too when a field that is no credential, or a glob's, comes
	// from a Secret not read: there is nothing to log in with either way.
	res = Login(t.Context(), &registries.Registry{Name: "mine", Mode: config.ImagePullSecret, SecretName: "regcred", Unresolved: []string{"caCert"}})
	assert.True(t, res.Skipped, res.Message)
	loc, err := image.ParseLocation("*.example.com")
	require.NoError(t, err)
	res = Login(t.Context(), &registries.Registry{Name: "any", Location: loc, Mode: config.RegistryCredentials, Unresolved: []string{"password"}})
	assert.True(t, res.Skipped, res.Message)
	// Not when the admin's registry has credentials not read: those
	// would be checked.
	res = Login(t.Context(), &registries.Registry{Name: "mine", Mode: config.ImagePullSecret, SecretName: "regcred", Unresolved: []string{"password"}})
	assert.False(t, res.Skipped)
	assert.Contains(t, res.Message, "cannot check: password comes from a Secret")
}

// A redirect's query may carry a signature: a message about a request
// that failed to connect names its URL without it.
func TestLoginConnErrorOmitsTheQuery(t *testing.T) {
	otherCA, _ := certgen.NewCA("other", time.Hour)
	other := tlsServer(t, otherCA, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})) // a cert regcred does not trust
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			http.Redirect(w, r, other.URL+"/signed?X-Amz-Signature=SIGSECRET123", http.StatusFound)
		case "/v2/":
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="reg"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	r := &registries.Registry{Name: "r", URL: host, Location: image.Location{Host: host}, Type: registrytype.Other(),
		Connection: config.SecureWithCA, CACert: ca, Mode: config.RegistryCredentials,
		Provider: credentials.Static{Username: "robot", Password: "s3cret"}}
	res := Login(t.Context(), r)
	assert.Contains(t, res.Message, "/signed")
	assert.NotContains(t, res.Message, "SIGSECRET123")
	assert.NotContains(t, res.Message, "X-Amz-Signature")
}
