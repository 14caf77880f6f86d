package testbed

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// BinDirEnv names the variable that points at a directory holding etcd,
// kube-apiserver, kube-controller-manager and registry (make sets it),
// and for a node also kubelet, kube-scheduler, containerd, runc and cni.
const BinDirEnv = "REGCRED_TESTBED_BIN"

// build runs build.sh for components and returns the directory it prints.
func build(components ...string) (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, nil
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "build.sh")
	cmd := exec.Command("bash", append([]string{script}, components...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr // progress lines: the first build takes minutes
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the test bed (%s %s): %w", script, strings.Join(components, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1], nil
}

var (
	binDir     = sync.OnceValues(func() (string, error) { return build() })
	nodeBinDir = sync.OnceValues(func() (string, error) {
		d, err := build("node")
		if err != nil {
			return "", err
		}
		for _, n := range []string{"kubelet", "kube-scheduler", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "cni"} {
			if _, err := os.Stat(filepath.Join(d, n)); err != nil {
				return "", fmt.Errorf("test bed binary %s for a node: %w (build it with test/testbed/build.sh node)", n, err)
			}
		}
		return d, nil
	})
)

// BinDir returns the directory of the test bed's binaries, building them
// on first use.
func BinDir() (string, error) { return binDir() }

// NodeBinDir is BinDir with what a node needs as well (build.sh node:
// kubelet, kube-scheduler, containerd, and runc and the CNI plugins from
// the system's packages), built or installed on first use.
func NodeBinDir() (string, error) {
	if _, err := binDir(); err != nil {
		return "", err
	}
	return nodeBinDir()
}

// Bin returns the path of one test bed binary.
func Bin(name string) (string, error) {
	d, err := BinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(d, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("test bed binary %s: %w", name, err)
	}
	return p, nil
}
