package testbed

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one file of an Image.
type File struct {
	// Path is absolute inside the image, e.g. "/pause".
	Path    string
	Content []byte
	// Mode defaults to 0o755: images here are made of programs.
	Mode int64
}

// Image is a runnable linux image of one layer, of this machine's architecture.
type Image struct {
	Files      []File
	Entrypoint []string
	Env        []string
}

// Build returns the image: one layer holding the files, and a config
// that names the platform (the kubelet's runtime refuses an image whose
// config has no os and architecture) and the entrypoint.
func (im Image) Build() (v1.Image, error) {
	layerTar, err := im.tar()
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH // the node runs here
	cf.Config.Entrypoint = im.Entrypoint
	cf.Config.Env = im.Env
	return mutate.ConfigFile(img, cf)
}

// tar returns the layer: the files and their parent directories.
func (im Image) tar() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	files := append([]File(nil), im.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("image file %q: path is not absolute", f.Path)
		}
		var parents []string
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d[1:] + "/", Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path[1:], Mode: mode, Size: int64(len(f.Content))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PushImage builds im and pushes it to reg as repo:tag with user's
// credentials (none if user is empty). It returns the reference by digest (host/repo@sha256:…),
// which pins exactly what was pushed.
func PushImage(ctx context.Context, reg *Registry, repo, tag, user, password string, im Image) (string, error) {
	img, err := im.Build()
	if err != nil {
		return "", fmt.Errorf("building image %s:%s: %w", repo, tag, err)
	}
	ref, err := name.ParseReference(reg.Host+"/"+repo+":"+tag, reg.nameOptions()...)
	if err != nil {
		return "", err
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: password}
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(reg.Transport), remote.WithAuth(auth)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(digest.String()).String(), nil
}

// BuildStatic compiles the Go main package pkg of the module in dir into
// a static linux binary for this machine's architecture and returns its content.
func BuildStatic(ctx context.Context, dir, pkg string) ([]byte, error) {
	out, err := os.MkdirTemp("", "regcred-build-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(out) }()
	bin := filepath.Join(out, "main")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return os.ReadFile(bin)
}

// GoProgram compiles one file of Go source that uses only the standard
// library into a static linux binary for this machine's architecture.
func GoProgram(ctx context.Context, src string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "regcred-program-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module regcred.test/program\n\ngo 1.26\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		return nil, err
	}
	return BuildStatic(ctx, dir, ".")
}

// WaitForTermSource is a program that prints its arguments and then waits
// for SIGTERM or SIGINT: the sandbox ("pause") process of every Pod, and
// a container that runs until it is stopped.
const WaitForTermSource = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	if len(os.Args) > 1 {
		fmt.Println(strings.Join(os.Args[1:], " "))
	}
	<-signals
}
`
