package ociimage

import (
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree returns every file under dir with its contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	}))
	return files
}

func TestLayoutRoundTrip(t *testing.T) {
	t.Parallel()
	idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))
	dir := filepath.Join(t.TempDir(), "image")
	require.NoError(t, WriteLayout(dir, idx, "0.1.0"))

	read, err := ReadLayout(dir)
	require.NoError(t, err)
	assert.Equal(t, digest(t, idx), digest(t, read))
	im, err := read.IndexManifest()
	require.NoError(t, err)
	assert.Len(t, im.Manifests, 2)

	top, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	tm, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, tm.Manifests, 1)
	assert.Equal(t, digest(t, idx), tm.Manifests[0].Digest)
	assert.Equal(t, map[string]string{"org.opencontainers.image.ref.name": "0.1.0"}, tm.Manifests[0].Annotations)
}

func TestLayoutIsReplacedNotAppended(t *testing.T) {
	t.Parallel()
	m := testMetadata()
	dir := filepath.Join(t.TempDir(), "image")
	first := buildIndex(t, m, fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))
	require.NoError(t, WriteLayout(dir, first, "0.1.0"))
	m.Version = "0.2.0"
	second := buildIndex(t, m, fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))
	require.NoError(t, WriteLayout(dir, second, "0.2.0"))

	read, err := ReadLayout(dir)
	require.NoError(t, err, "index.json lists the second build alone")
	assert.Equal(t, digest(t, second), digest(t, read))
}

// TestLayoutIsReproducible writes the same build twice: the two layouts
// are the same, byte for byte.
func TestLayoutIsReproducible(t *testing.T) {
	t.Parallel()
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, dir := range []string{a, b} {
		idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))
		require.NoError(t, WriteLayout(dir, idx, "0.1.0"))
	}
	ta := tree(t, a)
	assert.Len(t, ta, 2+1+2*3, "oci-layout, index.json; the index; per platform a manifest, a config, a layer")
	assert.Equal(t, ta, tree(t, b))
}

func TestLayoutLeavesOtherDirectoriesAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(keep, []byte("mine"), 0o600))
	idx := buildIndex(t, testMetadata(), fakeELF(t, elf.EM_X86_64, false), fakeELF(t, elf.EM_AARCH64, false))

	err := WriteLayout(dir, idx, "0.1.0")
	assert.EqualError(t, err, "layout "+dir+": not empty and not an OCI layout, not replacing it")
	assert.FileExists(t, keep)

	_, err = ReadLayout(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "(run make image first)")
}
