package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/ociimage"
)

// writeELF writes the header of a static ELF executable for machine: all
// the image builder reads of a binary.
func writeELF(t *testing.T, machine elf.Machine) string {
	t.Helper()
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: 1, Ehsize: 64, Phentsize: 56, Shentsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	var buf bytes.Buffer
	require.NoError(t, binary.Write(&buf, binary.LittleEndian, h))
	file := filepath.Join(t.TempDir(), "regcred")
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o755))
	return file
}

// lastLine is what a script reads of a command's output.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestBuildTwiceThenPush(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	amd64, arm64 := writeELF(t, elf.EM_X86_64), writeELF(t, elf.EM_AARCH64)
	dir := filepath.Join(t.TempDir(), "image")
	args := []string{"build", "--out", dir, "--version", "0.1.0", "--revision", "0123abcd",
		"--source", "https://github.com/regcred/regcred", "--source-date-epoch", "1782909045",
		"--binary", "linux/amd64=" + amd64, "--binary", "linux/arm64=" + arm64}

	var first, second bytes.Buffer
	require.NoError(t, run(t.Context(), args, &first))
	require.NoError(t, run(t.Context(), args, &second))
	assert.Contains(t, first.String(), dir+": regcred 0.1.0, commit 0123abcd of 2026-07-01T12:30:45Z\n")
	assert.Contains(t, first.String(), "  linux/amd64  sha256:")
	digest := lastLine(first.String())
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, digest)
	assert.Equal(t, first.String(), second.String(), "same inputs, same digests")

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	image := strings.TrimPrefix(srv.URL, "http://") + "/regcred:0.1.0"
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"push", "--layout", dir, "--plain-http", image}, &out))
	at := lastLine(out.String())
	assert.True(t, strings.HasSuffix(at, "/regcred@"+digest), at)

	ref, err := name.NewDigest(at)
	require.NoError(t, err)
	idx, err := remote.Index(ref, remote.WithContext(t.Context()))
	require.NoError(t, err)
	got, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, digest, got.String())
}

func TestCABundle(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"ca-bundle"}, &out))
	assert.Equal(t, ociimage.CABundle(), out.Bytes())
}

func TestUsageErrors(t *testing.T) {
	bin := writeELF(t, elf.EM_X86_64)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"publish"}, `unknown command "publish"`},
		{"build without binaries", []string{"build", "--source-date-epoch", "1"}, "build: want --source-date-epoch and at least one --binary, and no arguments"},
		{"build without time", []string{"build", "--binary", "linux/amd64=" + bin}, "build: want --source-date-epoch and at least one --binary, and no arguments"},
		{"build with a date", []string{"build", "--source-date-epoch", "2026-07-01", "--binary", "linux/amd64=" + bin}, `build: --source-date-epoch "2026-07-01": not a number of seconds`},
		{"binary without platform", []string{"build", "--source-date-epoch", "1", "--binary", bin}, `build: --binary "` + bin + `": want OS/ARCH=FILE`},
		{"unknown flag", []string{"build", "--tag", "x"}, "build: flag provided but not defined: -tag"},
		{"push without image", []string{"push"}, "push: want one image, REGISTRY/REPOSITORY:TAG"},
		{"ca-bundle with arguments", []string{"ca-bundle", "out.pem"}, "ca-bundle: takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, io.Discard)
			require.ErrorAs(t, err, new(usageError))
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestBuildRejectsAMissingMetadata(t *testing.T) {
	err := run(t.Context(), []string{"build", "--out", t.TempDir(), "--source-date-epoch", "1",
		"--binary", "linux/amd64=" + writeELF(t, elf.EM_X86_64)}, io.Discard)
	require.Error(t, err)
	assert.NotErrorAs(t, err, new(usageError))
	assert.Contains(t, err.Error(), "metadata: version: must be set")
}
