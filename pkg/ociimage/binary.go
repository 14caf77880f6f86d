package ociimage

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// machines maps a GOARCH to its ELF machine.
var machines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"ppc64le": elf.EM_PPC64,
	"riscv64": elf.EM_RISCV,
	"s390x":   elf.EM_S390,
}

// checkBinary makes sure binary can run alone in the image: a Linux ELF
// executable for platform, statically linked (an image with nothing but
// the binary has no dynamic loader and no libc).
func checkBinary(platform v1.Platform, binary []byte) error {
	if platform.OS != "linux" {
		return fmt.Errorf("binary: os %q: only linux images are built", platform.OS)
	}
	want, ok := machines[platform.Architecture]
	if !ok {
		return fmt.Errorf("binary: architecture %q: not one of amd64, arm64, arm, ppc64le, riscv64, s390x", platform.Architecture)
	}
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return fmt.Errorf("binary: not an ELF executable: %w", err)
	}
	defer func() { _ = f.Close() }()
	if f.Machine != want {
		return fmt.Errorf("binary: built for %s, not %s", f.Machine, platform.Architecture)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("binary: ELF type %s, not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("binary: dynamically linked (build it with CGO_ENABLED=0)")
		}
	}
	return nil
}
