package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/regcred/regcred/pkg/certgen"
)

// Registry is a running distribution registry, with htpasswd auth unless
// it has no users.
type Registry struct {
	// Host is host:port, e.g. "127.0.0.1:41234".
	Host string
	// CA signed the registry's certificate (nil for plain HTTP).
	CA *certgen.CA
	// Transport trusts CA.
	Transport http.RoundTripper

	cmd *exec.Cmd
	dir string
}

// RegistryOptions tune StartRegistry.
type RegistryOptions struct {
	// Users maps user names to passwords; with none, anyone may pull and
	// push.
	Users map[string]string
	// CA signs the serving certificate; nil serves plain HTTP.
	CA *certgen.CA
	// Output receives the registry's log; nil discards it.
	Output io.Writer
	// IP is the address it listens on (one of this machine's; a node's
	// IP); empty means 127.0.0.1. containerd treats a loopback registry
	// as local and skips verifying its TLS: a registry the node must not
	// trust without being told listens elsewhere.
	IP string
}

// StartRegistry starts a registry on a free port, of loopback unless
// opts.IP says otherwise.
func StartRegistry(opts RegistryOptions) (*Registry, error) {
	path, err := Bin("registry")
	if err != nil {
		return nil, err
	}
	ip := opts.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	port, err := freePortOn(ip)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "regcred-registry-")
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: net.JoinHostPort(ip, strconv.Itoa(port)), CA: opts.CA, dir: dir, Transport: http.DefaultTransport}
	var htpasswd strings.Builder
	for user, pass := range opts.Users {
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&htpasswd, "%s:%s\n", user, h)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd.String()), 0o600); err != nil {
		return nil, err
	}
	tlsConfig := ""
	if opts.CA != nil {
		pair, err := opts.CA.Issue([]string{ip, "localhost"}, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		if err := pair.Write(dir, "tls.crt", "tls.key"); err != nil {
			return nil, err
		}
		tlsConfig = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(opts.CA.CertPEM)
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		r.Transport = t
	}
	auth := ""
	if len(opts.Users) > 0 {
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: regcred-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: regcred-test-bed
%s%s`, filepath.Join(dir, "data"), r.Host, tlsConfig, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	r.cmd = exec.Command(path, "serve", cfgPath)
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	r.cmd.Stdout, r.cmd.Stderr = out, out
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting registry: %w", err)
	}
	if err := r.waitReady(len(opts.Users) > 0); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// URL returns the registry's base URL.
func (r *Registry) URL() string {
	if r.CA == nil {
		return "http://" + r.Host
	}
	return "https://" + r.Host
}

// waitReady waits for /v2/ to answer 401 (auth) or 200 (none).
func (r *Registry) waitReady(auth bool) error {
	want := http.StatusOK
	if auth {
		want = http.StatusUnauthorized
	}
	c := &http.Client{Transport: r.Transport, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(r.URL() + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("registry at %s did not answer /v2/ with %d in time", r.Host, want)
}

// Push pushes a small random image to repo:tag and returns its reference.
func (r *Registry) Push(ctx context.Context, repo, tag, user, password string) (string, error) {
	img, err := random.Image(256, 1)
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(r.Host+"/"+repo+":"+tag, r.nameOptions()...)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(r.Transport),
		remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return ref.String(), nil
}

func (r *Registry) nameOptions() []name.Option {
	if r.CA == nil {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Stop stops the registry and removes its files.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
	_ = os.RemoveAll(r.dir)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) { return freePortOn("127.0.0.1") }

// freePortOn returns a free TCP port on ip.
func freePortOn(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
