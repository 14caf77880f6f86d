package ociimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/require"
)

// commitTime stands for the time of the commit an image is built from.
var commitTime = time.Date(2026, 7, 1, 12, 30, 45, 0, time.UTC)

func testMetadata() Metadata {
	return Metadata{
		Version:  "0.1.0",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Source:   "https://github.com/regcred/regcred",
		Created:  commitTime,
	}
}

var (
	linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	linuxARM64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// fakeELF returns the smallest ELF executable debug/elf reads for machine:
// a header, and a PT_INTERP program header when dynamic. Each image gets
// its own bytes through padding, so tests can tell binaries apart.
func fakeELF(t *testing.T, machine elf.Machine, dynamic bool, padding ...byte) []byte {
	t.Helper()
	h := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(machine),
		Version:   uint32(elf.EV_CURRENT),
		Ehsize:    64,
		Phentsize: 56,
		Shentsize: 64,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var progs []elf.Prog64
	if dynamic {
		h.Phoff, h.Phnum = 64, 1
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP)})
	}
	var buf bytes.Buffer
	require.NoError(t, binary.Write(&buf, binary.LittleEndian, h))
	for _, p := range progs {
		require.NoError(t, binary.Write(&buf, binary.LittleEndian, p))
	}
	buf.Write(padding)
	return buf.Bytes()
}

// entry is what a test checks of a tar entry.
type entry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	modTime  time.Time
	contents []byte
}

// layerEntries reads the uncompressed tar of layer.
func layerEntries(t *testing.T, layer v1.Layer) []entry {
	t.Helper()
	rc, err := layer.Uncompressed()
	require.NoError(t, err)
	defer func() { _ = rc.Close() }()
	var entries []entry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		contents, err := io.ReadAll(tr)
		require.NoError(t, err)
		entries = append(entries, entry{
			name: h.Name, typ: h.Typeflag, mode: h.Mode, uid: h.Uid, gid: h.Gid,
			modTime: h.ModTime.UTC(), contents: contents,
		})
	}
	return entries
}

// digest returns the digest of anything that has one.
func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	require.NoError(t, err)
	return h
}
