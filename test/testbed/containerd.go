package testbed

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// containerd is the node's container runtime. Its root, state, socket,
// CNI configuration and registry hosts all live under dir.
type containerd struct {
	dir     string
	socket  string
	certsD  string
	cniConf string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// containerdConfig is config version 3, as containerd 2.2 reads it.
// restrict_oom_score_adj: runc cannot lower oom_score_adj where root lacks
// CAP_SYS_RESOURCE (every sandbox would fail with "can't get final
// child's PID from pipe: EOF"). SystemdCgroup = false: there is no
// systemd. The opt and NRI plugins are off: they would write to /opt and
// /var/run/nri.
var containerdConfig = template.Must(template.New("containerd").Parse(`version = 3
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
temp = "{{.Dir}}/tmp"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]

[grpc]
  address = "{{.Socket}}"

[ttrpc]
  address = "{{.Socket}}.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{{.SandboxImage}}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{{.CertsD}}"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{{.CNIBin}}"]
    conf_dir = "{{.CNIConf}}"
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{{.Runc}}"
        SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`))

// newContainerd lays out containerd's directories under dir: the CNI
// configuration and registry hosts can be written before it starts.
func newContainerd(dir string) (*containerd, error) {
	c := &containerd{
		dir:     dir,
		socket:  filepath.Join(dir, "containerd.sock"),
		certsD:  filepath.Join(dir, "certs.d"),
		cniConf: filepath.Join(dir, "cni", "net.d"),
		exited:  make(chan struct{}),
	}
	for _, d := range []string{c.certsD, c.cniConf} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// start writes containerd's configuration and starts it; the CRI plugin
// pulls sandboxImage for the first Pod sandbox.
func (c *containerd) start(sandboxImage string, out io.Writer) error {
	bin, err := Bin("containerd")
	if err != nil {
		return err
	}
	runc, err := Bin("runc")
	if err != nil {
		return err
	}
	cniBin, err := Bin("cni")
	if err != nil {
		return err
	}
	if cniBin, err = filepath.EvalSymlinks(cniBin); err != nil {
		return fmt.Errorf("CNI plugins: %w", err)
	}
	var cfg strings.Builder
	if err := containerdConfig.Execute(&cfg, map[string]string{
		"Dir": c.dir, "Socket": c.socket, "SandboxImage": sandboxImage, "CertsD": c.certsD,
		"CNIBin": cniBin, "CNIConf": c.cniConf, "Runc": runc,
	}); err != nil {
		return err
	}
	cfgPath := filepath.Join(c.dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	c.cmd = exec.Command(bin, "--config", cfgPath)
	// containerd starts its shim (containerd-shim-runc-v2) from PATH.
	c.cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("starting containerd: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	return c.waitReady(30 * time.Second)
}

// Endpoint is the CRI endpoint for the kubelet.
func (c *containerd) Endpoint() string { return "unix://" + c.socket }

func (c *containerd) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("containerd exited at start: %v", c.cmd.ProcessState)
		default:
		}
		if conn, err := net.DialTimeout("unix", c.socket, time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("containerd did not listen on %s within %s", c.socket, timeout)
}

// routeRegistry writes certs.d/<host>/hosts.toml the way an admin tells
// containerd where the images of registry host are served (addr: the
// host itself, or a private endpoint) and to trust a CA there (caPEM), or
// to speak plain HTTP to it (caPEM nil). containerd reads the file at
// every pull.
func (c *containerd) routeRegistry(host, addr string, caPEM []byte) error {
	dir := filepath.Join(c.certsD, host)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	// The server alone, no [host] mirror: containerd tries each host in
	// turn after a failure, and a server left without the CA would add a
	// TLS failure to every refused pull.
	hosts := fmt.Sprintf("server = %q\n", "http://"+addr)
	if caPEM != nil {
		caPath := filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(caPath, caPEM, 0o644); err != nil { //nolint:gosec // a certificate is public
			return err
		}
		hosts = fmt.Sprintf("server = %q\nca = %q\n", "https://"+addr, caPath)
	}
	return writeFileAtomic(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o600)
}

// stop stops containerd (the node kills its shims and containers).
func (c *containerd) stop() { stopProcess(c.cmd, c.exited, 10*time.Second) }
