package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// File is a regular file of the image's filesystem.
type File struct {
	// Path is absolute, e.g. /regcred.
	Path string
	// Mode holds the permission bits, e.g. 0o755.
	Mode int64
	// Contents are the file's bytes.
	Contents []byte
}

// dirMode is the mode of every directory the layer holds.
const dirMode = 0o755

// Layer returns one gzip-compressed OCI layer holding files and their
// parent directories, owned by root, every time set to modTime. The
// entries are sorted by path (a directory before what it holds), so the
// same files and time give the same digest.
func Layer(files []File, modTime time.Time) (v1.Layer, error) {
	archive, err := layerTar(files, modTime)
	if err != nil {
		return nil, err
	}
	return compressedLayer(archive)
}

// layerTar writes the layer's tar archive.
func layerTar(files []File, modTime time.Time) ([]byte, error) {
	modTime = modTime.UTC().Truncate(time.Second)
	entries := map[string]*tar.Header{}
	contents := map[string][]byte{}
	for _, f := range files {
		name, err := entryName(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("file %s: listed twice", f.Path)
		}
		entries[name] = &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Size: int64(len(f.Contents))}
		contents[name] = f.Contents
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			entries[dir+"/"] = &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: dirMode}
		}
	}
	for name, h := range entries {
		if h.Typeflag == tar.TypeReg {
			if _, clash := entries[name+"/"]; clash {
				return nil, fmt.Errorf("file /%s: also a directory", name)
			}
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		h := entries[name]
		// Root-owned, no user or group names, one time: nothing of the
		// machine that built it.
		h.Uid, h.Gid, h.ModTime, h.Format = 0, 0, modTime, tar.FormatUSTAR
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", name, err)
		}
		if _, err := tw.Write(contents[name]); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// entryName turns an absolute file path into a tar entry name.
func entryName(p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("file %q: want a clean absolute path", p)
	}
	return strings.TrimPrefix(p, "/"), nil
}

// compressedLayer gzips the tar archive once (the gzip header holds no
// name and no time) and serves the result as an OCI layer.
func compressedLayer(archive []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(archive); err != nil {
		return nil, fmt.Errorf("layer: compressing: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("layer: compressing: %w", err)
	}
	compressed := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
