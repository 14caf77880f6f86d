package testbed

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// RegcredBinary builds regcred's binary from this checkout, once per
// process, into a directory of the system's temporary one kept per
// checkout (replaced atomically, so that runs from one checkout do not
// pile binaries up, and two at once do not see a half-written one). It
// is compiled as make image
// compiles it (static, -trimpath; the flags that differ only change the
// link), so that BuildRegcredImage, later in make test, reuses every
// compiled package: seconds instead of minutes on a cold build cache.
var RegcredBinary = sync.OnceValues(func() (string, error) {
	root := repoRoot()
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("regcred-bin-%x", sum[:6]))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "regcred-*.building")
	if err != nil {
		return "", err
	}
	_ = tmp.Close()
	defer func() { _ = os.Remove(tmp.Name()) }()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", tmp.Name(), "./cmd/regcred")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building regcred: %w: %s", err, b)
	}
	out := filepath.Join(dir, "regcred")
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
})

// Process is a regcred replica running as its own process.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	// Log holds what it wrote.
	Log *LogBuffer
	// ProbeURL is its /readyz; MetricsURL its /metrics.
	ProbeURL, MetricsURL string
	done                 chan struct{}
}

// StartProcess runs regcred with args, its POD_NAME set to name, writing
// to log (nil: a new one).
func StartProcess(name string, args []string, log *LogBuffer, env ...string) (*Process, error) {
	bin, err := RegcredBinary()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = &LogBuffer{}
	}
	p := &Process{Name: name, Log: log, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append(append(os.Environ(), "POD_NAME="+name), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.Cmd.Wait(); close(p.done) }()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop ends the process with SIGTERM and waits (at most 30s) for it.
func (p *Process) Stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Kill()
	}
}

// PeakRSS returns the most memory the process has held (VmHWM), in bytes.
func (p *Process) PeakRSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for process %d", p.Cmd.Process.Pid)
}

// ImpersonatingKubeconfig writes a kubeconfig that talks to server (empty:
// the original's) as the admin of kubeconfig impersonating user and
// groups, and returns its path.
func ImpersonatingKubeconfig(kubeconfig, server, user string, groups []string, dir string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return "", err
	}
	for _, c := range cfg.Clusters {
		if server != "" {
			c.Server = server
		}
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate, a.ImpersonateGroups = user, groups
	}
	path := filepath.Join(dir, "regcred.kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}
