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

// build runs build.sh for the components (none: the default ones) and
// returns the directory it prints last.
func build(components ...string) (string, error) {
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

// nodeBinaries are what a node needs beside the control plane.
var nodeBinaries = []string{"kubelet", "kube-scheduler", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "cni"}

var (
	binDir = sync.OnceValues(func() (string, error) {
		if d := os.Getenv(BinDirEnv); d != "" {
			return d, nil
		}
		return build()
	})
	nodeBinDir = sync.OnceValues(func() (string, error) {
		d, err := binDir()
		if err != nil {
			return "", err
		}
		if missing(d, nodeBinaries) {
			// build.sh links them into the same directory.
			if d, err = build("node"); err != nil {
				return "", err
			}
		}
		if missing(d, nodeBinaries) {
			return "", fmt.Errorf("test bed binaries for a node missing in %s (build them with test/testbed/build.sh node)", d)
		}
		return d, nil
	})
)

func missing(dir string, names []string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return true
		}
	}
	return false
}

// optIn holds, per component that build.sh builds only when asked, the
// path of its binary (built on first use).
var optIn sync.Map // component name -> func() (string, error)

// optInBin returns the path of the binary of a component build.sh builds
// only when asked (kubelet-judge). It always asks build.sh, which finds it
// in the cache in well under a second, or builds it: the cache key includes
// the component's source, so a link in BinDirEnv's directory may be stale.
func optInBin(component string) (string, error) {
	f, _ := optIn.LoadOrStore(component, sync.OnceValues(func() (string, error) {
		d, err := build(component)
		if err != nil {
			return "", err
		}
		return filepath.Join(d, component), nil
	}))
	return f.(func() (string, error))()
}

// BinDir returns the directory of the test bed's binaries, building them
// on first use.
func BinDir() (string, error) { return binDir() }

// NodeBinDir is BinDir with what a node needs as well (build.sh node:
// kubelet, kube-scheduler, containerd, and runc and the CNI plugins from
// the system's packages), built or installed on first use.
func NodeBinDir() (string, error) { return nodeBinDir() }

// Bin returns the path of one test bed binary. kubelet-judge, which the
// default build leaves out, is built on first use.
func Bin(name string) (string, error) {
	if name == "kubelet-judge" {
		return optInBin(name)
	}
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
