package ociimage

import (
	"debug/elf"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newRegistry returns an in-process registry; with a user and password it
// asks for them, as a private registry does.
func newRegistry(user, password string) http.Handler {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user == "" {
		return reg
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
}

// dockerConfig points DOCKER_CONFIG at a config that holds auths, so the
// default keychain reads it and not the user's.
func dockerConfig(t *testing.T, auths map[string]string) {
	t.Helper()
	dir := t.TempDir()
	var entries []string
	for host, userPass := range auths {
		entries = append(entries, `"`+host+`":{"auth":"`+base64.StdEncoding.EncodeToString([]byte(userPass))+`"}`)
	}
	config := `{"auths":{` + strings.Join(entries, ",") + `}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600))
	t.Setenv("DOCKER_CONFIG", dir)
}

// pullAndCompare pulls the index back by digest and checks it is the one
// pushed, image by image and layer by layer.
func pullAndCompare(t *testing.T, pushed v1.ImageIndex, at name.Digest, opts ...remote.Option) {
	t.Helper()
	pulled, err := remote.Index(at, append(opts, remote.WithContext(t.Context()))...)
	require.NoError(t, err)
	assert.Equal(t, digest(t, pushed), digest(t, pulled))
	im, err := pulled.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	for _, d := range im.Manifests {
		img, err := pulled.Image(d.Digest)
		require.NoError(t, err)
		want, err := pushed.Image(d.Digest)
		require.NoError(t, err)
		gotLayers, err := img.Layers()
		require.NoError(t, err)
		wantLayers, err := want.Layers()
		require.NoError(t, err)
		require.Len(t, gotLayers, 1)
		assert.Equal(t, layerEntries(t, wantLayers[0]), layerEntries(t, gotLayers[0]), d.Platform.String())
	}
}

func TestPushThenPullByDigest(t *testing.T) {
	dockerConfig(t, nil)
	srv := httptest.NewServer(newRegistry("", ""))
	t.Cleanup(srv.Close)
	idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))
	host := strings.TrimPrefix(srv.URL, "http://")

	at, err := Push(t.Context(), idx, host+"/regcred/regcred:0.1.0", PushOptions{PlainHTTP: true})
	require.NoError(t, err)
	assert.Equal(t, host+"/regcred/regcred@"+digest(t, idx).String(), at.String())
	pullAndCompare(t, idx, at)

	tag, err := name.NewTag(host + "/regcred/regcred:0.1.0")
	require.NoError(t, err)
	byTag, err := remote.Index(tag, remote.WithContext(t.Context()))
	require.NoError(t, err)
	assert.Equal(t, digest(t, idx), digest(t, byTag), "the tag points at the index")
}

func TestPushUsesTheDockerConfigCredentials(t *testing.T) {
	srv := httptest.NewServer(newRegistry("ci", "s3cret"))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))

	dockerConfig(t, nil)
	_, err := Push(t.Context(), idx, host+"/regcred/regcred:0.1.0", PushOptions{})
	require.Error(t, err, "no credentials")
	assert.Contains(t, err.Error(), "401")

	dockerConfig(t, map[string]string{host: "ci:s3cret"})
	at, err := Push(t.Context(), idx, host+"/regcred/regcred:0.1.0", PushOptions{})
	require.NoError(t, err)
	pullAndCompare(t, idx, at, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"}))
}

func TestPushTrustsTheCAFile(t *testing.T) {
	dockerConfig(t, nil)
	srv := httptest.NewUnstartedServer(newRegistry("", ""))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))

	_, err := Push(t.Context(), idx, host+"/regcred/regcred:0.1.0", PushOptions{})
	require.Error(t, err, "the registry's CA is not trusted")
	assert.Contains(t, err.Error(), "certificate")

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	at, err := Push(t.Context(), idx, host+"/regcred/regcred:0.1.0", PushOptions{CAFile: caFile})
	require.NoError(t, err)
	pullAndCompare(t, idx, at, remote.WithTransport(srv.Client().Transport))
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		image      string
		plainHTTP  bool
		wantScheme string
		wantErr    string
	}{
		{image: "registry.example:5000/regcred:0.1.0", wantScheme: "https"},
		{image: "registry.example:5000/regcred:0.1.0", plainHTTP: true, wantScheme: "http"},
		{image: "ghcr.io/regcred/regcred@sha256:" + strings.Repeat("a", 64), wantScheme: "https"},
		{image: "regcred:0.1.0", wantErr: "could not parse reference"},
		{image: "ghcr.io/regcred/regcred", wantErr: "could not parse reference"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			ref, err := parseReference(tt.image, tt.plainHTTP)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), `image "`+tt.image+`": want registry/repository:tag: `)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantScheme, ref.Context().Scheme())
		})
	}
}

func TestTransportCAFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))

	_, err := transport(filepath.Join(dir, "missing.pem"))
	assert.ErrorContains(t, err, "CA file: open ")
	_, err = transport(notPEM)
	assert.EqualError(t, err, "CA file "+notPEM+": no PEM certificate")
}

// checkGuard sends a request to each URL through a transport guard made
// over a base that counts what reaches it: allowed ones reach it once,
// the others are refused with an error that contains refusal, nothing sent.
func checkGuard(t *testing.T, guard func(http.RoundTripper) http.RoundTripper, urls map[string]bool, refusal string) {
	t.Helper()
	called := 0
	g := guard(roundTripFunc(func(*http.Request) (*http.Response, error) {
		called++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	}))
	for url, allowed := range urls {
		called = 0
		r, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := g.RoundTrip(r)
		if allowed {
			require.NoError(t, err, url)
			_ = resp.Body.Close()
			assert.Equal(t, 1, called, url)
		} else {
			require.Error(t, err, url)
			assert.Contains(t, err.Error(), refusal, url)
			assert.Zero(t, called, "%s: nothing sent", url)
		}
	}
}

// Plain HTTP goes to loopback only, unless allowed: go-containerregistry
// falls back to it for private addresses too, and the Docker config's
// credentials would follow.
func TestPushRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	checkGuard(t, func(b http.RoundTripper) http.RoundTripper { return httpsOnly{b} }, map[string]bool{
		"http://10.0.0.5:5000/v2/":      false,
		"http://192.168.1.2/v2/":        false,
		"http://registry.example/v2/":   false,
		"https://10.0.0.5:5000/v2/":     true,
		"http://127.0.0.1:5000/v2/":     true,
		"http://[::1]:5000/v2/":         true,
		"http://localhost:5000/v2/":     true,
		"https://registry.example/v2/x": true,
	}, "--plain-http")
}

// With --plain-http, nothing goes over HTTPS: go-containerregistry would
// try it first and fall back to plain HTTP when the certificate does not
// verify, which one on the path could then have it do.
func TestPlainHTTPNeverTriesHTTPS(t *testing.T) {
	checkGuard(t, func(b http.RoundTripper) http.RoundTripper { return httpOnly{b} }, map[string]bool{
		"https://10.0.0.5:5000/v2/":  false,
		"https://127.0.0.1:5000/v2/": false,
		"http://10.0.0.5:5000/v2/":   true,
		"http://127.0.0.1:5000/v2/":  true,
	}, "--plain-http speaks plain HTTP only")

	// A registry that speaks only HTTPS is not reached with --plain-http.
	dockerConfig(t, nil)
	srv := httptest.NewUnstartedServer(newRegistry("", ""))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))
	_, err := Push(t.Context(), idx, strings.TrimPrefix(srv.URL, "https://")+"/regcred/regcred:0.1.0", PushOptions{PlainHTTP: true, CAFile: caFile})
	require.Error(t, err)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
