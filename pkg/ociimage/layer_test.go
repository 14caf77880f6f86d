package ociimage

import (
	"archive/tar"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLayerEntries(t *testing.T) {
	t.Parallel()
	layer, err := Layer([]File{
		{Path: "/regcred", Mode: 0o755, Contents: []byte("binary")},
		{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Contents: []byte("roots")},
	}, commitTime.Add(300*time.Millisecond).In(time.FixedZone("CEST", 2*3600)))
	require.NoError(t, err)

	mt, err := layer.MediaType()
	require.NoError(t, err)
	assert.Equal(t, types.OCILayer, mt)

	// Sorted, parents first, root-owned, the commit's time to the second.
	dir := func(name string) entry {
		return entry{name: name, typ: tar.TypeDir, mode: 0o755, modTime: commitTime, contents: []byte{}}
	}
	assert.Equal(t, []entry{
		dir("etc/"),
		dir("etc/ssl/"),
		dir("etc/ssl/certs/"),
		{name: "etc/ssl/certs/ca-certificates.crt", typ: tar.TypeReg, mode: 0o644, modTime: commitTime, contents: []byte("roots")},
		{name: "regcred", typ: tar.TypeReg, mode: 0o755, modTime: commitTime, contents: []byte("binary")},
	}, layerEntries(t, layer))
}

func TestLayerIsReproducible(t *testing.T) {
	t.Parallel()
	files := []File{
		{Path: "/regcred", Mode: 0o755, Contents: []byte("binary")},
		{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Contents: []byte("roots")},
	}
	reversed := []File{files[1], files[0]}
	first, err := Layer(files, commitTime)
	require.NoError(t, err)

	tests := []struct {
		name    string
		files   []File
		modTime time.Time
		same    bool
	}{
		{"same files, same time", files, commitTime, true},
		{"files in another order", reversed, commitTime, true},
		{"same instant in another zone", files, commitTime.In(time.FixedZone("PST", -8*3600)), true},
		{"another time", files, commitTime.Add(time.Second), false},
		{"another mode", []File{{Path: "/regcred", Mode: 0o700, Contents: []byte("binary")}, files[1]}, commitTime, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			again, err := Layer(tt.files, tt.modTime)
			require.NoError(t, err)
			if tt.same {
				assert.Equal(t, digest(t, first), digest(t, again))
			} else {
				assert.NotEqual(t, digest(t, first), digest(t, again))
			}
		})
	}
}

func TestLayerGzipHeaderHasNoTime(t *testing.T) {
	t.Parallel()
	layer, err := Layer([]File{{Path: "/regcred", Mode: 0o755, Contents: []byte("binary")}}, commitTime)
	require.NoError(t, err)
	rc, err := layer.Compressed()
	require.NoError(t, err)
	defer func() { _ = rc.Close() }()
	header := make([]byte, 10)
	_, err = io.ReadFull(rc, header)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x1f, 0x8b}, header[:2], "gzip magic")
	assert.Zero(t, binary.LittleEndian.Uint32(header[4:8]), "gzip MTIME")
	assert.Zero(t, header[3]&0x08, "gzip FNAME flag")
}

func TestLayerRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []File
		want  string
	}{
		{"relative path", []File{{Path: "regcred"}}, `file "regcred": want a clean absolute path`},
		{"unclean path", []File{{Path: "/etc/../regcred"}}, `file "/etc/../regcred": want a clean absolute path`},
		{"root", []File{{Path: "/"}}, `file "/": want a clean absolute path`},
		{"twice", []File{{Path: "/regcred"}, {Path: "/regcred"}}, "file /regcred: listed twice"},
		{"file and directory", []File{{Path: "/etc"}, {Path: "/etc/passwd"}}, "file /etc: also a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Layer(tt.files, commitTime)
			assert.EqualError(t, err, tt.want)
		})
	}
}
