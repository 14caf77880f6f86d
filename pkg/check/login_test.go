package check

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

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
	assert.Contains(t, res.Message, "TLS: the registry's certificate is not signed by a trusted authority (connection secure verifies against the system roots")

	res = Login(t.Context(), &registries.Registry{Name: "mine", SecretName: "regcred"})
	assert.True(t, res.Skipped)
}
