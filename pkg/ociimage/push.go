package ociimage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOptions say how to reach the registry.
type PushOptions struct {
	// PlainHTTP speaks plain HTTP to the registry, never HTTPS: a test
	// registry. go-containerregistry would try HTTPS first and fall back
	// to plain HTTP on any failure, a certificate that does not verify
	// included, so that one on the path could present a bad certificate
	// and read the credentials in clear; "plain HTTP" says it instead.
	// Without it, plain HTTP goes to loopback only: go-containerregistry
	// falls back to it for private addresses too.
	PlainHTTP bool
	// CAFile is a PEM file of CA certificates trusted besides the system's
	// roots. SSL_CERT_FILE and SSL_CERT_DIR, which Go reads on Linux,
	// choose the system's roots themselves.
	CAFile string
	// Keychain gives the registry credentials; nil means the Docker
	// config's (authn.DefaultKeychain: ~/.docker/config.json, or
	// $DOCKER_CONFIG, and its credential helpers).
	Keychain authn.Keychain
}

// Push pushes idx to image, a reference with an explicit registry and tag
// (registry/repository:tag) or digest, and returns the digest reference
// the index is now at.
func Push(ctx context.Context, idx v1.ImageIndex, image string, o PushOptions) (name.Digest, error) {
	ref, err := parseReference(image, o.PlainHTTP)
	if err != nil {
		return name.Digest{}, err
	}
	var t http.RoundTripper
	t, err = transport(o.CAFile)
	if err != nil {
		return name.Digest{}, err
	}
	if o.PlainHTTP {
		t = httpOnly{t}
	} else {
		t = httpsOnly{t}
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	digest, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(t)); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return ref.Context().Digest(digest.String()), nil
}

// parseReference parses image strictly: the registry and the tag must be
// written out, so a push never lands on Docker Hub or on :latest by
// accident.
func parseReference(image string, plainHTTP bool) (name.Reference, error) {
	opts := []name.Option{name.StrictValidation}
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %q: want registry/repository:tag: %w", image, err)
	}
	return ref, nil
}

// transport is go-containerregistry's default transport, trusting the
// CAs of caFile too when it is set.
func transport(caFile string) (http.RoundTripper, error) {
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("transport: go-containerregistry's default transport is not an *http.Transport")
	}
	t := base.Clone()
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate", caFile)
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// httpsOnly refuses plain HTTP but to loopback.
type httpsOnly struct{ base http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !loopback(r.URL.Hostname()) {
		return nil, fmt.Errorf("plain HTTP to %s refused: --plain-http (make push PLAIN_HTTP=1) allows it, for a registry that does not speak HTTPS", r.URL.Host)
	}
	return h.base.RoundTrip(r)
}

// httpOnly refuses HTTPS: with --plain-http, go-containerregistry tries
// HTTPS first and falls back to plain HTTP on any failure.
type httpOnly struct{ base http.RoundTripper }

func (h httpOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "http" {
		return nil, fmt.Errorf("%s to %s refused: --plain-http speaks plain HTTP only (without it, HTTPS is verified)", r.URL.Scheme, r.URL.Host)
	}
	return h.base.RoundTrip(r)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
