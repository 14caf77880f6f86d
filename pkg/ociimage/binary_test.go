package ociimage

import (
	"debug/elf"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
)

func TestCheckBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		platform v1.Platform
		binary   []byte
		want     string // the error; empty when the binary fits
	}{
		{"static amd64", linuxAMD64, fakeELF(t, elf.EM_X86_64, false), ""},
		{"static arm64", linuxARM64, fakeELF(t, elf.EM_AARCH64, false), ""},
		{"wrong architecture", linuxARM64, fakeELF(t, elf.EM_X86_64, false), "binary: built for EM_X86_64, not arm64"},
		{"dynamically linked", linuxAMD64, fakeELF(t, elf.EM_X86_64, true), "binary: dynamically linked (build it with CGO_ENABLED=0)"},
		{"a script", linuxAMD64, []byte("#!/bin/sh\necho hi\n"), "binary: not an ELF executable: bad magic number '[35 33 47 98]' in record at byte 0x0"},
		{"not linux", v1.Platform{OS: "windows", Architecture: "amd64"}, fakeELF(t, elf.EM_X86_64, false), `binary: os "windows": only linux images are built`},
		{"unknown architecture", v1.Platform{OS: "linux", Architecture: "mips"}, nil, `binary: architecture "mips": not one of amd64, arm64, arm, ppc64le, riscv64, s390x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBinary(tt.platform, tt.binary)
			if tt.want == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tt.want)
			}
		})
	}
}
