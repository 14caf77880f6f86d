package ociimage

import (
	"archive/tar"
	"debug/elf"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImage(t *testing.T) {
	t.Parallel()
	binary := fakeELF(t, elf.EM_X86_64, false, []byte("regcred")...)
	img, err := Image(linuxAMD64, binary, testMetadata())
	require.NoError(t, err)

	m, err := img.Manifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIManifestSchema1, m.MediaType)
	assert.Equal(t, types.OCIConfigJSON, m.Config.MediaType)
	require.Len(t, m.Layers, 1, "one layer, no base image")
	assert.Equal(t, types.OCILayer, m.Layers[0].MediaType)

	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, "amd64", cf.Architecture)
	assert.Equal(t, commitTime, cf.Created.UTC(), "created is the commit's time")
	assert.Equal(t, v1.Config{
		User:       "65532:65532",
		Entrypoint: []string{"/regcred"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.created":  "2026-07-01T12:30:45Z",
			"org.opencontainers.image.source":   "https://github.com/regcred/regcred",
			"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
			"org.opencontainers.image.version":  "0.1.0",
			"org.opencontainers.image.title":    "regcred",
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}, cf.Config)
	require.Len(t, cf.History, 1)
	assert.Equal(t, commitTime, cf.History[0].Created.UTC())

	layers, err := img.Layers()
	require.NoError(t, err)
	var files []entry
	for _, e := range layerEntries(t, layers[0]) {
		assert.Equal(t, commitTime, e.modTime, e.name)
		assert.Zero(t, e.uid, e.name)
		assert.Zero(t, e.gid, e.name)
		if e.typ != tar.TypeDir {
			files = append(files, entry{name: e.name, typ: e.typ, mode: e.mode, contents: e.contents})
		}
	}
	// The binary and the CA bundle, nothing else: no shell, no passwd.
	assert.Equal(t, []entry{
		{name: "etc/ssl/certs/ca-certificates.crt", typ: tar.TypeReg, mode: 0o644, contents: CABundle()},
		{name: "regcred", typ: tar.TypeReg, mode: 0o755, contents: binary},
	}, files)
}

func TestImageRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		meta   func(*Metadata)
		binary []byte
		want   string
	}{
		{"no version", func(m *Metadata) { m.Version = "" }, fakeELF(t, elf.EM_X86_64, false), "metadata: version: must be set"},
		{"no time", func(m *Metadata) { m.Created = time.Time{} }, fakeELF(t, elf.EM_X86_64, false), "metadata: created: must be set (the commit's time)"},
		{"dynamic binary", func(*Metadata) {}, fakeELF(t, elf.EM_X86_64, true), "linux/amd64: binary: dynamically linked (build it with CGO_ENABLED=0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMetadata()
			tt.meta(&m)
			_, err := Image(linuxAMD64, tt.binary, m)
			assert.EqualError(t, err, tt.want)
		})
	}
}

// buildIndex builds the index for amd64 and arm64 from fake binaries.
func buildIndex(t *testing.T, m Metadata, amd64, arm64 []byte) v1.ImageIndex {
	t.Helper()
	a, err := Image(linuxAMD64, amd64, m)
	require.NoError(t, err)
	b, err := Image(linuxARM64, arm64, m)
	require.NoError(t, err)
	idx, err := Index(m, b, a)
	require.NoError(t, err)
	return idx
}

func TestIndex(t *testing.T) {
	t.Parallel()
	m := testMetadata()
	idx := buildIndex(t, m, fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))

	im, err := idx.IndexManifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIImageIndex, im.MediaType)
	assert.Equal(t, m.Labels(), im.Annotations, "GHCR reads the source from the index")
	require.Len(t, im.Manifests, 2)
	for i, want := range []v1.Platform{linuxAMD64, linuxARM64} {
		d := im.Manifests[i]
		assert.Equal(t, types.OCIManifestSchema1, d.MediaType)
		require.NotNil(t, d.Platform)
		assert.Equal(t, want, *d.Platform, "sorted by platform")
		img, err := idx.Image(d.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, want.Architecture, cf.Architecture)
	}

	a, err := Image(linuxAMD64, fakeELF(t, elf.EM_X86_64, false), m)
	require.NoError(t, err)
	_, err = Index(m, a, a)
	assert.EqualError(t, err, "index: two images for linux/amd64")
	_, err = Index(m)
	assert.EqualError(t, err, "index: no images")
}

// TestIndexIsReproducible is "same commit, same digest": the same binaries
// and metadata give the same digest however often they are built, and any
// change of them gives another.
func TestIndexIsReproducible(t *testing.T) {
	t.Parallel()
	amd64, arm64 := fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false)
	first := digest(t, buildIndex(t, testMetadata(), amd64, arm64))

	tests := []struct {
		name         string
		meta         func(*Metadata)
		amd64, arm64 []byte
		same         bool
	}{
		{"built again", func(*Metadata) {}, amd64, arm64, true},
		{"built again later, elsewhere", func(m *Metadata) { m.Created = commitTime.In(time.Local) }, amd64, arm64, true},
		{"another commit time", func(m *Metadata) { m.Created = commitTime.Add(time.Minute) }, amd64, arm64, false},
		{"another revision", func(m *Metadata) { m.Revision = "fedcba9876543210fedcba9876543210fedcba98" }, amd64, arm64, false},
		{"another version", func(m *Metadata) { m.Version = "0.1.0-dirty" }, amd64, arm64, false},
		{"another binary", func(*Metadata) {}, fakeELF(t, elf.EM_X86_64, false, 1), arm64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMetadata()
			tt.meta(&m)
			again := digest(t, buildIndex(t, m, tt.amd64, tt.arm64))
			if tt.same {
				assert.Equal(t, first, again)
			} else {
				assert.NotEqual(t, first, again)
			}
		})
	}
}
