// Command regcred-image builds regcred's container image with Go alone
// (make image) and pushes it (make push). The image is built by
// pkg/ociimage; this only reads flags and files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regcred/regcred/pkg/ociimage"
)

const usage = `regcred-image builds regcred's container image without Docker, and pushes it.

Usage:
  regcred-image build --version V --revision SHA --source URL --source-date-epoch SECONDS \
                      --binary OS/ARCH=FILE... [--out DIR]
        one image per binary, their index written as an OCI layout to DIR (dist/image)
  regcred-image push [--layout DIR] [--plain-http] [--ca-file FILE] REGISTRY/REPOSITORY:TAG
        push the index in DIR, with the credentials of the Docker config
  regcred-image ca-bundle
        the image's CA bundle, PEM, on stdout

build prints the index's digest last; push, the digest reference it pushed.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "regcred-image:", err)
		if errors.As(err, new(usageError)) {
			fmt.Fprint(os.Stderr, "\n"+usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a command-line mistake.
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("no command")}
	}
	switch args[0] {
	case "build":
		return build(args[1:], stdout)
	case "push":
		return push(ctx, args[1:], stdout)
	case "ca-bundle":
		if len(args) > 1 {
			return usageError{errors.New("ca-bundle: takes no arguments")}
		}
		_, err := stdout.Write(ociimage.CABundle())
		return err
	default:
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
}

// newFlagSet returns a flag set whose errors are returned, not printed.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func build(args []string, stdout io.Writer) error {
	fs := newFlagSet("build")
	var (
		m        ociimage.Metadata
		out      = fs.String("out", "dist/image", "directory of the OCI layout")
		epoch    = fs.String("source-date-epoch", "", "the commit's time, in seconds since 1970 (git log -1 --format=%ct)")
		binaries []string
	)
	fs.StringVar(&m.Version, "version", "", "regcred's version")
	fs.StringVar(&m.Revision, "revision", "", "the commit")
	fs.StringVar(&m.Source, "source", "", "the source repository's URL")
	fs.Func("binary", "OS/ARCH=FILE, a regcred binary for that platform (repeatable)", func(s string) error {
		binaries = append(binaries, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("build: %w", err)}
	}
	if fs.NArg() > 0 || len(binaries) == 0 || *epoch == "" {
		return usageError{errors.New("build: want --source-date-epoch and at least one --binary, and no arguments")}
	}
	seconds, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil {
		return usageError{fmt.Errorf("build: --source-date-epoch %q: not a number of seconds", *epoch)}
	}
	m.Created = time.Unix(seconds, 0).UTC()

	images := make([]v1.Image, 0, len(binaries))
	for _, b := range binaries {
		platform, file, ok := strings.Cut(b, "=")
		if !ok {
			return usageError{fmt.Errorf("build: --binary %q: want OS/ARCH=FILE", b)}
		}
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return usageError{fmt.Errorf("build: --binary %q: %w", b, err)}
		}
		binary, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("build: %w", err)
		}
		img, err := ociimage.Image(*p, binary, m)
		if err != nil {
			return fmt.Errorf("build: %s: %w", file, err)
		}
		images = append(images, img)
	}
	idx, err := ociimage.Index(m, images...)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := ociimage.WriteLayout(*out, idx, m.Version); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return describe(stdout, *out, m, idx)
}

// describe prints what build wrote: per platform the image's digest and
// compressed size, then the index's digest.
func describe(w io.Writer, dir string, m ociimage.Metadata, idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: regcred %s, commit %s of %s\n", dir, m.Version, m.Revision, m.Created.Format(time.RFC3339))
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		mf, err := img.Manifest()
		if err != nil {
			return err
		}
		size := mf.Config.Size
		for _, l := range mf.Layers {
			size += l.Size
		}
		fmt.Fprintf(w, "  %-12s %s  %.1f MB compressed\n", d.Platform, d.Digest, float64(size)/1e6)
	}
	h, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, h)
	return nil
}

func push(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("push")
	dir := fs.String("layout", "dist/image", "directory of the OCI layout make image wrote")
	var o ociimage.PushOptions
	fs.BoolVar(&o.PlainHTTP, "plain-http", false, "speak plain HTTP to the registry, never HTTPS (a test registry)")
	fs.StringVar(&o.CAFile, "ca-file", "", "PEM file of CAs to trust besides the system's")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("push: %w", err)}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("push: want one image, REGISTRY/REPOSITORY:TAG")}
	}
	idx, err := ociimage.ReadLayout(*dir)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	at, err := ociimage.Push(ctx, idx, fs.Arg(0), o)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	fmt.Fprintf(stdout, "pushed %s\n%s\n", fs.Arg(0), at)
	return nil
}
