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
// kube-apiserver, kube-controller-manager and registry (make sets it).
const BinDirEnv = "REGCRED_TESTBED_BIN"

var binDir = sync.OnceValues(func() (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, nil
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "build.sh")
	cmd := exec.Command("bash", script)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr // progress lines: the first build takes minutes
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the test bed (%s): %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1], nil
})

// BinDir returns the directory of the test bed's binaries, building them
// on first use.
func BinDir() (string, error) { return binDir() }

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
