package ociimage

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// BinaryPath is where the image keeps the regcred binary, its
	// entrypoint.
	BinaryPath = "/regcred"
	// User is the user and group the image runs as: distroless' nonroot,
	// which the chart's securityContext names too.
	User = "65532:65532"
	// defaultPath is the PATH a Dockerfile build from scratch sets; the same
	// here, so both builds agree.
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// The OCI annotation keys the image's labels use.
const (
	LabelCreated  = "org.opencontainers.image.created"
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelTitle    = "org.opencontainers.image.title"
	LabelLicenses = "org.opencontainers.image.licenses"
)

// Metadata is what the image says about where it comes from. Created is
// the commit's time (SOURCE_DATE_EPOCH), never the build's: it is the only
// time in the image.
type Metadata struct {
	// Version is regcred's version, as stamped into the binary.
	Version string
	// Revision is the commit the image is built from.
	Revision string
	// Source is the URL of the source repository.
	Source string
	// Created is the commit's time.
	Created time.Time
}

func (m Metadata) validate() error {
	var errs []error
	for name, v := range map[string]string{"version": m.Version, "revision": m.Revision, "source": m.Source} {
		if v == "" {
			errs = append(errs, fmt.Errorf("metadata: %s: must be set", name))
		}
	}
	if m.Created.IsZero() {
		errs = append(errs, errors.New("metadata: created: must be set (the commit's time)"))
	}
	return errors.Join(errs...)
}

// Labels returns the image's OCI labels, also the index's annotations.
func (m Metadata) Labels() map[string]string {
	return map[string]string{
		LabelCreated:  m.Created.UTC().Format(time.RFC3339),
		LabelSource:   m.Source,
		LabelRevision: m.Revision,
		LabelVersion:  m.Version,
		LabelTitle:    "regcred",
		LabelLicenses: "Apache-2.0",
	}
}

// Image returns regcred's image for platform: one layer with binary (a
// static Linux executable for that platform) at /regcred and the CA bundle
// at /etc/ssl/certs/ca-certificates.crt; no shell, nothing else. It runs
// /regcred as 65532:65532.
func Image(platform v1.Platform, binary []byte, m Metadata) (v1.Image, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if err := checkBinary(platform, binary); err != nil {
		return nil, fmt.Errorf("%s: %w", platform, err)
	}
	created := m.Created.UTC().Truncate(time.Second)
	layer, err := Layer([]File{
		{Path: BinaryPath, Mode: 0o755, Contents: binary},
		{Path: CABundlePath, Mode: 0o644, Contents: CABundle()},
	}, created)
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "make image",
			Comment:   "regcred " + m.Version + ": " + BinaryPath + " and " + CABundlePath,
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{BinaryPath},
		Env:        []string{defaultPath},
		WorkingDir: "/",
		Labels:     m.Labels(),
	}
	return mutate.ConfigFile(img, cf)
}

// Index returns the OCI image index of images, one per platform, sorted by
// platform and annotated with m's labels.
func Index(m Metadata, images ...v1.Image) (v1.ImageIndex, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, errors.New("index: no images")
	}
	adds := make([]mutate.IndexAddendum, 0, len(images))
	seen := map[string]bool{}
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := cf.Platform()
		if p == nil {
			return nil, errors.New("index: an image has no platform")
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("index: two images for %s", p)
		}
		seen[p.String()] = true
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	slices.SortFunc(adds, func(a, b mutate.IndexAddendum) int {
		return cmp.Compare(a.Platform.String(), b.Platform.String())
	})
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	annotated, ok := mutate.Annotations(idx, m.Labels()).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("index: annotating: not an index")
	}
	return annotated, nil
}
