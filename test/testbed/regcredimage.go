package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regcred/regcred/pkg/ociimage"
)

// RegcredImage is regcred's container image, built from this checkout.
type RegcredImage struct {
	Index    v1.ImageIndex
	Metadata ociimage.Metadata
	// Platform is the one platform built: this machine's.
	Platform v1.Platform
}

// built is the image BuildRegcredImage built, once per test process: the
// checkout does not change under it, and making the image in a test binary
// built with -race takes about 40 s.
var built struct {
	sync.Mutex
	image *RegcredImage
}

// BuildRegcredImage builds regcred's image as make image does, for this
// machine's platform only (the node's): the Makefile's static, trimmed,
// version-stamped build of cmd/regcred, then pkg/ociimage's image and
// index, which cmd/regcred-image writes for make image. The image is built
// once per process; later calls return it.
func BuildRegcredImage(ctx context.Context) (*RegcredImage, error) {
	built.Lock()
	defer built.Unlock()
	if built.image != nil {
		return built.image, nil
	}
	im, err := buildRegcredImage(ctx)
	if err == nil {
		built.image = im
	}
	return im, err
}

func buildRegcredImage(ctx context.Context) (*RegcredImage, error) {
	root := repoRoot()
	m, err := imageMetadata(ctx, root)
	if err != nil {
		return nil, err
	}
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	dir, err := os.MkdirTemp("", "regcred-image-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin := filepath.Join(dir, "regcred")
	// The Makefile's GOBUILD.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X github.com/regcred/regcred/pkg/cli.Version="+m.Version, "-o", bin, "./cmd/regcred")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOAMD64=v1", "GOARM64=v8.0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building regcred for %s in %s: %w\n%s", p, root, err, out)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	img, err := ociimage.Image(p, binary, m)
	if err != nil {
		return nil, fmt.Errorf("regcred's image: %w", err)
	}
	idx, err := ociimage.Index(m, img)
	if err != nil {
		return nil, fmt.Errorf("regcred's image index: %w", err)
	}
	return &RegcredImage{Index: idx, Metadata: m, Platform: p}, nil
}

// Push pushes the image to reg as repo:tag with user's credentials, as
// make push does (ociimage.Push, trusting the registry's CA), and returns
// the digest reference it is at.
func (im *RegcredImage) Push(ctx context.Context, reg *Registry, repo, tag, user, password string) (string, error) {
	o := ociimage.PushOptions{
		PlainHTTP: reg.CA == nil,
		Keychain:  registryKeychain{host: reg.Host, auth: &authn.Basic{Username: user, Password: password}},
	}
	if reg.CA != nil {
		dir, err := os.MkdirTemp("", "regcred-push-")
		if err != nil {
			return "", err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		o.CAFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(o.CAFile, reg.CA.CertPEM, 0o600); err != nil {
			return "", err
		}
	}
	at, err := ociimage.Push(ctx, im.Index, reg.Host+"/"+repo+":"+tag, o)
	if err != nil {
		return "", err
	}
	return at.String(), nil
}

// registryKeychain gives auth for one registry host, nothing for others:
// no Docker config is read or written (one written on the node's machine
// would become credentials for every pull).
type registryKeychain struct {
	host string
	auth authn.Authenticator
}

func (k registryKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}

// imageMetadata is what make image stamps on a build of an untagged
// commit: VERSION plus the commit (and -dirty with local changes), the
// commit, and its time.
func imageMetadata(ctx context.Context, root string) (ociimage.Metadata, error) {
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return ociimage.Metadata{}, err
	}
	m := ociimage.Metadata{Version: strings.TrimSpace(string(v)) + "-dev", Revision: "unknown", Source: "https://github.com/regcred/regcred", Created: time.Unix(0, 0)}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	rev, err := git("log", "-1", "--format=%H %ct")
	if err != nil {
		return m, nil // not a git checkout: as the Makefile, VERSION-dev
	}
	hash, ct, _ := strings.Cut(rev, " ")
	seconds, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return m, fmt.Errorf("the commit's time %q: %w", ct, err)
	}
	m.Revision, m.Created = hash, time.Unix(seconds, 0).UTC()
	m.Version = strings.TrimSuffix(m.Version, "-dev") + "-" + hash[:12]
	// Untracked files are changes too: Go compiles them.
	if changes, err := git("status", "--porcelain"); err != nil || changes != "" {
		m.Version += "-dirty"
	}
	return m, nil
}

// repoRoot is the root of this checkout.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
