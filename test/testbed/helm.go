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

// helmBin builds helm on first use when the test bed's directory lacks it
// (build.sh builds it only when asked: `build.sh helm`).
var helmBin = sync.OnceValues(func() (string, error) {
	if p, err := Bin("helm"); err == nil {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "build.sh")
	cmd := exec.Command("bash", script, "helm")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr // progress lines
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building helm (%s helm): %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	p := filepath.Join(lines[len(lines)-1], "helm")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("helm: %w", err)
	}
	return p, nil
})

// Helm returns the path of the test bed's helm, building it (about two
// minutes, once) if needed.
func Helm() (string, error) { return helmBin() }
